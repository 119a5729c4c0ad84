/**
 * Loading of the shared vector folder (`../shared/vectors` from the repository root).
 * The folder lives outside the repository; a missing folder or a file whose SHA-256
 * differs from the folder's `SHA256SUMS` fails the run loudly instead of letting the
 * known-answer tests pass vacuously.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

/** Absolute path of the shared vectors, resolved from this file, not the working directory. */
export const VECTORS_DIR = fileURLToPath(
  new URL('../../../../../shared/vectors/', import.meta.url),
);

if (!existsSync(`${VECTORS_DIR}README.md`)) {
  throw new Error(
    `crypto vectors not found at ${VECTORS_DIR} (expected ../shared/vectors next to the repo); ` +
      'the known-answer tests cannot run without them',
  );
}

/** `SHA256SUMS` of the vector folder: relative path -> hex digest. */
const SUMS = new Map(
  readFileSync(`${VECTORS_DIR}SHA256SUMS`, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [digest, path] = line.split(/\s+\*?/, 2);
      return [path ?? '', digest ?? ''] as const;
    }),
);

/**
 * A vector file's bytes, checked against `SHA256SUMS` first, so that a truncated or
 * edited vector file fails the run instead of quietly testing less.
 */
function readVerified(relative: string): Buffer {
  const raw = readFileSync(VECTORS_DIR + relative);
  const expected = SUMS.get(relative);
  if (expected === undefined) throw new Error(`${relative} is not listed in SHA256SUMS`);
  const actual = createHash('sha256').update(raw).digest('hex');
  if (actual !== expected)
    throw new Error(`${relative}: SHA-256 ${actual}, SHA256SUMS says ${expected}`);
  return raw;
}

export function readJson<T>(relative: string): T {
  return JSON.parse(readVerified(relative).toString('utf8')) as T;
}

export function readText(relative: string): string {
  const raw = readVerified(relative);
  return relative.endsWith('.gz') ? gunzipSync(raw).toString('utf8') : raw.toString('utf8');
}

/** CCTV `name = value` text: the first value of each name (later repeats are intermediates). */
export function parseCctv(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf(' = ');
    if (eq < 0) continue;
    const name = line.slice(0, eq).trim();
    if (!out.has(name)) out.set(name, line.slice(eq + 3).trim());
  }
  return out;
}

export type WycheproofResult = 'valid' | 'invalid' | 'acceptable';

export interface WycheproofFile<G, T> {
  readonly algorithm: string;
  readonly numberOfTests: number;
  readonly testGroups: ReadonlyArray<G & { readonly tests: ReadonlyArray<T & WycheproofCase> }>;
}

export interface WycheproofCase {
  readonly tcId: number;
  readonly comment?: string;
  readonly flags: readonly string[];
  readonly result: WycheproofResult;
}

export function wycheproof<G, T>(name: string): WycheproofFile<G, T> {
  return readJson<WycheproofFile<G, T>>(`wycheproof/testvectors_v1/${name}.json`);
}

/** Every case of a Wycheproof file with its group, and a check that none was lost. */
export function wycheproofCases<G, T>(
  name: string,
): Array<{ readonly group: G; readonly test: T & WycheproofCase }> {
  const file = wycheproof<G, T>(name);
  const out = file.testGroups.flatMap((group) => group.tests.map((test) => ({ group, test })));
  if (out.length !== file.numberOfTests) {
    throw new Error(`${name}: numberOfTests ${file.numberOfTests}, found ${out.length}`);
  }
  return out;
}
