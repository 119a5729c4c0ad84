/** In-memory `BlobStore` for tests and the relay built without a data directory. */
import { ServerError } from '../errors.js';
import {
  blobBytes,
  sameShape,
  type BlobBeginRequest,
  type BlobBeginResult,
  type BlobMeta,
  type BlobStore,
} from './types.js';

export class MemoryBlobStore implements BlobStore {
  readonly #blobs = new Map<string, { meta: BlobMeta; chunks: Uint8Array[] }>();

  begin(r: BlobBeginRequest): Promise<BlobBeginResult> {
    void this.expire(r.now);
    const existing = this.#blobs.get(r.id);
    if (existing) {
      return Promise.resolve(
        sameShape(existing.meta, r)
          ? { ok: true, blob: existing.meta }
          : { ok: false, reason: 'conflict' },
      );
    }
    let used = 0;
    for (const b of this.#blobs.values()) if (b.meta.owner === r.owner) used += blobBytes(b.meta);
    if (used + blobBytes(r) > r.quotaBytes) {
      return Promise.resolve({ ok: false, reason: 'over-quota', used });
    }
    const meta: BlobMeta = {
      id: r.id,
      owner: r.owner,
      chunkCount: r.chunkCount,
      chunkBytes: r.chunkBytes,
      chunksStored: 0,
      createdAt: r.now,
      expiresAt: r.now + r.ttlMs,
    };
    this.#blobs.set(r.id, { meta, chunks: [] });
    return Promise.resolve({ ok: true, blob: meta });
  }

  get(id: string, now: number): Promise<BlobMeta | undefined> {
    const b = this.#blobs.get(id);
    return Promise.resolve(b && b.meta.expiresAt > now ? b.meta : undefined);
  }

  append(id: string, from: number, chunks: readonly Uint8Array[]): Promise<number> {
    const b = this.#blobs.get(id);
    if (!b || from !== b.meta.chunksStored || from + chunks.length > b.meta.chunkCount) {
      return Promise.reject(new ServerError('STORAGE', 'blob append out of order'));
    }
    for (const c of chunks) b.chunks.push(Uint8Array.from(c));
    b.meta = { ...b.meta, chunksStored: b.chunks.length };
    return Promise.resolve(b.meta.chunksStored);
  }

  read(id: string, from: number, count: number): Promise<Uint8Array[]> {
    const b = this.#blobs.get(id);
    return Promise.resolve(b ? b.chunks.slice(from, from + count) : []);
  }

  expire(now: number): Promise<number> {
    let n = 0;
    for (const [id, b] of this.#blobs) {
      if (b.meta.expiresAt <= now) {
        this.#blobs.delete(id);
        n++;
      }
    }
    return Promise.resolve(n);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
