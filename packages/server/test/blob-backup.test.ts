/**
 * The blob part of a relay backup: the copy holds exactly what the index had committed
 * (a partly uploaded blob up to its durable count, not the bytes written past it), leaves
 * out expired blobs and a blob whose file vanished, and opens as a working store.
 */
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BLOBS_DIR, SqliteFileBlobStore, copyBlobStore } from '../src/blobs/index.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'parley-blob-backup-'));
  dirs.push(d);
  return d;
};
const id = (n: number): string => n.toString(16).padStart(32, '0');
const chunk = (fill: number): Buffer => Buffer.alloc(64, fill);
const bytes = (cs: Uint8Array[]): Buffer[] => cs.map((c) => Buffer.from(c));

describe('copyBlobStore', () => {
  it('copies committed chunks only, drops expired and vanished blobs, and opens as a store', async () => {
    const data = tmp();
    const store = new SqliteFileBlobStore(data);
    const begin = (n: number, chunkCount: number, ttlMs: number) =>
      store.begin({
        id: id(n),
        owner: 'alice',
        chunkCount,
        chunkBytes: 64,
        now: 1_000,
        ttlMs,
        quotaBytes: 1 << 20,
      });
    expect((await begin(1, 2, 1e9)).ok).toBe(true);
    await store.append(id(1), 0, [chunk(1), chunk(2)]);
    expect((await begin(2, 4, 1e9)).ok).toBe(true);
    await store.append(id(2), 0, [chunk(3), chunk(4)]);
    // A batch written but not yet committed when the copy is taken.
    appendFileSync(join(data, BLOBS_DIR, `${id(2)}.blob`), chunk(9));
    expect((await begin(3, 1, 10)).ok).toBe(true);
    await store.append(id(3), 0, [chunk(5)]);
    expect((await begin(4, 1, 1e9)).ok).toBe(true);
    await store.append(id(4), 0, [chunk(6)]);
    rmSync(join(data, BLOBS_DIR, `${id(4)}.blob`));

    const out = tmp();
    const copied = await copyBlobStore(data, out, 2_000);
    await store.close();
    expect(copied).toEqual({ blobs: 2, bytes: 4 * 64 });
    expect(statSync(join(out, BLOBS_DIR, `${id(2)}.blob`)).size).toBe(2 * 64);
    expect(existsSync(join(out, BLOBS_DIR, `${id(3)}.blob`))).toBe(false);

    const restored = new SqliteFileBlobStore(out);
    try {
      expect(bytes(await restored.read(id(1), 0, 2))).toEqual([chunk(1), chunk(2)]);
      expect((await restored.get(id(2), 2_000))?.chunksStored).toBe(2);
      expect(await restored.get(id(3), 2_000)).toBeUndefined();
      expect(await restored.get(id(4), 2_000)).toBeUndefined();
      // The partly uploaded blob resumes from its durable count.
      expect(await restored.append(id(2), 2, [chunk(7), chunk(8)])).toBe(4);
      expect(bytes(await restored.read(id(2), 0, 4))).toEqual([
        chunk(3),
        chunk(4),
        chunk(7),
        chunk(8),
      ]);
    } finally {
      await restored.close();
    }
  });

  it('copies nothing from a relay that never stored a blob', async () => {
    expect(await copyBlobStore(tmp(), tmp(), 0)).toBeUndefined();
  });
});
