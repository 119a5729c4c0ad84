/**
 * A profile directory: the plaintext header (`profile.json`: format, Argon2id
 * parameters and salt, key-check value) next to the encrypted database (`store.db`).
 *
 * Opening checks the passphrase against the header before the database is touched, so
 * a wrong passphrase reads one small file and writes nothing; a header that does not
 * parse, or a database that does not decrypt under the right key, is `PROFILE_CORRUPT`
 * and is left exactly as found (no repair, no rewrite), so nothing is lost.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { zeroize } from '@parley/crypto';
import type { CryptoProvider } from '@parley/crypto';
import {
  ClientError,
  checkKdfParams,
  deriveStoreKey,
  keyCheckValue,
  keyMatchesCheck,
  newKdfParams,
} from '@parley/client';
import type { KdfParams } from '@parley/client';
import { openSqliteStore } from './sqlite-store.js';
import type { SqliteStore } from './sqlite-store.js';

export const PROFILE_HEADER_FILE = 'profile.json';
export const PROFILE_DB_FILE = 'store.db';
const PROFILE_FORMAT = 'parley-profile';
const PROFILE_VERSION = 1;
/** A header is a few hundred bytes; refusing big files keeps a hostile one from costing memory. */
const MAX_HEADER_BYTES = 16 * 1024;

interface ProfileHeader {
  readonly format: typeof PROFILE_FORMAT;
  readonly version: number;
  readonly kdf: KdfParams;
  readonly keyCheck: string;
}

export interface ProfileOptions {
  readonly crypto: CryptoProvider;
  /** Argon2id cost overrides (tests use the minimum to stay fast). */
  readonly kdf?: Partial<Pick<KdfParams, 'memoryKiB' | 'iterations' | 'parallelism'>>;
}

/** True if `dir` holds a profile header. */
export function profileExists(dir: string): boolean {
  return existsSync(join(dir, PROFILE_HEADER_FILE));
}

/** Creates a new profile; refuses (`PROFILE_EXISTS`) to overwrite one. */
export async function createProfile(
  dir: string,
  passphrase: string,
  options: ProfileOptions,
): Promise<SqliteStore> {
  if (profileExists(dir) || existsSync(join(dir, PROFILE_DB_FILE))) {
    throw new ClientError('PROFILE_EXISTS', `a profile already exists in ${dir}`);
  }
  if (passphrase.length === 0)
    throw new ClientError('INVALID_ARGUMENT', 'passphrase: must not be empty');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const kdf = newKdfParams(options.crypto, options.kdf);
  const key = await deriveStoreKey(passphrase, kdf);
  try {
    const store = openSqliteStore(join(dir, PROFILE_DB_FILE), key, { create: true });
    chmodSync(join(dir, PROFILE_DB_FILE), 0o600);
    const header: ProfileHeader = {
      format: PROFILE_FORMAT,
      version: PROFILE_VERSION,
      kdf,
      keyCheck: keyCheckValue(options.crypto, key),
    };
    // Header last and atomically: a crash before this leaves no half-made profile that
    // would look like a wrong passphrase.
    const tmp = join(dir, `${PROFILE_HEADER_FILE}.tmp`);
    writeFileSync(tmp, `${JSON.stringify(header, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, join(dir, PROFILE_HEADER_FILE));
    return store;
  } finally {
    zeroize(key);
  }
}

function readHeader(dir: string): ProfileHeader {
  const path = join(dir, PROFILE_HEADER_FILE);
  if (!existsSync(path))
    throw new ClientError('PROFILE_NOT_FOUND', `no profile in ${dir} (run parley init)`);
  let raw: string;
  try {
    const buf = readFileSync(path);
    if (buf.length > MAX_HEADER_BYTES) throw new Error('too large');
    raw = buf.toString('utf8');
  } catch (err) {
    throw new ClientError('PROFILE_CORRUPT', `profile header ${path} is unreadable`, {
      cause: err,
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new ClientError('PROFILE_CORRUPT', `profile header ${path} is not valid JSON`, {
      cause: err,
    });
  }
  const o = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<
    string,
    unknown
  >;
  if (o['format'] !== PROFILE_FORMAT || o['version'] !== PROFILE_VERSION) {
    throw new ClientError('PROFILE_CORRUPT', `profile header ${path}: unknown format or version`);
  }
  const keyCheck = o['keyCheck'];
  if (typeof keyCheck !== 'string' || !/^[0-9a-f]{64}$/.test(keyCheck)) {
    throw new ClientError('PROFILE_CORRUPT', `profile header ${path}: key check malformed`);
  }
  return {
    format: PROFILE_FORMAT,
    version: PROFILE_VERSION,
    kdf: checkKdfParams(o['kdf']),
    keyCheck,
  };
}

/**
 * Opens an existing profile. Errors: `PROFILE_NOT_FOUND`, `WRONG_PASSPHRASE` (nothing
 * touched), `PROFILE_CORRUPT` (nothing modified).
 */
export async function openProfile(
  dir: string,
  passphrase: string,
  options: Pick<ProfileOptions, 'crypto'>,
): Promise<SqliteStore> {
  const header = readHeader(dir);
  const dbPath = join(dir, PROFILE_DB_FILE);
  const key = await deriveStoreKey(passphrase, header.kdf);
  try {
    if (!keyMatchesCheck(options.crypto, key, header.keyCheck)) {
      throw new ClientError('WRONG_PASSPHRASE', 'wrong passphrase for this profile');
    }
    if (!existsSync(dbPath))
      throw new ClientError('PROFILE_CORRUPT', `profile database ${dbPath} is missing`);
    return openSqliteStore(dbPath, key, { create: false });
  } finally {
    zeroize(key);
  }
}
