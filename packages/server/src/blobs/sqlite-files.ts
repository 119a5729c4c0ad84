/**
 * The default `BlobStore`: each blob's ciphertext in its own file under DATA/blobs
 * (chunk i at offset i × chunkBytes), the index (owner, shape, durable count, expiry) in
 * DATA/blobs/index.db. Chunks are written to the file and synced before their new count
 * is committed, so after a crash the index never claims a chunk the file lacks; bytes
 * past the committed count are simply overwritten when the upload resumes.
 *
 * Group commit: appends of one blob may overlap. Each writes its chunks as soon as the
 * previous write is done, then waits for a sync that covers them; one sync (fdatasync,
 * then one index commit) runs at a time per blob and covers every chunk written before it
 * started, so while one syncs the next chunks are already being written, and the number
 * of syncs follows the disk's latency instead of the batch size. An append resolves only
 * once its chunks are durable and counted.
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

/** An upload in progress: where its writes and its durable count stand. */
interface Writing {
  readonly file: Promise<FileHandle>;
  readonly chunkCount: number;
  readonly chunkBytes: number;
  /** Chunks handed to `append` so far (written, being written or waiting). */
  appended: number;
  /** Chunks written to the file (not necessarily synced). */
  written: number;
  /** Chunks synced and committed in the index. */
  durable: number;
  /** The write chain: each write starts when the previous one is done. */
  writes: Promise<void>;
  /** The sync in flight, if any. */
  sync: Promise<void> | undefined;
}

export class SqliteFileBlobStore implements BlobStore {
  readonly #dir: string;
  readonly #db: Database.Database;
  /** Uploads in progress, their files open; dropped when complete, expired or at close. */
  readonly #writing = new Map<string, Writing>();

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
    let created = false;
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
      created = true;
      return { ok: true, blob: toMeta(row) };
    })();
    if (created) {
      // A new blob starts from an empty file (a leftover of an expired one is gone). Only
      // a new one: an existing blob with nothing durable yet may have writes in flight.
      await (await open(path, 'w', 0o600)).close();
    }
    return result;
  }

  get(id: string, now: number): Promise<BlobMeta | undefined> {
    const r = this.#row(id);
    return Promise.resolve(r && r.expires_at > now ? toMeta(r) : undefined);
  }

  /** The upload state of `id`, opened from its index row on its first append. */
  #writingOf(id: string, r: Row): Writing {
    let w = this.#writing.get(id);
    if (!w) {
      w = {
        file: open(this.#path(id), 'r+'),
        chunkCount: r.chunk_count,
        chunkBytes: r.chunk_bytes,
        appended: r.chunks_stored,
        written: r.chunks_stored,
        durable: r.chunks_stored,
        writes: Promise.resolve(),
        sync: undefined,
      };
      // A failed open surfaces in the append that awaits it.
      w.file.catch(() => undefined);
      this.#writing.set(id, w);
    }
    return w;
  }

  /** Forgets an upload's state and closes its file (after its last write or sync). */
  async #drop(id: string, w: Writing | undefined = this.#writing.get(id)): Promise<void> {
    if (!w || this.#writing.get(id) !== w) return;
    this.#writing.delete(id);
    await (await w.file.catch(() => undefined))?.close().catch(() => undefined);
  }

  async append(id: string, from: number, chunks: readonly Uint8Array[]): Promise<number> {
    const r = this.#row(id);
    if (!r) throw new ServerError('STORAGE', 'blob append out of order');
    const w = this.#writingOf(id, r);
    if (from !== w.appended || from + chunks.length > w.chunkCount) {
      throw new ServerError('STORAGE', 'blob append out of order');
    }
    w.appended += chunks.length;
    const end = from + chunks.length;
    w.writes = w.writes.then(async () => {
      // writev: the chunks as they arrived, no copy into one buffer.
      await (await w.file).writev(chunks, from * w.chunkBytes);
      w.written = end;
    });
    try {
      await w.writes;
      while (w.durable < end) {
        w.sync ??= this.#sync(id, w).finally(() => (w.sync = undefined));
        await w.sync;
      }
    } catch (err) {
      // The file or the index failed: the next begin starts again from the index.
      await this.#drop(id, w);
      throw err;
    }
    if (w.durable === w.chunkCount) await this.#drop(id, w);
    return end;
  }

  /** Syncs every chunk written so far, then commits their count. */
  async #sync(id: string, w: Writing): Promise<void> {
    const upto = w.written;
    await (await w.file).datasync();
    this.#db.prepare('UPDATE blobs SET chunks_stored = ? WHERE id = ?').run(upto, id);
    w.durable = upto;
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
      await this.#drop(id);
      rmSync(this.#path(id), { force: true });
    }
    return gone.length;
  }

  async close(): Promise<void> {
    for (const id of [...this.#writing.keys()]) await this.#drop(id);
    this.#db.close();
  }
}
