/**
 * Encrypted backup and restore of a profile (issue 13 §5): one file holding keys,
 * contacts and history.
 *
 * The snapshot is the whole database as SQLite serializes it inside one read
 * transaction (consistent even while the client runs), decrypted only in memory, then
 * sealed with XChaCha20-Poly1305 under an Argon2id key of the backup passphrase or of a
 * generated recovery key. Layout (all integers big-endian):
 *
 *   magic "PARLEYBK" (8) ‖ version u8 = 1 ‖ secret u8 (1 passphrase, 2 recovery key)
 *   ‖ memoryKiB u32 ‖ iterations u32 ‖ parallelism u8 ‖ salt (16) ‖ nonce (24)
 *   ‖ AEAD(key, nonce, SQLite image, aad = every byte before the ciphertext)
 *
 * Restore decrypts first (a wrong secret writes nothing), then copies the records into
 * a fresh profile made in a temporary folder beside the target and renames it into
 * place. The ratchet states restored are as old as the backup: the first exchange with
 * each contact fails to decrypt on one side and the end-to-end repair (repair.ts)
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
import { asAeadKey, createPortableCrypto, utf8Encode, zeroize } from '@parley/crypto';
import type { CryptoProvider } from '@parley/crypto';
import {
  ClientError,
  checkKdfParams,
  deriveStoreKey,
  newKdfParams,
  SALT_BYTES,
} from '@parley/client';
import type { KdfParams, MessageStatus, StoreWrite, TrustState } from '@parley/client';
import { createProfile, openProfile, profileExists, PROFILE_DB_FILE } from './profile.js';

const MAGIC = utf8Encode('PARLEYBK');
export const BACKUP_FORMAT_VERSION = 1;
const SECRET_PASSPHRASE = 1;
const SECRET_RECOVERY_KEY = 2;
const NONCE_BYTES = 24;
const HEADER_BYTES = MAGIC.length + 1 + 1 + 4 + 4 + 1 + SALT_BYTES + NONCE_BYTES;
/** A backup is read whole into memory; beyond this it is refused rather than risked. */
export const MAX_BACKUP_BYTES = 2 * 1024 * 1024 * 1024;
/** Recovery key: 160 random bits, shown as 32 base32 characters in groups of four. */
export const RECOVERY_KEY_BYTES = 20;
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

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

function encodeRecoveryKey(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return (out.match(/.{1,4}/g) ?? []).join('-');
}

/** How a typed recovery key is read: case, spaces and dashes do not matter. */
function normaliseRecoveryKey(typed: string): string {
  return typed.toUpperCase().replace(/[\s-]/g, '');
}

function encodeHeader(secret: number, kdf: KdfParams, nonce: Uint8Array): Uint8Array {
  const h = new Uint8Array(HEADER_BYTES);
  const v = new DataView(h.buffer);
  h.set(MAGIC, 0);
  let at = MAGIC.length;
  h[at++] = BACKUP_FORMAT_VERSION;
  h[at++] = secret;
  v.setUint32(at, kdf.memoryKiB);
  v.setUint32(at + 4, kdf.iterations);
  h[at + 8] = kdf.parallelism;
  at += 9;
  h.set(Buffer.from(kdf.salt, 'hex'), at);
  h.set(nonce, at + SALT_BYTES);
  return h;
}

function decodeHeader(file: Uint8Array): { secret: number; kdf: KdfParams; nonce: Uint8Array } {
  const bad = (why: string): never => {
    throw new ClientError('INVALID_ARGUMENT', `--from: ${why}`);
  };
  if (file.length < HEADER_BYTES + 16 || !Buffer.from(file.subarray(0, 8)).equals(MAGIC)) {
    bad('not a Parley backup');
  }
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  let at = MAGIC.length;
  if (file[at] !== BACKUP_FORMAT_VERSION) bad(`backup format ${file[at]} is not supported`);
  const secret = file[at + 1] as number;
  if (secret !== SECRET_PASSPHRASE && secret !== SECRET_RECOVERY_KEY) bad('unknown secret kind');
  at += 2;
  let kdf: KdfParams;
  try {
    // The same bounds as a profile header: a forged file can neither make guessing
    // cheap nor make restore allocate gigabytes.
    kdf = checkKdfParams({
      algorithm: 'argon2id',
      memoryKiB: v.getUint32(at),
      iterations: v.getUint32(at + 4),
      parallelism: file[at + 8],
      salt: Buffer.from(file.subarray(at + 9, at + 9 + SALT_BYTES)).toString('hex'),
    });
  } catch {
    return bad('key derivation parameters out of range');
  }
  at += 9 + SALT_BYTES;
  return { secret, kdf, nonce: file.slice(at, at + NONCE_BYTES) };
}

/** Writes an encrypted backup of a profile to `o.out` (which must not exist). */
export async function backupProfile(o: BackupOptions): Promise<BackupResult> {
  const crypto = o.crypto ?? createPortableCrypto();
  if (existsSync(o.out)) throw new ClientError('INVALID_ARGUMENT', `--out: ${o.out} exists`);
  if (o.backupPassphrase !== undefined && o.backupPassphrase.length === 0)
    throw new ClientError('INVALID_ARGUMENT', 'backup passphrase: must not be empty');
  const recoveryKey =
    o.backupPassphrase === undefined
      ? encodeRecoveryKey(crypto.randomBytes(RECOVERY_KEY_BYTES))
      : undefined;
  const secret = o.backupPassphrase ?? (recoveryKey as string);
  const store = await openProfile(o.profile, o.passphrase, { crypto });
  let image: Buffer;
  let messages: number;
  let contacts: number;
  try {
    image = store.snapshot();
    messages = (await store.listMessages()).length;
    contacts = (await store.listContacts()).length;
  } finally {
    await store.close();
  }
  const kdf = newKdfParams(crypto, o.kdf);
  const kind = recoveryKey === undefined ? SECRET_PASSPHRASE : SECRET_RECOVERY_KEY;
  const key = await deriveStoreKey(
    kind === SECRET_RECOVERY_KEY ? normaliseRecoveryKey(secret) : secret,
    kdf,
  );
  try {
    const header = encodeHeader(kind, kdf, crypto.randomBytes(NONCE_BYTES));
    const sealed = crypto.xchacha20poly1305.encrypt(
      asAeadKey(key),
      header.subarray(HEADER_BYTES - NONCE_BYTES),
      image,
      header,
    );
    // Written beside the target and renamed, so FILE is either absent or complete.
    const tmp = join(dirname(o.out), `.${basename(o.out)}.tmp`);
    try {
      rmSync(tmp, { force: true });
      writeFileSync(tmp, Buffer.concat([header, sealed]), { mode: 0o600, flag: 'wx' });
      renameSync(tmp, o.out);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw new ClientError('INVALID_ARGUMENT', `--out: cannot write ${o.out}`, { cause: err });
    }
  } finally {
    zeroize(key);
    zeroize(image);
  }
  return { ...(recoveryKey !== undefined ? { recoveryKey } : {}), messages, contacts };
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
      },
    });
  }
  for (const r of all('SELECT key FROM seen'))
    writes.push({ op: 'seen.add', key: r['key'] as string });
  for (const r of all('SELECT * FROM outbox ORDER BY created_at, rowid')) {
    writes.push({
      op: 'outbox.put',
      entry: {
        id: r['id'] as string,
        peer: r['peer'] as string,
        deviceId: r['device'] as number,
        payload: blob(r['payload']),
        createdAt: r['created_at'] as number,
        attempts: r['attempts'] as number,
        ...(typeof r['recipients'] === 'string'
          ? { recipients: JSON.parse(r['recipients']) as string[] }
          : {}),
      },
    });
  }
  return {
    writes,
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
  const { secret, kdf, nonce } = decodeHeader(file);
  const key = await deriveStoreKey(
    secret === SECRET_RECOVERY_KEY ? normaliseRecoveryKey(o.backupSecret) : o.backupSecret,
    kdf,
  );
  let image: Uint8Array;
  try {
    image = crypto.xchacha20poly1305.decrypt(
      asAeadKey(key),
      nonce,
      file.subarray(HEADER_BYTES),
      file.subarray(0, HEADER_BYTES),
    );
  } catch {
    throw new ClientError(
      'WRONG_PASSPHRASE',
      'wrong backup passphrase or recovery key (or the file was altered); nothing was written',
    );
  } finally {
    zeroize(key);
  }
  // The image was serialized from a WAL database; an in-memory copy must not claim WAL
  // (file format bytes 18 and 19, SQLite file format §1.3).
  image[18] = 1;
  image[19] = 1;
  let records: ReturnType<typeof recordsOf>;
  const source = new Database(Buffer.from(image.buffer, image.byteOffset, image.byteLength));
  try {
    if (source.pragma('quick_check', { simple: true }) !== 'ok')
      throw new ClientError('PROFILE_CORRUPT', '--from: the backup database is damaged');
    records = recordsOf(source);
  } catch (err) {
    if (err instanceof ClientError) throw err;
    throw new ClientError('PROFILE_CORRUPT', '--from: the backup does not hold a profile', {
      cause: err,
    });
  } finally {
    source.close();
    zeroize(image);
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
