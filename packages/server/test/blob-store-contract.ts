/** The `BlobStore` contract, shared by every implementation's test. */
import { expect, it, describe } from 'vitest';
import type { BlobStore } from '../src/blobs/index.js';

const id = (n: number): string => n.toString(16).padStart(32, '0');
const chunk = (i: number): Uint8Array => new Uint8Array(100).fill(i);
const begin = (s: BlobStore, n: number, owner = 'alice', now = 1_000, quotaBytes = 10_000) =>
  s.begin({ id: id(n), owner, chunkCount: 10, chunkBytes: 100, now, ttlMs: 1_000, quotaBytes });

export function runBlobStoreContract(
  name: string,
  make: () =>
    | Promise<{ store: BlobStore; reopen?: () => Promise<BlobStore> }>
    | { store: BlobStore; reopen?: () => BlobStore | Promise<BlobStore> },
): void {
  describe(`BlobStore (${name})`, () => {
    it('appends in order, resumes with the durable count, reads back', async () => {
      const { store, reopen } = await make();
      expect(await begin(store, 1)).toMatchObject({ ok: true, blob: { chunksStored: 0 } });
      expect(await store.append(id(1), 0, [chunk(0), chunk(1), chunk(2)])).toBe(3);
      await expect(store.append(id(1), 5, [chunk(5)])).rejects.toThrow(/out of order/);
      let s = store;
      if (reopen) {
        await store.close();
        s = await reopen();
      }
      expect(await begin(s, 1)).toMatchObject({ ok: true, blob: { chunksStored: 3 } });
      expect(await s.append(id(1), 3, [chunk(3)])).toBe(4);
      const back = await s.read(id(1), 1, 3);
      expect(back.map((c) => c[0])).toEqual([1, 2, 3]);
      await s.close();
    });

    it('takes overlapping appends of one blob, resolving each in order once durable', async () => {
      const { store, reopen } = await make();
      expect((await begin(store, 20)).ok).toBe(true);
      const ended: number[] = [];
      const runs = [0, 3, 6].map((from) =>
        store
          .append(id(20), from, [chunk(from), chunk(from + 1), chunk(from + 2)])
          .then((n) => ended.push(n)),
      );
      // Out of order while the others are still in flight.
      await expect(store.append(id(20), 3, [chunk(3)])).rejects.toThrow(/out of order/);
      await Promise.all(runs);
      expect(ended).toEqual([3, 6, 9]);
      let s = store;
      if (reopen) {
        await store.close();
        s = await reopen();
      }
      expect(await begin(s, 20)).toMatchObject({ ok: true, blob: { chunksStored: 9 } });
      expect((await s.read(id(20), 0, 9)).map((c) => c[0])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
      await s.close();
    });

    it('keeps ids to their owner and shape, holds the quota, and expires', async () => {
      const { store } = await make();
      expect((await begin(store, 2)).ok).toBe(true);
      expect(await begin(store, 2, 'mallory')).toEqual({ ok: false, reason: 'conflict' });
      // 10 000 bytes of quota: a second 1 000-byte blob fits ... up to ten in all.
      for (let n = 3; n < 12; n++) expect((await begin(store, n)).ok).toBe(true);
      expect(await begin(store, 12)).toEqual({ ok: false, reason: 'over-quota', used: 10_000 });
      expect((await begin(store, 12, 'bob')).ok).toBe(true);
      expect(await store.get(id(2), 1_500)).toBeDefined();
      expect(await store.get(id(2), 2_000)).toBeUndefined();
      // Expired blobs no longer count against the quota.
      expect((await begin(store, 13, 'alice', 2_000)).ok).toBe(true);
      await store.close();
    });
  });
}
