/**
 * `BlobStore` on PostgreSQL, for relay nodes that share one database: any node can then
 * serve a blob another node took the upload of. Chunks are rows (`parley_blob_chunks`,
 * bytea), the index is `parley_blobs`; a batch of chunks and the new count commit in one
 * transaction, and `blob.begin` takes an advisory lock on the owner so two nodes cannot
 * both admit uploads that together break the quota.
 */
import type pg from 'pg';
import { ServerError } from '../errors.js';
import { openPool, storageError, type PostgresConnection } from '../storage/postgres-pool.js';
import {
  blobBytes,
  sameShape,
  type BlobBeginRequest,
  type BlobBeginResult,
  type BlobMeta,
  type BlobStore,
} from './types.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS parley_blobs (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  chunk_count INTEGER NOT NULL,
  chunk_bytes INTEGER NOT NULL,
  chunks_stored INTEGER NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS parley_blobs_owner ON parley_blobs (owner);
CREATE INDEX IF NOT EXISTS parley_blobs_expiry ON parley_blobs (expires_at);
CREATE TABLE IF NOT EXISTS parley_blob_chunks (
  id TEXT NOT NULL REFERENCES parley_blobs (id) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  data BYTEA NOT NULL,
  PRIMARY KEY (id, idx)
);`;

interface Row {
  id: string;
  owner: string;
  chunk_count: number;
  chunk_bytes: number;
  chunks_stored: number;
  created_at: string;
  expires_at: string;
}

const toMeta = (r: Row): BlobMeta => ({
  id: r.id,
  owner: r.owner,
  chunkCount: r.chunk_count,
  chunkBytes: r.chunk_bytes,
  chunksStored: r.chunks_stored,
  createdAt: Number(r.created_at),
  expiresAt: Number(r.expires_at),
});

export class PostgresBlobStore implements BlobStore {
  readonly #pool: pg.Pool;
  /** The last append of each blob still running: the next one waits for it. */
  readonly #appending = new Map<string, Promise<number>>();

  private constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  static async open(connection: PostgresConnection): Promise<PostgresBlobStore> {
    const pool = openPool(connection);
    try {
      // Nodes starting together would race on CREATE TABLE IF NOT EXISTS: one at a time.
      await pool.query(
        `BEGIN; SELECT pg_advisory_xact_lock(hashtext('parley_blobs_schema')); ${SCHEMA} COMMIT;`,
      );
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw storageError(err);
    }
    return new PostgresBlobStore(pool);
  }

  async #tx<T>(work: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    let c: pg.PoolClient;
    try {
      c = await this.#pool.connect();
    } catch (err) {
      throw storageError(err);
    }
    try {
      await c.query('BEGIN');
      const out = await work(c);
      await c.query('COMMIT');
      return out;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err instanceof ServerError ? err : storageError(err);
    } finally {
      c.release();
    }
  }

  async begin(r: BlobBeginRequest): Promise<BlobBeginResult> {
    await this.expire(r.now);
    return this.#tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [r.owner]);
      const existing = await c.query<Row>('SELECT * FROM parley_blobs WHERE id = $1', [r.id]);
      const row = existing.rows[0];
      if (row) {
        const meta = toMeta(row);
        return sameShape(meta, r) ? { ok: true, blob: meta } : { ok: false, reason: 'conflict' };
      }
      const usedRow = await c.query<{ used: string | null }>(
        'SELECT SUM(chunk_count::bigint * chunk_bytes) AS used FROM parley_blobs WHERE owner = $1',
        [r.owner],
      );
      const used = Number(usedRow.rows[0]?.used ?? 0);
      if (used + blobBytes(r) > r.quotaBytes) return { ok: false, reason: 'over-quota', used };
      const meta: BlobMeta = {
        id: r.id,
        owner: r.owner,
        chunkCount: r.chunkCount,
        chunkBytes: r.chunkBytes,
        chunksStored: 0,
        createdAt: r.now,
        expiresAt: r.now + r.ttlMs,
      };
      await c.query('INSERT INTO parley_blobs VALUES ($1, $2, $3, $4, 0, $5, $6)', [
        meta.id,
        meta.owner,
        meta.chunkCount,
        meta.chunkBytes,
        meta.createdAt,
        meta.expiresAt,
      ]);
      return { ok: true, blob: meta };
    });
  }

  async get(id: string, now: number): Promise<BlobMeta | undefined> {
    try {
      const r = await this.#pool.query<Row>(
        'SELECT * FROM parley_blobs WHERE id = $1 AND expires_at > $2',
        [id, now],
      );
      return r.rows[0] ? toMeta(r.rows[0]) : undefined;
    } catch (err) {
      throw storageError(err);
    }
  }

  append(id: string, from: number, chunks: readonly Uint8Array[]): Promise<number> {
    // Overlapping appends of one blob run one after the other, each its own transaction.
    const prev = this.#appending.get(id) ?? Promise.resolve(0);
    const next = prev.catch(() => 0).then(() => this.#append(id, from, chunks));
    this.#appending.set(id, next);
    const forget = (): void => {
      if (this.#appending.get(id) === next) this.#appending.delete(id);
    };
    next.then(forget, forget);
    return next;
  }

  #append(id: string, from: number, chunks: readonly Uint8Array[]): Promise<number> {
    return this.#tx(async (c) => {
      const stored = from + chunks.length;
      const moved = await c.query(
        `UPDATE parley_blobs SET chunks_stored = $1
          WHERE id = $2 AND chunks_stored = $3 AND chunk_count >= $1`,
        [stored, id, from],
      );
      if (moved.rowCount !== 1) throw new ServerError('STORAGE', 'blob append out of order');
      await c.query(
        `INSERT INTO parley_blob_chunks (id, idx, data)
           SELECT $1, $2 + i - 1, d FROM unnest($3::bytea[]) WITH ORDINALITY AS t(d, i)
         ON CONFLICT (id, idx) DO UPDATE SET data = EXCLUDED.data`,
        [id, from, chunks.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength))],
      );
      return stored;
    });
  }

  async read(id: string, from: number, count: number): Promise<Uint8Array[]> {
    try {
      const r = await this.#pool.query<{ data: Buffer }>(
        `SELECT c.data FROM parley_blob_chunks c JOIN parley_blobs b ON b.id = c.id
          WHERE c.id = $1 AND c.idx >= $2 AND c.idx < $2 + $3 AND c.idx < b.chunks_stored
          ORDER BY c.idx`,
        [id, from, count],
      );
      return r.rows.map((row) => new Uint8Array(row.data));
    } catch (err) {
      throw storageError(err);
    }
  }

  async expire(now: number): Promise<number> {
    try {
      const r = await this.#pool.query('DELETE FROM parley_blobs WHERE expires_at <= $1', [now]);
      return r.rowCount ?? 0;
    } catch (err) {
      throw storageError(err);
    }
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
