/**
 * Attachment blobs as the relay keeps them: opaque ciphertext chunks of one fixed size,
 * an owner (the uploading identity), an expiry, and how many chunks are durable. The
 * relay never learns more: names, types, keys and plaintext sizes travel end-to-end
 * inside the message that names the blob (docs/client.md, "Attachments").
 *
 * Owns: the storage contract. `sqlite-files.ts` (the default, files under DATA/blobs with
 * the index in SQLite) and `memory.ts` implement it.
 */

/** What the relay knows about one blob. */
export interface BlobMeta {
  /** Hex of the 16-byte id the uploader chose. */
  readonly id: string;
  /** Identity name of the uploader; only it may write chunks. */
  readonly owner: string;
  readonly chunkCount: number;
  /** Ciphertext bytes of every chunk. */
  readonly chunkBytes: number;
  /** Chunks 0..chunksStored-1 are durable. */
  readonly chunksStored: number;
  readonly createdAt: number;
  readonly expiresAt: number;
}

export interface BlobBeginRequest {
  readonly id: string;
  readonly owner: string;
  readonly chunkCount: number;
  readonly chunkBytes: number;
  readonly now: number;
  readonly ttlMs: number;
  /** Stored bytes the owner may hold in unexpired blobs, this one included. */
  readonly quotaBytes: number;
}

export type BlobBeginResult =
  /** A new blob, or the owner's existing one with the same shape (a resumed upload). */
  | { readonly ok: true; readonly blob: BlobMeta }
  /** The id is taken by another owner, or by a blob of another shape. */
  | { readonly ok: false; readonly reason: 'conflict' }
  /** Accepting it would put the owner over its quota; `used` is what it holds now. */
  | { readonly ok: false; readonly reason: 'over-quota'; readonly used: number };

export interface BlobStore {
  /** Creates or resumes a blob, within the owner's quota, in one atomic step. */
  begin(request: BlobBeginRequest): Promise<BlobBeginResult>;
  /** The blob, unless unknown or expired at `now`. */
  get(id: string, now: number): Promise<BlobMeta | undefined>;
  /**
   * Writes `chunks` at indices `from`, `from+1`, … and returns `from + chunks.length`,
   * the durable count it reached. Durable before it resolves (data synced, then the count
   * committed), so a crash never reports a chunk that is not on disk. Appends of one blob
   * may be issued before earlier ones resolve: `from` must equal the chunks stored plus
   * those of appends still in flight, and they resolve in order.
   */
  append(id: string, from: number, chunks: readonly Uint8Array[]): Promise<number>;
  /** Chunks `from`..`from+count-1` (each `chunkBytes` long) of a blob. */
  read(id: string, from: number, count: number): Promise<Uint8Array[]>;
  /** Deletes blobs expired at `now`; returns how many. */
  expire(now: number): Promise<number>;
  close(): Promise<void>;
}

/** Stored bytes of a blob, the unit of quota and size limits. */
export function blobBytes(b: Pick<BlobMeta, 'chunkCount' | 'chunkBytes'>): number {
  return b.chunkCount * b.chunkBytes;
}

/** Whether an existing blob is the one a `begin` describes (so the upload resumes). */
export function sameShape(b: BlobMeta, r: BlobBeginRequest): boolean {
  return b.owner === r.owner && b.chunkCount === r.chunkCount && b.chunkBytes === r.chunkBytes;
}
