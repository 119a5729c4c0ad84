/**
 * Changing how a saved profile reaches its relay (`parley profile set`): the relay URL
 * and the CA certificate that authenticates it. Everything else in the profile (keys,
 * sessions, history) is left as it is, and both changes land in one commit.
 *
 * In mtls mode the CA is also what the device's own certificate and every peer's
 * certificate are checked against, so a CA that does not certify this device is
 * refused rather than saved.
 */
import { createPortableCrypto, utf8Decode, utf8Encode } from '@parley/crypto';
import type { CryptoProvider } from '@parley/crypto';
import { verifyClientCertificate } from '@parley/pki';
import { Account, ClientError, normaliseRelayUrl } from '@parley/client';
import type { AuthMode, StoreWrite } from '@parley/client';
import { META_TLS_CA, META_TLS_CERT } from './app.js';
import { openProfile } from './profile.js';

export interface ProfileSettingsUpdate {
  readonly profile: string;
  readonly passphrase: string;
  /** New relay URL (normalised: a URL without a path means the relay's endpoint). */
  readonly server?: string;
  /** New CA certificate (PEM) of the relay (mtls: of the organisation). */
  readonly caPem?: string;
  readonly crypto?: CryptoProvider;
  readonly now?: () => number;
}

export interface ProfileSettings {
  readonly name: string;
  readonly mode: AuthMode;
  readonly server: string;
}

/** Applies the update and returns the settings now saved. Nothing given: nothing written. */
export async function updateProfileSettings(u: ProfileSettingsUpdate): Promise<ProfileSettings> {
  const crypto = u.crypto ?? createPortableCrypto();
  const now = u.now ?? (() => Date.now());
  const server = u.server !== undefined ? normaliseRelayUrl(u.server) : undefined;
  const store = await openProfile(u.profile, u.passphrase, { crypto });
  try {
    let account = await Account.load(store, crypto);
    try {
      const writes: StoreWrite[] = [];
      if (server !== undefined) {
        // The new Account shares the key pair; the `finally` below wipes it once.
        const next = account.withInfo({ server });
        account = next.account;
        writes.push(next.write);
      }
      if (u.caPem !== undefined) {
        if (account.info.mode === 'mtls') {
          const cert = await store.getMeta(META_TLS_CERT);
          if (cert === undefined)
            throw new ClientError('PROFILE_CORRUPT', 'profile has no device certificate');
          try {
            await verifyClientCertificate({
              certPem: utf8Decode(cert),
              caPem: u.caPem,
              now: new Date(now()),
            });
          } catch (err) {
            throw new ClientError(
              'INVALID_ARGUMENT',
              `--ca: this device's certificate does not verify against it (${(err as Error).message})`,
              { cause: err },
            );
          }
        }
        writes.push({ op: 'meta.put', key: META_TLS_CA, value: utf8Encode(u.caPem) });
      }
      if (writes.length > 0) await store.commit(writes);
      return { name: account.info.name, mode: account.info.mode, server: account.info.server };
    } finally {
      account.dispose();
    }
  } finally {
    await store.close();
  }
}
