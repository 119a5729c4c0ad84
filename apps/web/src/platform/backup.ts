/**
 * Backup export and import in the browser, in the file format every Parley client
 * shares (the client core's backup-format.ts; `parley backup` / `parley restore` read
 * and write the same files). Export seals the unlocked store's records; import opens a
 * file, then creates a fresh IndexedDB profile holding them, or nothing at all.
 *
 * The restored ratchet states are as old as the backup: the first exchange with each
 * contact starts the end-to-end repair, as after a terminal restore.
 */
import { createPortableCrypto, utf8Decode, utf8Encode } from '@parley/crypto';
import type { CryptoProvider } from '@parley/crypto';
import {
  BACKUP_FORMAT_VERSION,
  ClientError,
  META_ACCOUNT,
  backupCounts,
  checkUserName,
  openBackup,
  sealBackup,
} from '@parley/client';
import type { AccountInfo, KdfParams, StoreWrite } from '@parley/client';
import { createIdbProfile, deleteIdbProfile, listIdbProfiles } from './idb-store.js';
import type { IdbStore } from './idb-store.js';
import { tryLockProfile } from './lock.js';
import { relayUrlFor } from './socket.js';

type KdfCost = Partial<Pick<KdfParams, 'memoryKiB' | 'iterations' | 'parallelism'>>;

/** The bytes of a backup of an open profile, under `passphrase`. */
export function exportWebBackup(
  store: IdbStore,
  passphrase: string,
  options: { crypto?: CryptoProvider; kdf?: KdfCost } = {},
): Promise<Uint8Array> {
  return sealBackup({
    crypto: options.crypto ?? createPortableCrypto(),
    records: store.exportRecords(),
    secret: { kind: 'passphrase', value: passphrase },
    ...(options.kdf ? { kdf: options.kdf } : {}),
  });
}

export interface ImportWebBackupOptions {
  readonly file: Uint8Array;
  /** The backup passphrase or recovery key. */
  readonly backupSecret: string;
  /** Passphrase of the profile made in this browser. */
  readonly passphrase: string;
  /** Relay the profile talks to from now on; default: the page's own. */
  readonly server?: string;
  readonly crypto?: CryptoProvider;
  readonly kdf?: KdfCost;
}

function accountOf(records: readonly StoreWrite[]): AccountInfo {
  const w = records.find((r) => r.op === 'meta.put' && r.key === META_ACCOUNT);
  if (w?.op !== 'meta.put') throw new ClientError('PROFILE_CORRUPT', 'backup: it holds no account');
  try {
    return JSON.parse(utf8Decode(w.value)) as AccountInfo;
  } catch (err) {
    throw new ClientError('PROFILE_CORRUPT', 'backup: its account is unreadable', { cause: err });
  }
}

/**
 * Makes a profile in this browser from a backup file. Errors, before anything is
 * written: `INVALID_ARGUMENT` (not a backup, an old format-1 file, a mtls profile),
 * `WRONG_PASSPHRASE`, `PROFILE_CORRUPT`, `PROFILE_EXISTS` (this browser has that
 * profile, or another tab is making it).
 */
export async function importWebBackup(
  o: ImportWebBackupOptions,
): Promise<{ profile: string; messages: number; contacts: number }> {
  const crypto = o.crypto ?? createPortableCrypto();
  if (o.passphrase.length === 0)
    throw new ClientError('INVALID_ARGUMENT', 'passphrase: must not be empty');
  const opened = await openBackup(crypto, o.file, o.backupSecret);
  if (opened.version !== BACKUP_FORMAT_VERSION) {
    throw new ClientError(
      'INVALID_ARGUMENT',
      'backup: an older terminal format; restore it with `parley restore` and make a new backup',
    );
  }
  const info = accountOf(opened.records);
  const profile = checkUserName(info.name, 'name');
  if (info.mode !== 'open') {
    throw new ClientError(
      'INVALID_ARGUMENT',
      'backup: this browser client signs in to open-mode relays only',
    );
  }
  if ((await listIdbProfiles()).includes(profile))
    throw new ClientError('PROFILE_EXISTS', `a profile named ${profile} already exists here`);
  const server = o.server ?? relayUrlFor(globalThis.location);
  // The page's relay, not the one the backup was made against (it may be a terminal URL).
  const records = opened.records.map((w): StoreWrite =>
    w.op === 'meta.put' && w.key === META_ACCOUNT
      ? { ...w, value: utf8Encode(JSON.stringify({ ...info, server })) }
      : w,
  );
  const lock = await tryLockProfile(profile);
  if (!lock) throw new ClientError('PROFILE_EXISTS', `profile ${profile} is open in another tab`);
  try {
    const store = await createIdbProfile(profile, o.passphrase, {
      crypto,
      ...(o.kdf ? { kdf: o.kdf } : {}),
    });
    try {
      await store.commit(records);
    } catch (err) {
      await store.close();
      // Nothing half-made stays behind: the profile goes with the batch that failed.
      await deleteIdbProfile(profile);
      throw err;
    }
    await store.close();
  } finally {
    lock.release();
  }
  const counts = backupCounts(records);
  return { profile, messages: counts.messages, contacts: counts.contacts };
}
