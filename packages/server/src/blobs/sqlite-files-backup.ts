/**
 * Backup and restore of the default blob store (`sqlite-files.ts`) beside a serving relay.
 *
 * Consistency rests on the store's write order: a chunk is synced to the blob file before
 * the index commits the count that covers it, and a committed chunk is never rewritten
 * (appends start at the committed count). So a snapshot of the index (SQLite's online
 * backup API) followed by a copy of each file cut to the snapshot's committed length is a
 * state the store has been in: every chunk the copied index claims is in the copied file.
 * A blob that expires (its file deleted) or is replaced between the two steps is dropped
 * from the copied index, as if it had expired just before the backup.
 *
 * Owns: the blob part of a relay backup. `backup.ts` archives and unpacks the folder.
 */
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  renameSync,
  statSync,
  truncateSync,
} from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { BLOBS_DIR, BLOB_INDEX_FILE, blobFileName } from './sqlite-files.js';

export interface BlobsCopied {
  /** Blobs in the copy (complete or partly uploaded). */
  readonly blobs: number;
  /** Ciphertext bytes in the copy. */
  readonly bytes: number;
}

interface IndexRow {
  id: string;
  chunk_bytes: number;
  chunks_stored: number;
}

/**
 * Copies `dataDir`/blobs into `outDir`/blobs, consistent with itself while the relay
 * writes; blobs expired at `now` are left out. Nothing is copied (and `undefined`
 * returned) when the relay has no blob store yet.
 */
export async function copyBlobStore(
  dataDir: string,
  outDir: string,
  now: number,
): Promise<BlobsCopied | undefined> {
  const from = join(dataDir, BLOBS_DIR);
  const index = join(from, BLOB_INDEX_FILE);
  if (!existsSync(index)) return undefined;
  const to = join(outDir, BLOBS_DIR);
  mkdirSync(to, { mode: 0o700 });
  const source = new Database(index, { readonly: true, fileMustExist: true });
  try {
    await source.backup(join(to, BLOB_INDEX_FILE));
  } finally {
    source.close();
  }
  chmodSync(join(to, BLOB_INDEX_FILE), 0o600);
  const copy = new Database(join(to, BLOB_INDEX_FILE));
  try {
    copy.prepare('DELETE FROM blobs WHERE expires_at <= ?').run(now);
    const rows = copy
      .prepare('SELECT id, chunk_bytes, chunks_stored FROM blobs')
      .all() as IndexRow[];
    const drop = copy.prepare('DELETE FROM blobs WHERE id = ?');
    let blobs = 0;
    let bytes = 0;
    for (const r of rows) {
      const length = r.chunks_stored * r.chunk_bytes;
      const target = join(to, blobFileName(r.id));
      if (!copyPrefix(join(from, blobFileName(r.id)), target, length)) {
        drop.run(r.id);
        continue;
      }
      blobs++;
      bytes += length;
    }
    // The copy is read by a fresh relay: no WAL beside it.
    copy.pragma('journal_mode = DELETE');
    return { blobs, bytes };
  } finally {
    copy.close();
  }
}

/**
 * Copies the first `length` bytes of `from` to `to` (a new file, mode 0600). False when
 * `from` is gone or shorter: it expired or was replaced after the index was copied.
 */
function copyPrefix(from: string, to: string, length: number): boolean {
  try {
    // The whole file, then cut: copyFile may clone or use copy_file_range.
    copyFileSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  chmodSync(to, 0o600);
  if (statSync(to).size < length) return false;
  truncateSync(to, length);
  return true;
}

/**
 * Puts a backup's blobs (unpacked in `fromDir`/blobs) in place of `dataDir`/blobs of a
 * stopped relay; the folder replaced is moved aside, never deleted. Returns where it went,
 * or undefined if there was none; does nothing when the backup holds no blobs.
 */
export function restoreBlobStore(
  fromDir: string,
  dataDir: string,
  stamp: string,
): { restored: boolean; previous?: string } {
  const source = join(fromDir, BLOBS_DIR);
  if (!existsSync(join(source, BLOB_INDEX_FILE))) return { restored: false };
  const target = join(dataDir, BLOBS_DIR);
  let previous: string | undefined;
  if (existsSync(target)) {
    previous = `${target}.before-restore-${stamp}`;
    renameSync(target, previous);
  }
  // Same file system (the staging folder is inside the data folder): a rename.
  renameSync(source, target);
  chmodSync(target, 0o700);
  return { restored: true, ...(previous !== undefined ? { previous } : {}) };
}
