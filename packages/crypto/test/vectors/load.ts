/**
 * Loading of the known-answer vectors committed beside this file. Every read is checked
 * twice: the committed bytes against `SHA256SUMS`, and the file in its upstream form
 * (unpacked when we stored it gzipped) against `SHA256SUMS.upstream`, so that a truncated,
 * edited or re-encoded vector fails the run instead of quietly testing less.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

/** Absolute path of the vector folder, resolved from this file, not the working directory. */
export const VECTORS_DIR = fileURLToPath(new URL('./', import.meta.url));

/** A `sha256sum` list: relative path -> hex digest. */
export function readSums(name: string): Map<string, string> {
  return new Map(
    readFileSync(VECTORS_DIR + name, 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => {
        const [digest, path] = line.split(/\s+\*?/, 2);
        return [path ?? '', digest ?? ''] as const;
      }),
  );
}

const COMMITTED = readSums('SHA256SUMS');
const UPSTREAM = readSums('SHA256SUMS.upstream');

export const sha256Hex = (bytes: Uint8Array): string =>
  createHash('sha256').update(bytes).digest('hex');

function expectDigest(what: string, bytes: Uint8Array, expected: string | undefined): void {
  if (expected === undefined) throw new Error(`${what} is not listed`);
  const actual = sha256Hex(bytes);
  if (actual !== expected) throw new Error(`${what}: SHA-256 ${actual}, the list says ${expected}`);
}

/**
 * The bytes of a vector file in its upstream form, named by its upstream path. A file we
 * stored gzipped (`NAME.gz` committed for upstream `NAME`) is unpacked here.
 */
function readVerified(relative: string): Buffer {
  const stored = COMMITTED.has(relative) ? relative : `${relative}.gz`;
  const raw = readFileSync(VECTORS_DIR + stored);
  expectDigest(`${stored} (SHA256SUMS)`, raw, COMMITTED.get(stored));
  const upstream = stored === relative ? raw : gunzipSync(raw);
  expectDigest(`${relative} (SHA256SUMS.upstream)`, upstream, UPSTREAM.get(relative));
  return upstream;
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
