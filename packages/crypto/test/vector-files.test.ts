/**
 * The committed vector folder is whole: every data file is listed in both checksum lists
 * and matches them, nothing listed is missing and every upstream keeps its licence file, so a
 * clone runs every known-answer case with nothing from outside the repository.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { readSums, sha256Hex, VECTORS_DIR } from './vectors/load.js';

/** Files of the folder that are not vector data (the code and its documentation). */
const NOT_DATA = new Set(['load.ts', 'README.md', 'SHA256SUMS', 'SHA256SUMS.upstream']);

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name)) : [relative(VECTORS_DIR, join(dir, e.name))],
  );
}

const committed = readSums('SHA256SUMS');
const upstream = readSums('SHA256SUMS.upstream');
const dataFiles = filesUnder(VECTORS_DIR)
  .filter((f) => !NOT_DATA.has(f))
  .sort();

describe('committed crypto vectors', () => {
  it('SHA256SUMS lists exactly the data files, and each matches', () => {
    expect([...committed.keys()].sort()).toEqual(dataFiles);
    for (const f of dataFiles) {
      expect(sha256Hex(readFileSync(join(VECTORS_DIR, f))), f).toBe(committed.get(f));
    }
  });

  it('every vector file in its upstream form matches SHA256SUMS.upstream', () => {
    expect(upstream.size).toBeGreaterThan(0);
    const covered = new Set<string>();
    for (const [name, digest] of upstream) {
      const stored = committed.has(name) ? name : `${name}.gz`;
      expect(committed.has(stored), `${name} is committed`).toBe(true);
      const raw = readFileSync(join(VECTORS_DIR, stored));
      const bytes = stored === name ? raw : gunzipSync(raw);
      expect(sha256Hex(bytes), name).toBe(digest);
      covered.add(stored);
    }
    // Only licence notes may lack an upstream digest.
    const uncovered = dataFiles.filter((f) => !covered.has(f) && !/(^|\/)LICENSE(\.md)?$/.test(f));
    expect(uncovered).toEqual([]);
  });

  it('every upstream folder carries its licence', () => {
    const tops = [...new Set(dataFiles.map((f) => f.split('/')[0]))].sort();
    expect(tops).toEqual(['cctv', 'nist-acvp', 'rfc', 'wycheproof']);
    for (const top of tops) {
      expect(
        dataFiles.some((f) => f === `${top}/LICENSE` || f === `${top}/LICENSE.md`),
        top,
      ).toBe(true);
    }
  });
});
