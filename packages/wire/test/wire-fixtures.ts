/**
 * Saved encodings of every frame type under wire version 1. Later builds must decode
 * them to the same frames and encode those frames to the same bytes; a change of
 * field order, type code or field encoding fails `fixtures.test.ts`. The file is
 * written once from seeded samples and then only ever appended to:
 *   npx tsx packages/wire/test/wire-fixtures.ts --write
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
// Relative imports so `tsx` reads the sources, not a possibly stale dist/.
import { encodeFrame, FRAME_SPECS, type Frame, type FrameType } from '../src/index.js';
import { frameArb } from './arbitraries.js';

export const FIXTURE_PATH = fileURLToPath(new URL('./fixtures/frames-v1.json', import.meta.url));

export interface Fixture {
  readonly frame: unknown;
  readonly hex: string;
}

const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const fromHex = (h: string) => Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16));

/** JSON form of a frame: byte strings become `{ "hex": "..." }`. */
export function toJson(value: unknown): unknown {
  if (value instanceof Uint8Array) return { hex: toHex(value) };
  if (Array.isArray(value)) return value.map(toJson);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v)]));
  }
  return value;
}

/** Inverse of `toJson`. */
export function fromJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(fromJson);
  if (typeof value === 'object' && value !== null) {
    const o = value as Record<string, unknown>;
    if (Object.keys(o).length === 1 && typeof o['hex'] === 'string') return fromHex(o['hex']);
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, fromJson(v)]));
  }
  return value;
}

export const hexOf = fromHex;

function generate(): Fixture[] {
  const out: Fixture[] = [];
  (Object.keys(FRAME_SPECS) as FrameType[]).forEach((type, i) => {
    for (const frame of fc.sample(frameArb(type), { numRuns: 3, seed: 1000 + i })) {
      out.push({ frame: toJson(frame), hex: toHex(encodeFrame(frame as Frame)) });
    }
  });
  return out;
}

if (process.argv.includes('--write')) {
  if (existsSync(FIXTURE_PATH)) {
    // Append only: keep every saved fixture, add samples of frame types not yet covered.
    const saved = JSON.parse(readFileSync(FIXTURE_PATH, 'utf8')) as Fixture[];
    const covered = new Set(saved.map((f) => (f.frame as { type: string }).type));
    const added = generate().filter((f) => !covered.has((f.frame as { type: string }).type));
    writeFileSync(FIXTURE_PATH, JSON.stringify([...saved, ...added], null, 1) + '\n');
  } else {
    writeFileSync(FIXTURE_PATH, JSON.stringify(generate(), null, 1) + '\n');
  }
}
