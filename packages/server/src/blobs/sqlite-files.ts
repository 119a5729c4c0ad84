/**
 * The default `BlobStore`: each blob's ciphertext in its own file under DATA/blobs
 * (chunk i at offset i × chunkBytes), the index (owner, shape, durable count, expiry) in
 * DATA/blobs/index.db. A batch is written to the file and synced before its new count
 * is committed, so after a crash the index never claims a chunk the file lacks; bytes
 * past the committed count are simply overwritten when the upload resumes.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ServerError } from '../errors.js';
import {
  blobBytes,
  sameShape,
  type BlobBeginRequest,
  type BlobBeginResult,
  type BlobMeta,
  type BlobStore,
} from './types.js';

/** Folder under the data directory holding blob files and their index. */
export const BLOBS_DIR = 'blobs';
/** The index database inside `BLOBS_DIR`. */
export const BLOB_INDEX_FILE = 'index.db';
const HEX_ID = /^[0-9a-f]{32}$/;

/** The file name of blob `id` (32 hex digits) inside `BLOBS_DIR`. */
export function blobFileName(id: string): string {
  if (!HEX_ID.test(id)) throw new ServerError('STORAGE', 'blob id: expected 32 hex digits');
  return `${id}.blob`;
}

interface Row {
  id: string;
  owner: string;
  chunk_count: number;
  chunk_bytes: number;
  chunks_stored: number;
  created_at: number;
  expires_at: number;
}

const toMeta = (r: Row): BlobMeta => ({
  id: r.id,
  owner: r.owner,
  chunkCount: r.chunk_count,
  chunkBytes: r.chunk_bytes,
  chunksStored: r.chunks_stored,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
});

export class SqliteFileBlobStore implements BlobStore {
  readonly #dir: string;
  readonly #db: Database.Database;
  /** Open files of blobs being uploaded, closed when complete, expired or at close. */
  readonly #files = new Map<string, Promise<FileHandle>>();

  constructor(dataDir: string) {
    this.#dir = join(dataDir, BLOBS_DIR);
    mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    try {
      this.#db = new Database(join(this.#dir, BLOB_INDEX_FILE));
      this.#db.pragma('journal_mode = WAL');
      this.#db.pragma('synchronous = FULL');
      this.#db.exec(`CREATE TABLE IF NOT EXISTS blobs (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        chunk_count INTEGER NOT NULL,
        chunk_bytes INTEGER NOT NULL,
        chunks_stored INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS blobs_owner ON blobs (owner);
      CREATE INDEX IF NOT EXISTS blobs_expiry ON blobs (expires_at);`);
    } catch (err) {
      throw new ServerError(
        'STORAGE',
        `blob index ${join(this.#dir, BLOB_INDEX_FILE)}: ${(err as Error).message}`,
      );
    }
  }

  #path(id: string): string {
    return join(this.#dir, blobFileName(id));
  }

  #row(id: string): Row | undefined {
    return this.#db.prepare('SELECT * FROM blobs WHERE id = ?').get(id) as Row | undefined;
  }

  async begin(r: BlobBeginRequest): Promise<BlobBeginResult> {
    await this.expire(r.now);
    const path = this.#path(r.id);
    const result = this.#db.transaction((): BlobBeginResult => {
      const existing = this.#row(r.id);
      if (existing) {
        const meta = toMeta(existing);
        return sameShape(meta, r) ? { ok: true, blob: meta } : { ok: false, reason: 'conflict' };
      }
      const used =
        (
          this.#db
            .prepare('SELECT SUM(chunk_count * chunk_bytes) AS used FROM blobs WHERE owner = ?')
            .get(r.owner) as { used: number | null }
        ).used ?? 0;
      if (used + blobBytes(r) > r.quotaBytes) return { ok: false, reason: 'over-quota', used };
      const row: Row = {
        id: r.id,
        owner: r.owner,
        chunk_count: r.chunkCount,
        chunk_bytes: r.chunkBytes,
        chunks_stored: 0,
        created_at: r.now,
        expires_at: r.now + r.ttlMs,
      };
      this.#db
        .prepare(
          `INSERT INTO blobs VALUES (@id, @owner, @chunk_count, @chunk_bytes, @chunks_stored,
            @created_at, @expires_at)`,
        )
        .run(row);
      return { ok: true, blob: toMeta(row) };
    })();
    if (result.ok && result.blob.chunksStored === 0) {
      // A new blob starts from an empty file (a leftover of an expired one is gone).
      await (await open(path, 'w', 0o600)).close();
    }
    return result;
  }

  get(id: string, now: number): Promise<BlobMeta | undefined> {
    const r = this.#row(id);
    return Promise.resolve(r && r.expires_at > now ? toMeta(r) : undefined);
  }

  #file(id: string): Promise<FileHandle> {
    let f = this.#files.get(id);
    if (!f) {
      f = open(this.#path(id), 'r+');
      this.#files.set(id, f);
    }
    return f;
  }

  async #closeFile(id: string): Promise<void> {
    const f = this.#files.get(id);
    this.#files.delete(id);
    if (f) await (await f).close().catch(() => undefined);
  }

  async append(id: string, from: number, chunks: readonly Uint8Array[]): Promise<number> {
    const r = this.#row(id);
    if (!r || from !== r.chunks_stored || from + chunks.length > r.chunk_count) {
      throw new ServerError('STORAGE', 'blob append out of order');
    }
    const data = Buffer.concat(chunks);
    const file = await this.#file(id);
    await file.write(data, 0, data.length, from * r.chunk_bytes);
    await file.datasync();
    const stored = from + chunks.length;
    this.#db.prepare('UPDATE blobs SET chunks_stored = ? WHERE id = ?').run(stored, id);
    if (stored === r.chunk_count) await this.#closeFile(id);
    return stored;
  }

  async read(id: string, from: number, count: number): Promise<Uint8Array[]> {
    const r = this.#row(id);
    if (!r) return [];
    const n = Math.max(0, Math.min(count, r.chunks_stored - from));
    if (n === 0) return [];
    const file = await open(this.#path(id), 'r');
    try {
      const buf = Buffer.alloc(n * r.chunk_bytes);
      const { bytesRead } = await file.read(buf, 0, buf.length, from * r.chunk_bytes);
      if (bytesRead !== buf.length) throw new ServerError('STORAGE', `blob ${id}: file too short`);
      const out: Uint8Array[] = [];
      for (let i = 0; i < n; i++) {
        out.push(buf.subarray(i * r.chunk_bytes, (i + 1) * r.chunk_bytes));
      }
      return out;
    } finally {
      await file.close();
    }
  }

  async expire(now: number): Promise<number> {
    const gone = this.#db
      .prepare('DELETE FROM blobs WHERE expires_at <= ? RETURNING id')
      .all(now) as { id: string }[];
    for (const { id } of gone) {
      await this.#closeFile(id);
      rmSync(this.#path(id), { force: true });
    }
    return gone.length;
  }

  async close(): Promise<void> {
    for (const id of [...this.#files.keys()]) await this.#closeFile(id);
    this.#db.close();
  }
}
