/**
 * Browser sign-in on an mtls relay (docs/client.md, "Browser sign-in on mtls relays"):
 * the profile's own identity key is certified by the organisation CA through a CSR the
 * administrator signs offline (`parley pki sign`); the signed certificate is imported
 * here and then presented in `cert.login` on the relay's browser listener.
 *
 * Owns: what the page learns from the relay (`/relay.json`), the CSR of a profile, the
 * checks on an imported certificate, and the certificate options of the client core.
 * The X.509 code (`@parley/pki/portable`) is loaded only on this path, so an open-mode
 * page never downloads it.
 */
import { constantTimeEqual, utf8Decode, utf8Encode } from '@parley/crypto';
import { ClientError, META_TLS_CA, META_TLS_CERT } from '@parley/client';
import type { Account, AuthMode, ClientOptions, ClientStore } from '@parley/client';

/** What the relay serving the page says about itself (packages/server web.ts `RelayInfo`). */
export interface RelayInfo {
  readonly auth: AuthMode;
  /** mtls: the organisation CA certificate (PEM). */
  readonly caPem?: string;
}

/** Where the relay serves {@link RelayInfo}. */
export const RELAY_INFO_PATH = '/relay.json';

/** Reads the relay's sign-in mode; a relay that says nothing is an open-mode one. */
export async function fetchRelayInfo(): Promise<RelayInfo> {
  const res = await fetch(RELAY_INFO_PATH, { cache: 'no-store' });
  if (!res.ok) return { auth: 'open' };
  const v = (await res.json()) as { auth?: unknown; caPem?: unknown };
  if (v.auth === 'mtls' && typeof v.caPem === 'string') return { auth: 'mtls', caPem: v.caPem };
  return { auth: 'open' };
}

const pki = () => import('@parley/pki/portable');

async function metaText(store: ClientStore, key: string): Promise<string | undefined> {
  const v = await store.getMeta(key);
  return v && utf8Decode(v);
}

/** The PKCS#10 request (PEM) for this profile's identity key, CN = its name. */
export async function profileCsr(account: Account): Promise<string> {
  return (await pki()).createDeviceCsr(
    account.name,
    account.keyPair.secretKey,
    account.keyPair.publicKey,
  );
}

/**
 * Checks `certPem` for this profile: from the CA stored at creation, valid now, for
 * this profile's name and exactly its identity key. Returns the store write that keeps
 * it. `INVALID_ARGUMENT` with the reason otherwise; nothing is stored then.
 */
export async function checkImportedCertificate(
  store: ClientStore,
  account: Account,
  certPem: string,
  now: Date,
): Promise<{ key: string; value: Uint8Array }> {
  const caPem = await metaText(store, META_TLS_CA);
  if (caPem === undefined)
    throw new ClientError('PROFILE_CORRUPT', 'this profile has no organisation CA');
  const { checkDeviceCertificate } = await pki();
  let v;
  try {
    v = await checkDeviceCertificate({ cert: certPem, caPem, now });
  } catch (err) {
    throw new ClientError(
      'INVALID_ARGUMENT',
      `this certificate cannot be used: ${(err as Error).message}`,
      { cause: err },
    );
  }
  if (v.name !== account.name)
    throw new ClientError(
      'INVALID_ARGUMENT',
      `this certificate is for ${v.name}, not ${account.name}`,
    );
  if (!constantTimeEqual(v.identityKey, account.keyPair.publicKey))
    throw new ClientError('INVALID_ARGUMENT', "this certificate is for another device's key");
  return { key: META_TLS_CERT, value: utf8Encode(certPem) };
}

/**
 * The core options of an mtls profile: our certificate for `cert.login` and the check
 * of peers' certificates against our CA. `undefined` while no certificate is imported.
 */
export async function mtlsClientOptions(
  store: ClientStore,
  account: Account,
  clock: () => number,
): Promise<Pick<ClientOptions, 'loginCertificate' | 'verifyPeerCertificate'> | undefined> {
  const caPem = await metaText(store, META_TLS_CA);
  const certPem = await metaText(store, META_TLS_CERT);
  if (caPem === undefined || certPem === undefined) return undefined;
  const { checkDeviceCertificate } = await pki();
  let own;
  try {
    own = await checkDeviceCertificate({ cert: certPem, caPem, now: new Date(clock()) });
  } catch (err) {
    throw new ClientError(
      'INVALID_ARGUMENT',
      `this device certificate cannot be used any more: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return {
    loginCertificate: own.der,
    verifyPeerCertificate: async (certificate, name) => {
      const v = await checkDeviceCertificate({ cert: certificate, caPem, now: new Date(clock()) });
      if (v.name !== name)
        throw new ClientError('UNTRUSTED_KEY', `certificate is for ${v.name}, not ${name}`);
      return v.identityKey;
    },
  };
}
