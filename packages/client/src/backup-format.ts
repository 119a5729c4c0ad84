/**
 * The backup file format shared by every client (terminal and web): one file holding a
 * profile's keys, contacts and history as the store writes that rebuild it, sealed with
 * XChaCha20-Poly1305 under an Argon2id key of a backup passphrase or of a generated
 * recovery key. Layout (all integers big-endian):
 *
 *   magic "PARLEYBK" (8) ‖ version u8 ‖ secret u8 (1 passphrase, 2 recovery key)
 *   ‖ memoryKiB u32 ‖ iterations u32 ‖ parallelism u8 ‖ salt (16) ‖ nonce (24)
 *   ‖ AEAD(key, nonce, payload, aad = every byte before the ciphertext)
 *
 * Version 2 (written now): the payload is UTF-8 JSON `{"records": [StoreWrite, ...]}`,
 * byte strings as `{"$b": hex}`, messages in conversation order, so any backend can
 * replay it through `ClientStore.commit`. Version 1 (read by the terminal client only)
 * held a SQLite image instead; `openBackup` hands its payload back undecoded.
 *
 * Owns: the byte layout, the recovery key's text form and the payload encoding. Knows
 * nothing of files or of any store backend.
 */
import { asAeadKey, fromHex, toHex, utf8Decode, utf8Encode, zeroize } from '@parley/crypto';
import type { CryptoProvider } from '@parley/crypto';
import { ClientError } from './errors.js';
import { upgradeOutboxWrites } from './outbox-records.js';
import { SALT_BYTES, checkKdfParams, deriveStoreKey, newKdfParams } from './passphrase.js';
import type { KdfParams } from './passphrase.js';
import type { StoreWrite } from './store/types.js';

const MAGIC = utf8Encode('PARLEYBK');
/** The version `sealBackup` writes. */
export const BACKUP_FORMAT_VERSION = 2;
/** Version 1 held a SQLite image (the terminal client still restores it). */
export const BACKUP_FORMAT_SQLITE_IMAGE = 1;
const SECRET_PASSPHRASE = 1;
const SECRET_RECOVERY_KEY = 2;
const NONCE_BYTES = 24;
const TAG_BYTES = 16;
/** Bytes before the ciphertext. */
export const BACKUP_HEADER_BYTES = MAGIC.length + 1 + 1 + 4 + 4 + 1 + SALT_BYTES + NONCE_BYTES;
/** Recovery key: 160 random bits, shown as 32 base32 characters in groups of four. */
export const RECOVERY_KEY_BYTES = 20;
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export type BackupSecretKind = 'passphrase' | 'recovery-key';

/** What the header of a backup says, read before any key is derived. */
export interface BackupHeader {
  readonly version: number;
  readonly secret: BackupSecretKind;
  readonly kdf: KdfParams;
  readonly nonce: Uint8Array;
}

/** A fresh recovery key in its text form (`ABCD-EFGH-...`). */
export function newRecoveryKey(crypto: CryptoProvider): string {
  const bytes = crypto.randomBytes(RECOVERY_KEY_BYTES);
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
  zeroize(bytes);
  return (out.match(/.{1,4}/g) ?? []).join('-');
}

/** How a typed recovery key is read: case, spaces and dashes do not matter. */
function normaliseRecoveryKey(typed: string): string {
  return typed.toUpperCase().replace(/[\s-]/g, '');
}

function secretText(kind: BackupSecretKind, typed: string): string {
  return kind === 'recovery-key' ? normaliseRecoveryKey(typed) : typed;
}

function encodeHeader(version: number, kind: BackupSecretKind, kdf: KdfParams, nonce: Uint8Array) {
  const h = new Uint8Array(BACKUP_HEADER_BYTES);
  const v = new DataView(h.buffer);
  h.set(MAGIC, 0);
  let at = MAGIC.length;
  h[at++] = version;
  h[at++] = kind === 'recovery-key' ? SECRET_RECOVERY_KEY : SECRET_PASSPHRASE;
  v.setUint32(at, kdf.memoryKiB);
  v.setUint32(at + 4, kdf.iterations);
  h[at + 8] = kdf.parallelism;
  at += 9;
  h.set(fromHex(kdf.salt), at);
  h.set(nonce, at + SALT_BYTES);
  return h;
}

/** Reads a backup's header; `INVALID_ARGUMENT` for a file that is not one we can open. */
export function readBackupHeader(file: Uint8Array): BackupHeader {
  const bad = (why: string): never => {
    throw new ClientError('INVALID_ARGUMENT', `backup: ${why}`);
  };
  if (file.length < BACKUP_HEADER_BYTES + TAG_BYTES || MAGIC.some((b, i) => file[i] !== b)) {
    bad('not a Parley backup');
  }
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  let at = MAGIC.length;
  const version = file[at] as number;
  if (version !== BACKUP_FORMAT_VERSION && version !== BACKUP_FORMAT_SQLITE_IMAGE)
    bad(`backup format ${version} is not supported`);
  const secret = file[at + 1];
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
      salt: toHex(file.subarray(at + 9, at + 9 + SALT_BYTES)),
    });
  } catch {
    return bad('key derivation parameters out of range');
  }
  at += 9 + SALT_BYTES;
  return {
    version,
    secret: secret === SECRET_RECOVERY_KEY ? 'recovery-key' : 'passphrase',
    kdf,
    nonce: file.slice(at, at + NONCE_BYTES),
  };
}

// Byte strings travel through JSON as {"$b": hex}; no record field is named "$b".
function bytesReplacer(_k: string, v: unknown): unknown {
  return v instanceof Uint8Array ? { $b: toHex(v) } : v;
}

function bytesReviver(_k: string, v: unknown): unknown {
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    const b = o['$b'];
    if (typeof b === 'string' && Object.keys(o).length === 1) return fromHex(b);
  }
  return v;
}

export interface SealBackupOptions {
  readonly crypto: CryptoProvider;
  /** The profile as store writes (messages in conversation order). */
  readonly records: readonly StoreWrite[];
  readonly secret: { readonly kind: BackupSecretKind; readonly value: string };
  /** Argon2id cost overrides (tests). */
  readonly kdf?: Partial<Pick<KdfParams, 'memoryKiB' | 'iterations' | 'parallelism'>>;
}

/** The bytes of a backup file (format version 2). */
export async function sealBackup(o: SealBackupOptions): Promise<Uint8Array> {
  if (o.secret.value.length === 0)
    throw new ClientError('INVALID_ARGUMENT', 'backup passphrase: must not be empty');
  const kdf = newKdfParams(o.crypto, o.kdf);
  const header = encodeHeader(
    BACKUP_FORMAT_VERSION,
    o.secret.kind,
    kdf,
    o.crypto.randomBytes(NONCE_BYTES),
  );
  const payload = utf8Encode(JSON.stringify({ records: o.records }, bytesReplacer));
  const key = await deriveStoreKey(secretText(o.secret.kind, o.secret.value), kdf);
  try {
    const sealed = o.crypto.xchacha20poly1305.encrypt(
      asAeadKey(key),
      header.subarray(BACKUP_HEADER_BYTES - NONCE_BYTES),
      payload,
      header,
    );
    const file = new Uint8Array(header.length + sealed.length);
    file.set(header, 0);
    file.set(sealed, header.length);
    return file;
  } finally {
    zeroize(key, payload);
  }
}

/** An opened backup: store writes (version 2) or, from version 1, the SQLite image. */
export type OpenedBackup =
  | { readonly version: typeof BACKUP_FORMAT_VERSION; readonly records: StoreWrite[] }
  | { readonly version: typeof BACKUP_FORMAT_SQLITE_IMAGE; readonly image: Uint8Array };

const WRITE_OPS: ReadonlySet<string> = new Set<StoreWrite['op']>([
  'meta.put',
  'session.put',
  'secret.put',
  'contact.put',
  'message.put',
  'seen.add',
  'outbox.put',
]);

/**
 * Opens a backup with its passphrase or recovery key. Errors, before anything is
 * written anywhere: `INVALID_ARGUMENT` (not a backup, unknown version),
 * `WRONG_PASSPHRASE` (the secret does not open it, or it was altered),
 * `PROFILE_CORRUPT` (it opens but holds no profile).
 */
export async function openBackup(
  crypto: CryptoProvider,
  file: Uint8Array,
  typedSecret: string,
): Promise<OpenedBackup> {
  const header = readBackupHeader(file);
  const key = await deriveStoreKey(secretText(header.secret, typedSecret), header.kdf);
  let payload: Uint8Array;
  try {
    payload = crypto.xchacha20poly1305.decrypt(
      asAeadKey(key),
      header.nonce,
      file.subarray(BACKUP_HEADER_BYTES),
      file.subarray(0, BACKUP_HEADER_BYTES),
    );
  } catch {
    throw new ClientError(
      'WRONG_PASSPHRASE',
      'wrong backup passphrase or recovery key (or the file was altered); nothing was written',
    );
  } finally {
    zeroize(key);
  }
  if (header.version === BACKUP_FORMAT_SQLITE_IMAGE)
    return { version: BACKUP_FORMAT_SQLITE_IMAGE, image: payload };
  try {
    const parsed = JSON.parse(utf8Decode(payload), bytesReviver) as unknown;
    const records = (parsed as { records?: unknown }).records;
    if (
      !Array.isArray(records) ||
      !records.every(
        (w) =>
          typeof w === 'object' &&
          w !== null &&
          WRITE_OPS.has((w as { op?: unknown }).op as string),
      )
    ) {
      throw new Error('no records');
    }
    // A backup made before typed outbox records restores with them.
    return {
      version: BACKUP_FORMAT_VERSION,
      records: upgradeOutboxWrites(records as StoreWrite[]),
    };
  } catch (err) {
    throw new ClientError('PROFILE_CORRUPT', 'backup: it does not hold a profile', { cause: err });
  } finally {
    zeroize(payload);
  }
}

/** Counts of what a set of backup records holds (for the messages a UI shows). */
export function backupCounts(records: readonly StoreWrite[]): {
  messages: number;
  contacts: number;
  sessions: number;
} {
  const count = (op: StoreWrite['op']): number => records.filter((w) => w.op === op).length;
  return {
    messages: count('message.put'),
    contacts: count('contact.put'),
    sessions: count('session.put'),
  };
}
