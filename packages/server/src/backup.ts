/**
 * Backup and restore of a relay's data folder.
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
  mkdirSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { createNodeCrypto } from '@parley/crypto/node';
import { AuditLog, loadOrCreateAuditKey } from './audit.js';
import { readConfigFile, resolveConfig } from './config.js';
import { lockDataDir } from './data-lock.js';
import { ServerError } from './errors.js';
import { relayPaths } from './paths.js';

/** File names inside a backup folder. */
export const BACKUP_FILES = {
  database: 'relay.db',
  auditLog: 'audit.log',
  auditKey: 'audit.key',
  pki: 'pki',
} as const;

/** Options of {@link backupRelay} and {@link restoreRelay}. */
export interface BackupOptions {
  readonly dataDir: string;
  /** The relay's configuration file, if it moves the database or audit log. */
  readonly configFile?: string;
}

export interface BackupResult {
  readonly outDir: string;
  /** Audit records in the copy (complete lines). */
  readonly auditRecords: number;
}

export interface RestoreResult {
  /** One-time prekeys (X25519 and ML-KEM) marked spent. */
  readonly spentPrekeys: number;
  /** Where the database that was replaced was moved, if there was one. */
  readonly previousDatabase?: string;
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

/**
 * Copies a relay's state into a new folder `outDir`: relay.db (online backup), audit.log
 * (complete lines), audit.key and the relay's pki/ folder without any CA private key.
 * Safe while the relay serves.
 */
export async function backupRelay(
  o: BackupOptions & { readonly outDir: string },
): Promise<BackupResult> {
  const paths = pathsOf(o);
  const outDir = resolve(o.outDir);
  if (existsSync(outDir)) {
    throw new ServerError('STARTUP', `${outDir} already exists; give a new folder for the backup`);
  }
  if (!existsSync(paths.database)) {
    throw new ServerError('STORAGE', `no relay database at ${paths.database}`);
  }
  mkdirSync(outDir, { recursive: true, mode: 0o700 });
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
  return { outDir, auditRecords };
}

/**
 * Restores relay.db from a backup folder into a stopped relay's data folder (it takes
 * the data-folder lock, so a running relay makes it fail) and marks every stored
 * one-time prekey spent. An existing database is moved aside, never deleted. The
 * audit log and key are restored only where the folder has none: a newer audit chain
 * is worth more than the backup's prefix of it. The restore is audited.
 */
export function restoreRelay(o: BackupOptions & { readonly fromDir: string }): RestoreResult {
  const paths = pathsOf(o);
  const from = resolve(o.fromDir);
  const source = join(from, BACKUP_FILES.database);
  if (!existsSync(source))
    throw new ServerError('STORAGE', `no ${BACKUP_FILES.database} in ${from}`);
  mkdirSync(paths.dataDir, { recursive: true, mode: 0o700 });
  const lock = lockDataDir(paths.dataDir);
  try {
    let previousDatabase: string | undefined;
    if (existsSync(paths.database)) {
      previousDatabase = `${paths.database}.before-restore-${new Date().toISOString().replace(/[:.]/g, '-')}`;
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
    return { spentPrekeys, ...(previousDatabase !== undefined ? { previousDatabase } : {}) };
  } finally {
    lock.release();
  }
}
