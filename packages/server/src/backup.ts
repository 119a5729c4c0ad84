/**
 * Backup and restore of a relay's data folder.
 *
 * A backup is ONE file: a POSIX tar archive (written with the `tar` package) holding
 * relay.db, audit.log, audit.key, pki/ (never a CA key) and blobs/ (attachment blobs and
 * their index, blobs/sqlite-files-backup.ts), staged in a private
 * temporary folder, archived to a temporary name and then linked into place, so a
 * crash leaves no half-written backup and an existing file is never replaced.
 *
 * Backup runs beside a serving relay: the database is copied with SQLite's online
 * backup API (a consistent snapshot even while the writer thread commits), the audit
 * log up to its last complete line (a prefix of a hash chain still verifies).
 *
 * Restore must not bring back one-time prekeys that were handed out after the backup
 * was taken: a peer that used one would meet a second peer using the same key, and
 * the device that owns it has already deleted its secret. The backup cannot tell
 * which of its one-time prekeys are still unused, so restore deletes them all; on the
 * next login each device is below the low-water mark, gets `prekeys.low` and uploads
 * fresh ones. Signed and last-resort prekeys stay (they are meant for reuse).
 */
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import * as tar from 'tar';
import { createNodeCrypto } from '@parley/crypto/node';
import { AuditLog, loadOrCreateAuditKey } from './audit.js';
import { readConfigFile, resolveConfig } from './config.js';
import { lockDataDir } from './data-lock.js';
import { ServerError } from './errors.js';
import { relayPaths } from './paths.js';
import { BLOBS_DIR } from './blobs/sqlite-files.js';
import { copyBlobStore, restoreBlobStore, type BlobsCopied } from './blobs/sqlite-files-backup.js';

/** Entry names inside a backup archive. */
export const BACKUP_FILES = {
  database: 'relay.db',
  auditLog: 'audit.log',
  auditKey: 'audit.key',
  pki: 'pki',
  blobs: BLOBS_DIR,
} as const;

/** Options of {@link backupRelay} and {@link restoreRelay}. */
export interface BackupOptions {
  readonly dataDir: string;
  /** The relay's configuration file, if it moves the database or audit log. */
  readonly configFile?: string;
}

export interface BackupResult {
  /** The archive written. */
  readonly outFile: string;
  /** Audit records in the copy (complete lines). */
  readonly auditRecords: number;
  /** Attachment blobs in the copy (none if the relay never stored one). */
  readonly blobs: BlobsCopied;
}

export interface RestoreResult {
  /** One-time prekeys (X25519 and ML-KEM) marked spent. */
  readonly spentPrekeys: number;
  /** Where the database that was replaced was moved, if there was one. */
  readonly previousDatabase?: string;
  /** Whether pki/ came from the backup (only into a folder that had none). */
  readonly restoredPki: boolean;
  /** Whether the backup held attachment blobs (they replaced DATA/blobs). */
  readonly restoredBlobs: boolean;
  /** Where the blob folder that was replaced was moved, if there was one. */
  readonly previousBlobs?: string;
}

function pathsOf(o: BackupOptions) {
  const config = resolveConfig(o.configFile ? readConfigFile(o.configFile) : {});
  if (config.storage.engine !== 'sqlite') {
    // A PostgreSQL relay is backed up with PostgreSQL's own tools (docs/operations.md).
    throw new ServerError(
      'CONFIG_INVALID',
      'parley server backup/restore cover the embedded SQLite store only',
    );
  }
  return relayPaths(resolve(o.dataDir), config);
}

/** A private folder beside `near` for staging files; removed by the caller. */
function stagingDir(near: string): string {
  return mkdtempSync(join(dirname(near), `.${basename(near)}.staging-`));
}

/**
 * Writes a relay's state into ONE new archive `outFile`: relay.db (online backup),
 * audit.log (complete lines), audit.key and the relay's pki/ folder without any CA
 * private key. Safe while the relay serves. Refuses an existing `outFile`.
 */
export async function backupRelay(
  o: BackupOptions & { readonly outFile: string },
): Promise<BackupResult> {
  const paths = pathsOf(o);
  const outFile = resolve(o.outFile);
  if (existsSync(outFile)) {
    throw new ServerError('STARTUP', `${outFile} already exists; give a new file for the backup`);
  }
  if (!existsSync(paths.database)) {
    throw new ServerError('STORAGE', `no relay database at ${paths.database}`);
  }
  mkdirSync(dirname(outFile), { recursive: true, mode: 0o700 });
  const outDir = stagingDir(outFile);
  // Inside the private staging folder: the archive holds keys before its mode is set.
  const tmp = join(outDir, '.archive.tar');
  try {
    const { auditRecords, blobs } = await stage(paths, outDir);
    await tar.create({ file: tmp, cwd: outDir, portable: true }, readdirNames(outDir));
    chmodSync(tmp, 0o600);
    try {
      // link, unlike rename, fails if outFile appeared meanwhile: never overwrite it.
      linkSync(tmp, outFile);
    } catch (err) {
      if ((err as { code?: string }).code === 'EEXIST') {
        throw new ServerError(
          'STARTUP',
          `${outFile} already exists; give a new file for the backup`,
        );
      }
      throw err;
    }
    return { outFile, auditRecords, blobs };
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}

/** The names of the entries staged for an archive, in a fixed order. */
function readdirNames(dir: string): string[] {
  return Object.values(BACKUP_FILES).filter((n) => existsSync(join(dir, n)));
}

/** Copies the relay's state into the staging folder; returns what it copied. */
async function stage(
  paths: ReturnType<typeof pathsOf>,
  outDir: string,
): Promise<{ auditRecords: number; blobs: BlobsCopied }> {
  const db = new Database(paths.database, { readonly: true, fileMustExist: true });
  try {
    await db.backup(join(outDir, BACKUP_FILES.database));
  } finally {
    db.close();
  }
  chmodSync(join(outDir, BACKUP_FILES.database), 0o600);
  let auditRecords = 0;
  if (existsSync(paths.auditLog)) {
    const text = readFileSync(paths.auditLog, 'utf8');
    // The relay may be half-way through appending a line; keep what is complete.
    const complete = text.slice(0, text.lastIndexOf('\n') + 1);
    auditRecords = complete.split('\n').filter((l) => l.length > 0).length;
    writeFileSync(join(outDir, BACKUP_FILES.auditLog), complete, { mode: 0o600 });
  }
  if (existsSync(paths.auditKey)) {
    copyFileSync(paths.auditKey, join(outDir, BACKUP_FILES.auditKey));
    chmodSync(join(outDir, BACKUP_FILES.auditKey), 0o600);
  }
  const pkiDir = join(paths.dataDir, 'pki');
  if (existsSync(pkiDir)) {
    // The CA key is never copied into a relay backup: it belongs offline.
    cpSync(pkiDir, join(outDir, BACKUP_FILES.pki), {
      recursive: true,
      filter: (src) => !/(^|\/)(ca\.key|\.lock)$/.test(src) && !src.includes('.tmp-'),
    });
  }
  const blobs = (await copyBlobStore(paths.dataDir, outDir, Date.now())) ?? { blobs: 0, bytes: 0 };
  return { auditRecords, blobs };
}

/** Whether an archive entry is one a backup holds: the fixed names, files and folders only. */
function isBackupEntry(path: string, type: string | undefined): boolean {
  const clean = path.replace(/^\.\//, '').replace(/\/$/, '');
  const top = clean.split('/')[0] ?? '';
  const known = Object.values(BACKUP_FILES).some((n) => n === top);
  return known && !clean.split('/').includes('..') && (type === 'File' || type === 'Directory');
}

/** Unpacks a backup archive into `dir`; `STORAGE` if it is not one. */
function unpack(file: string, dir: string): void {
  if (!existsSync(file)) throw new ServerError('STORAGE', `no backup file at ${file}`);
  try {
    tar.extract({
      file,
      cwd: dir,
      sync: true,
      strict: true,
      filter: (path, entry) => isBackupEntry(path, 'type' in entry ? entry.type : undefined),
    });
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new ServerError('STORAGE', `${file} is not a readable relay backup archive (${why})`);
  }
}

/**
 * Restores relay.db and the attachment blobs from a backup archive into a stopped relay's
 * data folder (it takes the data-folder lock, so a running relay makes it fail) and marks
 * every stored one-time prekey spent. An existing database or blob folder is moved aside,
 * never deleted. The audit log and key, and pki/, are restored only where the folder has
 * none: a newer audit chain is worth more than the backup's prefix of it, and a relay's
 * current certificates more than old ones. The restore is audited.
 */
export function restoreRelay(o: BackupOptions & { readonly fromFile: string }): RestoreResult {
  const paths = pathsOf(o);
  const file = resolve(o.fromFile);
  mkdirSync(paths.dataDir, { recursive: true, mode: 0o700 });
  const lock = lockDataDir(paths.dataDir);
  const from = stagingDir(join(paths.dataDir, 'restore'));
  try {
    unpack(file, from);
    const source = join(from, BACKUP_FILES.database);
    if (!existsSync(source)) {
      throw new ServerError('STORAGE', `no ${BACKUP_FILES.database} in the backup ${file}`);
    }
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    let previousDatabase: string | undefined;
    if (existsSync(paths.database)) {
      previousDatabase = `${paths.database}.before-restore-${stamp}`;
      renameSync(paths.database, previousDatabase);
      for (const suffix of ['-wal', '-shm']) {
        if (existsSync(paths.database + suffix)) {
          renameSync(paths.database + suffix, previousDatabase + suffix);
        }
      }
    }
    copyFileSync(source, paths.database);
    chmodSync(paths.database, 0o600);
    const db = new Database(paths.database, { fileMustExist: true });
    let spentPrekeys: number;
    try {
      spentPrekeys = db.prepare('DELETE FROM one_time_prekeys').run().changes;
    } finally {
      db.close();
    }
    const blobs = restoreBlobStore(from, paths.dataDir, stamp);
    // A fresh folder (a new machine) gets the backup's certificates and TLS key back, so
    // the relay keeps the identity its clients pin; an existing pki/ is left alone.
    const pkiDir = join(paths.dataDir, BACKUP_FILES.pki);
    const restoredPki = !existsSync(pkiDir) && existsSync(join(from, BACKUP_FILES.pki));
    if (restoredPki) {
      renameSync(join(from, BACKUP_FILES.pki), pkiDir);
      chmodSync(pkiDir, 0o700);
    }
    for (const [name, target] of [
      [BACKUP_FILES.auditKey, paths.auditKey],
      [BACKUP_FILES.auditLog, paths.auditLog],
    ] as const) {
      if (!existsSync(target) && existsSync(join(from, name))) {
        copyFileSync(join(from, name), target);
        chmodSync(target, 0o600);
      }
    }
    const crypto = createNodeCrypto();
    const audit = new AuditLog(
      paths.auditLog,
      loadOrCreateAuditKey(paths.auditKey, crypto),
      crypto,
      Date.now,
    );
    audit.write({ type: 'relay.restored', value: spentPrekeys });
    audit.close();
    return {
      spentPrekeys,
      ...(previousDatabase !== undefined ? { previousDatabase } : {}),
      restoredBlobs: blobs.restored,
      restoredPki,
      ...(blobs.previous !== undefined ? { previousBlobs: blobs.previous } : {}),
    };
  } finally {
    rmSync(from, { recursive: true, force: true });
    lock.release();
  }
}
