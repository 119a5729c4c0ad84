/**
 * Changing a profile's passphrase and setting its duress passphrase (M40), the two
 * operations behind `parley passphrase`. Both first unlock the profile with the current
 * passphrase, exactly as any command does (so the duress passphrase typed here has its
 * usual effect), and keep the header's Argon2id parameters and salt: the real and the
 * duress passphrase must derive under the same salt for one Argon2id run to test both.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { createPortableCrypto, utf8Decode, zeroize } from '@parley/crypto';
import type { CryptoProvider } from '@parley/crypto';
import { Account, ClientError, deriveStoreKey, keyMatchesCheck } from '@parley/client';
import { META_TLS_CA, META_TLS_KEY } from './app.js';
import { duressMatches, emptyDuressSlot, makeDuressSlot } from './duress.js';
import type { DecoyTemplate } from './duress.js';
import {
  PROFILE_HEADER_FILE,
  PROFILE_NEXT_HEADER_FILE,
  openProfile,
  profileHeader,
  readProfileHeader,
  writeProfileHeader,
} from './profile.js';

export interface PassphraseChangeOptions {
  readonly profile: string;
  /** The passphrase that opens the profile now. */
  readonly passphrase: string;
  /** The new passphrase (change) or the duress passphrase (set). */
  readonly newPassphrase: string;
  readonly crypto?: CryptoProvider;
}

function checkNew(p: string): void {
  if (p.length === 0)
    throw new ClientError('INVALID_ARGUMENT', 'new passphrase: must not be empty');
}

/**
 * Re-encrypts the store under a new passphrase. Crash-safe: the new header is written
 * beside the old one before the rekey, so whichever passphrase the database answers to
 * after a crash opens it (profile.ts finishes the change).
 */
export async function changePassphrase(o: PassphraseChangeOptions): Promise<void> {
  const crypto = o.crypto ?? createPortableCrypto();
  checkNew(o.newPassphrase);
  const store = await openProfile(o.profile, o.passphrase, { crypto });
  try {
    const header = readProfileHeader(o.profile);
    const key = await deriveStoreKey(o.newPassphrase, header.kdf);
    try {
      if (keyMatchesCheck(crypto, key, header.keyCheck))
        throw new ClientError('INVALID_ARGUMENT', 'the new passphrase is the current one');
      if (duressMatches(crypto, key, header.duress))
        throw new ClientError('INVALID_ARGUMENT', 'the new passphrase is the duress passphrase');
      const next = profileHeader(crypto, header.kdf, key, header.duress ?? emptyDuressSlot(crypto));
      writeProfileHeader(o.profile, next, PROFILE_NEXT_HEADER_FILE);
      store.rekeyAndClose(key);
      writeProfileHeader(o.profile, next, PROFILE_HEADER_FILE, true);
      rmSync(join(o.profile, PROFILE_NEXT_HEADER_FILE), { force: true });
    } finally {
      zeroize(key);
    }
  } finally {
    await store.close();
  }
}

/**
 * Sets (or replaces) the duress passphrase: seals the decoy template (account name,
 * relay, mode, CA; nothing secret) under it and writes it into the header's slot.
 */
export async function setDuressPassphrase(o: PassphraseChangeOptions): Promise<void> {
  const crypto = o.crypto ?? createPortableCrypto();
  checkNew(o.newPassphrase);
  const store = await openProfile(o.profile, o.passphrase, { crypto });
  try {
    const header = readProfileHeader(o.profile);
    const account = await Account.load(store, crypto);
    const { name, deviceId, server, mode, createdAt } = account.info;
    account.dispose();
    const ca = await store.getMeta(META_TLS_CA);
    // The decoy is what `init` (open) or `keygen` (mtls) would make for this account.
    const template: DecoyTemplate = {
      account: { name, deviceId, server, mode, createdAt },
      meta: ca && mode === 'open' ? { [META_TLS_CA]: utf8Decode(ca) } : {},
      ...(mode === 'mtls' ? { deviceKeyMeta: META_TLS_KEY } : {}),
    };
    const key = await deriveStoreKey(o.newPassphrase, header.kdf);
    try {
      if (keyMatchesCheck(crypto, key, header.keyCheck)) {
        throw new ClientError(
          'INVALID_ARGUMENT',
          'the duress passphrase must differ from the profile passphrase',
        );
      }
      const duress = makeDuressSlot(crypto, key, template);
      writeProfileHeader(o.profile, { ...header, duress }, PROFILE_HEADER_FILE, true);
    } finally {
      zeroize(key);
    }
  } finally {
    await store.close();
  }
}
