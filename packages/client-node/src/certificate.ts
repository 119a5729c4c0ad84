/**
 * A device's certificate over its life, on the device: a key made inside the profile
 * with a CSR for the CA (the private key never leaves the encrypted profile), the
 * signed certificate put in afterwards, and renewed certificates for the same key
 * installed without touching identity, history or contacts.
 */
import {
  asEd25519SecretKey,
  constantTimeEqual,
  createPortableCrypto,
  utf8Decode,
  utf8Encode,
  zeroize,
} from '@parley/crypto';
import type { CryptoProvider } from '@parley/crypto';
import {
  createCsr,
  ed25519SeedFromPkcs8Pem,
  generateDeviceKeyPem,
  verifyClientCertificate,
} from '@parley/pki';
import { Account, ClientError, DEFAULT_DEVICE_ID, checkUserName } from '@parley/client';
import type { KdfParams } from '@parley/client';
import { META_TLS_CA, META_TLS_CERT, META_TLS_KEY } from './app.js';
import { createProfile, openProfile } from './profile.js';

export interface KeygenOptions {
  readonly profile: string;
  readonly passphrase: string;
  readonly name: string;
  readonly server: string;
  readonly crypto?: CryptoProvider;
  readonly kdf?: Partial<Pick<KdfParams, 'memoryKiB' | 'iterations' | 'parallelism'>>;
  readonly now?: () => number;
}

/**
 * Creates an mtls profile whose device key is generated inside it, and returns a CSR
 * (PEM, CN = name) for `parley pki sign`. The profile is usable once
 * {@link installCertificate} has put the signed certificate in.
 */
export async function createKeyProfile(o: KeygenOptions): Promise<{ csrPem: string }> {
  const crypto = o.crypto ?? createPortableCrypto();
  const now = o.now ?? (() => Date.now());
  const name = checkUserName(o.name, '--name');
  if (!/^wss:\/\//.test(o.server)) {
    throw new ClientError('INVALID_ARGUMENT', '--server: expected wss://HOST:PORT');
  }
  const keyPem = await generateDeviceKeyPem();
  const csrPem = await createCsr(name, keyPem);
  const seed = ed25519SeedFromPkcs8Pem(keyPem);
  const store = await createProfile(o.profile, o.passphrase, {
    crypto,
    ...(o.kdf ? { kdf: o.kdf } : {}),
  });
  try {
    const writes = Account.creationWrites(
      {
        name,
        deviceId: DEFAULT_DEVICE_ID,
        server: o.server,
        mode: 'mtls',
        registered: false,
        createdAt: now(),
      },
      seed,
    );
    await store.commit([
      ...writes,
      { op: 'meta.put', key: META_TLS_KEY, value: utf8Encode(keyPem) },
    ]);
    return { csrPem };
  } finally {
    zeroize(seed);
    await store.close();
  }
}

export interface InstallCertificateOptions {
  readonly profile: string;
  readonly passphrase: string;
  readonly certPem: string;
  /** The organisation CA; required when the profile has none yet (after keygen). */
  readonly caPem?: string;
  readonly crypto?: CryptoProvider;
  readonly now?: () => number;
}

/**
 * Puts a certificate for this device's own key into an mtls profile: the first one
 * after `createKeyProfile`, or a renewal (`parley pki renew`). It must verify against
 * the profile's CA (an already stored CA is never replaced), name this account and
 * certify exactly this device's identity key, so identity, sessions, history and
 * safety numbers are unchanged.
 */
export async function installCertificate(
  o: InstallCertificateOptions,
): Promise<{ name: string; serial: string; notAfter: Date }> {
  const crypto = o.crypto ?? createPortableCrypto();
  const now = o.now ?? (() => Date.now());
  const store = await openProfile(o.profile, o.passphrase, { crypto });
  try {
    const account = await Account.load(store, crypto);
    try {
      if (account.info.mode !== 'mtls') {
        throw new ClientError('INVALID_ARGUMENT', 'this profile is an open-mode profile');
      }
      const storedCa = await store.getMeta(META_TLS_CA);
      const caPem = storedCa ? utf8Decode(storedCa) : o.caPem;
      if (caPem === undefined) {
        throw new ClientError('INVALID_ARGUMENT', '--ca: the profile has no CA yet; give it');
      }
      if (storedCa && o.caPem !== undefined && o.caPem.trim() !== caPem.trim()) {
        throw new ClientError('INVALID_ARGUMENT', '--ca: differs from the CA this profile trusts');
      }
      let v;
      try {
        v = await verifyClientCertificate({ certPem: o.certPem, caPem, now: new Date(now()) });
      } catch (err) {
        throw new ClientError(
          'INVALID_ARGUMENT',
          `--cert: does not verify against the CA (${(err as Error).message})`,
          { cause: err },
        );
      }
      if (v.name !== account.name) {
        throw new ClientError('INVALID_ARGUMENT', `--cert: is for ${v.name}, not ${account.name}`);
      }
      const keyPem = await store.getMeta(META_TLS_KEY);
      const seed = keyPem ? ed25519SeedFromPkcs8Pem(utf8Decode(keyPem)) : undefined;
      const own = seed
        ? crypto.ed25519.keyPairFromSecret(asEd25519SecretKey(seed)).publicKey
        : account.keyPair.publicKey;
      if (seed) zeroize(seed);
      if (
        !constantTimeEqual(v.identityKey, account.keyPair.publicKey) ||
        !constantTimeEqual(own, v.identityKey)
      ) {
        throw new ClientError(
          'INVALID_ARGUMENT',
          "--cert: certifies another key, not this device's identity key (a new key needs a new profile)",
        );
      }
      await store.commit([
        { op: 'meta.put', key: META_TLS_CERT, value: utf8Encode(o.certPem) },
        ...(storedCa
          ? []
          : [{ op: 'meta.put' as const, key: META_TLS_CA, value: utf8Encode(caPem) }]),
      ]);
      return { name: v.name, serial: v.serial, notAfter: v.notAfter };
    } finally {
      account.dispose();
    }
  } finally {
    await store.close();
  }
}
