/**
 * Encrypted backup and restore of a profile folder: one file holding keys, contacts
 * and history, in the format every client shares (the client core's backup-format.ts;
 * the web client exports and imports the same files).
 *
 * The records are read from the whole database as SQLite serializes it inside one
 * read transaction (consistent even while the client runs), decrypted only in memory.
 * Restore decrypts first (a wrong secret writes nothing), then commits the records
 * into a fresh profile made in a temporary folder beside the target and renames it
 * into place. Files of format 1 (which held the SQLite image itself) still restore.
 * The ratchet states restored are as old as the backup: the first exchange with each
 * contact fails to decrypt on one side and the end-to-end repair (repair.ts)
 * re-secures the session and re-sends what is unreceipted.
 */
import {
  existsSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import { createPortableCrypto, zeroize } from '@parley/crypto';
import type { CryptoProvider } from '@parley/crypto';
import {
  BACKUP_FORMAT_VERSION,
  ClientError,
  backupCounts,
  newRecoveryKey,
  openBackup,
  sealBackup,
  upgradeOutboxWrites,
} from '@parley/client';
import type { KdfParams, MessageStatus, OutboxEntry, StoreWrite, TrustState } from '@parley/client';
import { outboxEntryOf } from './outbox-table.js';
import type { OutboxRow } from './outbox-table.js';
import { createProfile, openProfile, profileExists, PROFILE_DB_FILE } from './profile.js';

export { BACKUP_FORMAT_VERSION, RECOVERY_KEY_BYTES } from '@parley/client';
/** A backup is read whole into memory; beyond this it is refused rather than risked. */
export const MAX_BACKUP_BYTES = 2 * 1024 * 1024 * 1024;

export interface BackupOptions {
  readonly profile: string;
  /** The profile's passphrase. */
  readonly passphrase: string;
  readonly out: string;
  /** Backup passphrase; without one a recovery key is generated and returned. */
  readonly backupPassphrase?: string;
  readonly crypto?: CryptoProvider;
  /** Argon2id cost overrides (tests). */
  readonly kdf?: Partial<Pick<KdfParams, 'memoryKiB' | 'iterations' | 'parallelism'>>;
}

export interface BackupResult {
  /** Set when no passphrase was given: the only way to open the backup. */
  readonly recoveryKey?: string;
  readonly messages: number;
  readonly contacts: number;
}

/** The records of a serialized database image (a snapshot, or a format-1 backup). */
function recordsOfImage(image: Uint8Array): ReturnType<typeof recordsOf> {
  // The image was serialized from a WAL database; an in-memory copy must not claim WAL
  // (file format bytes 18 and 19, SQLite file format §1.3).
  image[18] = 1;
  image[19] = 1;
  const source = new Database(Buffer.from(image.buffer, image.byteOffset, image.byteLength));
  try {
    if (source.pragma('quick_check', { simple: true }) !== 'ok')
      throw new ClientError('PROFILE_CORRUPT', '--from: the backup database is damaged');
    return recordsOf(source);
  } catch (err) {
    if (err instanceof ClientError) throw err;
    throw new ClientError('PROFILE_CORRUPT', '--from: the backup does not hold a profile', {
      cause: err,
    });
  } finally {
    source.close();
  }
}

/** Writes an encrypted backup of a profile to `o.out` (which must not exist). */
export async function backupProfile(o: BackupOptions): Promise<BackupResult> {
  const crypto = o.crypto ?? createPortableCrypto();
  if (existsSync(o.out)) throw new ClientError('INVALID_ARGUMENT', `--out: ${o.out} exists`);
  if (o.backupPassphrase !== undefined && o.backupPassphrase.length === 0)
    throw new ClientError('INVALID_ARGUMENT', 'backup passphrase: must not be empty');
  const recoveryKey = o.backupPassphrase === undefined ? newRecoveryKey(crypto) : undefined;
  const store = await openProfile(o.profile, o.passphrase, { crypto });
  let image: Uint8Array;
  try {
    const snap = store.snapshot();
    image = new Uint8Array(snap.buffer, snap.byteOffset, snap.byteLength);
  } finally {
    await store.close();
  }
  let records: ReturnType<typeof recordsOf>;
  try {
    records = recordsOfImage(image);
  } finally {
    zeroize(image);
  }
  const file = await sealBackup({
    crypto,
    records: records.writes,
    secret:
      recoveryKey === undefined
        ? { kind: 'passphrase', value: o.backupPassphrase as string }
        : { kind: 'recovery-key', value: recoveryKey },
    ...(o.kdf ? { kdf: o.kdf } : {}),
  });
  // Written beside the target and renamed, so FILE is either absent or complete.
  const tmp = join(dirname(o.out), `.${basename(o.out)}.tmp`);
  try {
    rmSync(tmp, { force: true });
    writeFileSync(tmp, file, { mode: 0o600, flag: 'wx' });
    renameSync(tmp, o.out);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new ClientError('INVALID_ARGUMENT', `--out: cannot write ${o.out}`, { cause: err });
  }
  return {
    ...(recoveryKey !== undefined ? { recoveryKey } : {}),
    messages: records.result.messages,
    contacts: records.result.contacts,
  };
}

export interface RestoreOptions {
  /** The new profile folder: must not exist, or be empty. */
  readonly profile: string;
  readonly from: string;
  /** The backup passphrase or recovery key. */
  readonly backupSecret: string;
  /** Passphrase of the restored profile. */
  readonly passphrase: string;
  readonly crypto?: CryptoProvider;
  readonly kdf?: Partial<Pick<KdfParams, 'memoryKiB' | 'iterations' | 'parallelism'>>;
}

export interface RestoreResult {
  readonly messages: number;
  readonly contacts: number;
  readonly sessions: number;
}

function checkTarget(dir: string): void {
  if (profileExists(dir) || (existsSync(dir) && readdirSync(dir).length > 0)) {
    throw new ClientError('PROFILE_EXISTS', `--profile: ${dir} is not empty`);
  }
}

type Row = Record<string, unknown>;
const blob = (v: unknown): Uint8Array => new Uint8Array(v as Buffer);

/** The records of a decrypted image as store writes, messages in conversation order. */
function recordsOf(db: Database.Database): { writes: StoreWrite[]; result: RestoreResult } {
  const all = (sql: string): Row[] => db.prepare(sql).all() as Row[];
  const writes: StoreWrite[] = [];
  for (const r of all('SELECT key, value FROM meta'))
    writes.push({ op: 'meta.put', key: r['key'] as string, value: blob(r['value']) });
  const sessions = all('SELECT peer, device, state FROM sessions');
  for (const r of sessions) {
    writes.push({
      op: 'session.put',
      peer: r['peer'] as string,
      deviceId: r['device'] as number,
      state: blob(r['state']),
    });
  }
  for (const r of all('SELECT kind, id, value FROM secrets'))
    writes.push({
      op: 'secret.put',
      kind: r['kind'] as string,
      id: r['id'] as number,
      value: blob(r['value']),
    });
  const contacts = all('SELECT * FROM contacts');
  for (const r of contacts) {
    writes.push({
      op: 'contact.put',
      contact: {
        name: r['name'] as string,
        deviceId: r['device'] as number,
        identityKey: blob(r['identity_key']),
        trust: r['trust'] as TrustState,
        ...(r['previous_key'] ? { previousIdentityKey: blob(r['previous_key']) } : {}),
        addedAt: r['added_at'] as number,
        updatedAt: r['updated_at'] as number,
      },
    });
  }
  const messages = all('SELECT * FROM messages ORDER BY seq');
  for (const r of messages) {
    writes.push({
      op: 'message.put',
      message: {
        id: r['id'] as string,
        peer: r['peer'] as string,
        direction: r['direction'] as 'in' | 'out',
        text: r['text'] as string,
        sentAt: r['sent_at'] as number,
        storedAt: r['stored_at'] as number,
        status: r['status'] as MessageStatus,
        shown: r['shown'] !== 0,
        // Group fields (schema 5; absent or NULL in older images and pairwise rows).
        ...(typeof r['sender'] === 'string' ? { from: r['sender'] } : {}),
        ...(typeof r['group_delivery'] === 'string'
          ? {
              groupDelivery: JSON.parse(r['group_delivery']) as {
                of: number;
                by: string[];
              },
            }
          : {}),
        // A disappearing message stays one after a restore (older images lack the columns).
        ...(typeof r['expires_at'] === 'number' ? { expiresAt: r['expires_at'] } : {}),
        ...(typeof r['timer_ms'] === 'number' ? { timerMs: r['timer_ms'] } : {}),
      },
    });
  }
  for (const r of all('SELECT key FROM seen'))
    writes.push({ op: 'seen.add', key: r['key'] as string });
  for (const r of all('SELECT * FROM outbox ORDER BY created_at, rowid'))
    writes.push({
      op: 'outbox.put',
      entry: outboxEntryOf(r as unknown as OutboxRow) as OutboxEntry,
    });
  return {
    // An image from before typed outbox records restores with them.
    writes: upgradeOutboxWrites(writes),
    result: { messages: messages.length, contacts: contacts.length, sessions: sessions.length },
  };
}

/**
 * Restores a backup into a fresh profile folder. Errors, all before anything is
 * written: `PROFILE_EXISTS` (target not empty), `INVALID_ARGUMENT` (not a backup,
 * unknown version), `WRONG_PASSPHRASE` (the secret does not open it, or it was altered).
 */
export async function restoreProfile(o: RestoreOptions): Promise<RestoreResult> {
  const crypto = o.crypto ?? createPortableCrypto();
  checkTarget(o.profile);
  let size: number;
  try {
    size = statSync(o.from).size;
  } catch (err) {
    throw new ClientError('INVALID_ARGUMENT', `--from: cannot read ${o.from}`, { cause: err });
  }
  if (size > MAX_BACKUP_BYTES) throw new ClientError('INVALID_ARGUMENT', '--from: too large');
  const file = new Uint8Array(readFileSync(o.from));
  const opened = await openBackup(crypto, file, o.backupSecret);
  let records: ReturnType<typeof recordsOf>;
  if (opened.version === BACKUP_FORMAT_VERSION) {
    records = { writes: opened.records, result: backupCounts(opened.records) };
  } else {
    try {
      records = recordsOfImage(opened.image);
    } finally {
      zeroize(opened.image);
    }
  }

  // Built beside the target and renamed in, so a crash leaves no half-restored profile.
  const tmp = join(dirname(o.profile), `.${basename(o.profile)}.restoring`);
  rmSync(tmp, { recursive: true, force: true });
  try {
    const store = await createProfile(tmp, o.passphrase, {
      crypto,
      ...(o.kdf ? { kdf: o.kdf } : {}),
    });
    try {
      await store.commit(records.writes);
    } finally {
      await store.close();
    }
    if (existsSync(o.profile)) rmdirSync(o.profile);
    renameSync(tmp, o.profile);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  if (!existsSync(join(o.profile, PROFILE_DB_FILE)))
    throw new ClientError('STORE', 'restore did not complete');
  return records.result;
}
