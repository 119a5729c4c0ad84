/**
 * A profile directory: the plaintext header (`profile.json`: format, Argon2id
 * parameters and salt, key-check value) next to the encrypted database (`store.db`).
 *
 * Opening checks the passphrase against the header before the database is touched, so
 * a wrong passphrase reads one small file and writes nothing; a header that does not
 * parse, or a database that does not decrypt under the right key, is `PROFILE_CORRUPT`
 * and is left exactly as found (no repair, no rewrite), so nothing is lost.
 */
import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
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
import {
  checkDuressSlot,
  databaseFiles,
  decoyWrites,
  duressMatches,
  emptyDuressSlot,
  openDecoyTemplate,
  overwriteAndUnlink,
  spendOpenWork,
} from './duress.js';
import type { DuressSlot } from './duress.js';

export const PROFILE_HEADER_FILE = 'profile.json';
export const PROFILE_DB_FILE = 'store.db';
/** The header a passphrase change is moving to, until the database has been rekeyed. */
export const PROFILE_NEXT_HEADER_FILE = 'profile.json.next';
const PROFILE_FORMAT = 'parley-profile';
const PROFILE_VERSION = 1;
/** A header is a few hundred bytes; refusing big files keeps a hostile one from costing memory. */
const MAX_HEADER_BYTES = 16 * 1024;

export interface ProfileHeader {
  readonly format: typeof PROFILE_FORMAT;
  readonly version: number;
  readonly kdf: KdfParams;
  readonly keyCheck: string;
  /** Always present in headers written since M40 (random when unset; duress.ts). */
  readonly duress?: DuressSlot;
}

/** A header for `key` under `kdf`, with the given (or an empty) duress slot. */
export function profileHeader(
  crypto: CryptoProvider,
  kdf: KdfParams,
  key: Uint8Array,
  duress: DuressSlot = emptyDuressSlot(crypto),
): ProfileHeader {
  return {
    format: PROFILE_FORMAT,
    version: PROFILE_VERSION,
    kdf,
    keyCheck: keyCheckValue(crypto, key),
    duress,
  };
}

/**
 * Writes a header atomically and durably (temp file, fsync, rename). With `scrub`, the
 * old header's bytes are overwritten in place first, so its key check (which would let
 * a guesser test the old passphrase offline) does not linger in the old file's blocks.
 */
export function writeProfileHeader(
  dir: string,
  header: ProfileHeader,
  file = PROFILE_HEADER_FILE,
  scrub = false,
): void {
  const tmp = join(dir, `${file}.tmp`);
  writeFileSync(tmp, `${JSON.stringify(header, null, 2)}\n`, { mode: 0o600 });
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  const target = join(dir, file);
  if (scrub && existsSync(target)) {
    const size = readFileSync(target).length;
    const old = openSync(target, 'r+');
    try {
      writeFileSync(old, Buffer.alloc(size, 0x20));
      fsyncSync(old);
    } finally {
      closeSync(old);
    }
  }
  renameSync(tmp, target);
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
    // Header last and atomically: a crash before this leaves no half-made profile that
    // would look like a wrong passphrase.
    writeProfileHeader(dir, profileHeader(options.crypto, kdf, key));
    return store;
  } finally {
    zeroize(key);
  }
}

/** Reads and validates a profile header (`PROFILE_NOT_FOUND`, `PROFILE_CORRUPT`). */
export function readProfileHeader(dir: string, file = PROFILE_HEADER_FILE): ProfileHeader {
  const path = join(dir, file);
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
    ...(o['duress'] !== undefined ? { duress: checkDuressSlot(o['duress']) } : {}),
  };
}

/**
 * The duress path: the real database is overwritten and unlinked, an empty profile
 * keyed by the duress passphrase takes its place, and the header is rewritten so that
 * passphrase now opens it as an ordinary one. A crash part-way leaves the old header,
 * so the duress passphrase starts this again.
 */
async function replaceWithDecoy(
  dir: string,
  key: Uint8Array,
  header: ProfileHeader,
  crypto: CryptoProvider,
): Promise<SqliteStore> {
  const template = openDecoyTemplate(crypto, key, header.duress as DuressSlot);
  spendOpenWork(databaseFiles(dir, PROFILE_DB_FILE));
  for (const f of databaseFiles(dir, PROFILE_DB_FILE)) overwriteAndUnlink(f);
  overwriteAndUnlink(join(dir, PROFILE_NEXT_HEADER_FILE));
  const store = openSqliteStore(join(dir, PROFILE_DB_FILE), key, { create: true });
  chmodSync(join(dir, PROFILE_DB_FILE), 0o600);
  await store.commit(await decoyWrites(crypto, template));
  writeProfileHeader(dir, profileHeader(crypto, header.kdf, key), PROFILE_HEADER_FILE, true);
  return store;
}

const nextExists = (dir: string): boolean => existsSync(join(dir, PROFILE_NEXT_HEADER_FILE));

/** True if an interrupted passphrase change left a next header that `key` opens. */
function nextHeaderMatching(
  dir: string,
  header: ProfileHeader,
  key: Uint8Array,
  crypto: CryptoProvider,
): boolean {
  if (!nextExists(dir)) return false;
  try {
    const next = readProfileHeader(dir, PROFILE_NEXT_HEADER_FILE);
    // A change keeps the KDF parameters, so the key just derived is the one to test.
    return next.kdf.salt === header.kdf.salt && keyMatchesCheck(crypto, key, next.keyCheck);
  } catch {
    return false;
  }
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
  const header = readProfileHeader(dir);
  const dbPath = join(dir, PROFILE_DB_FILE);
  const key = await deriveStoreKey(passphrase, header.kdf);
  try {
    // One Argon2id, then every check value compared, whichever passphrase this is.
    const real = keyMatchesCheck(options.crypto, key, header.keyCheck);
    const duress = duressMatches(options.crypto, key, header.duress);
    const next = nextHeaderMatching(dir, header, key, options.crypto);
    if (!real && duress) return await replaceWithDecoy(dir, key, header, options.crypto);
    if (!real && next) {
      // A passphrase change was interrupted. Only if it got as far as rekeying the
      // database does the new header become the header; otherwise the old one stands.
      let store: SqliteStore;
      try {
        store = openSqliteStore(dbPath, key, { create: false });
      } catch {
        throw new ClientError('WRONG_PASSPHRASE', 'wrong passphrase for this profile');
      }
      renameSync(join(dir, PROFILE_NEXT_HEADER_FILE), join(dir, PROFILE_HEADER_FILE));
      return store;
    }
    if (!real) throw new ClientError('WRONG_PASSPHRASE', 'wrong passphrase for this profile');
    if (!existsSync(dbPath))
      throw new ClientError('PROFILE_CORRUPT', `profile database ${dbPath} is missing`);
    try {
      return openSqliteStore(dbPath, key, { create: false });
    } catch (err) {
      if (err instanceof ClientError && err.code === 'PROFILE_CORRUPT' && nextExists(dir)) {
        throw new ClientError(
          'WRONG_PASSPHRASE',
          'a passphrase change was interrupted after the store was re-encrypted: use the new passphrase',
        );
      }
      throw err;
    }
  } finally {
    zeroize(key);
  }
}
