/**
 * The Node client as the CLI and tests use it: a profile (encrypted store), an account,
 * the core and its TLS transport, assembled from a profile directory and a passphrase.
 *
 * In mtls mode the device's credentials from `parley pki issue` are imported into the
 * encrypted store at `init` (the private key is the device's E2EE identity secret), and
 * peers' keys are accepted only with a certificate that verifies against the CA.
 */
import { readFileSync } from 'node:fs';
import {
  asEd25519SecretKey,
  constantTimeEqual,
  createPortableCrypto,
  utf8Decode,
  utf8Encode,
  zeroize,
} from '@parley/crypto';
import type { CryptoProvider } from '@parley/crypto';
import { ed25519SeedFromPkcs8Pem, verifyClientCertificate } from '@parley/pki';
import {
  Account,
  ClientError,
  DEFAULT_DEVICE_ID,
  META_TLS_CA,
  META_TLS_CERT,
  ParleyClient,
  checkUserName,
  createProtocolE2ee,
  normaliseRelayUrl,
} from '@parley/client';
import type { AuthMode, ClientOptions, ClientStore, KdfParams } from '@parley/client';
import { createProfile, openProfile } from './profile.js';
import { RevocationWatch } from './revocation.js';
import { NodeTransport } from './transport.js';

/** Meta keys for transport credentials, kept inside the encrypted store (CA and certificate: the core's). */
export { META_TLS_CA, META_TLS_CERT };
export const META_TLS_KEY = 'tls.key';

export type InitOptions = {
  readonly profile: string;
  readonly passphrase: string;
  readonly server: string;
  readonly crypto?: CryptoProvider;
  readonly kdf?: Partial<Pick<KdfParams, 'memoryKiB' | 'iterations' | 'parallelism'>>;
  readonly now?: () => number;
} & (
  | {
      readonly mode: 'mtls';
      readonly certPem: string;
      readonly keyPem: string;
      readonly caPem: string;
    }
  | { readonly mode: 'open'; readonly name: string; readonly caPem?: string }
);

/** Reads a PEM file for `init`, naming the option on failure. */
export function readPemFile(path: string, option: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ClientError('INVALID_ARGUMENT', `${option}: cannot read ${path}`, { cause: err });
  }
}

/**
 * Creates a profile. mtls: the certificate must verify against the CA and match the
 * key; the name is the certificate's CN. open: a fresh identity key, registered with
 * the relay on first connection.
 */
export async function initProfile(
  o: InitOptions,
): Promise<{ name: string; mode: AuthMode; identityKey: Uint8Array }> {
  const crypto = o.crypto ?? createPortableCrypto();
  const now = o.now ?? (() => Date.now());
  const server = normaliseRelayUrl(o.server);
  let name: string;
  let seed: Uint8Array;
  const meta: { key: string; value: Uint8Array }[] = [];
  if (o.mode === 'mtls') {
    let verified;
    try {
      verified = await verifyClientCertificate({
        certPem: o.certPem,
        caPem: o.caPem,
        now: new Date(now()),
      });
    } catch (err) {
      throw new ClientError(
        'INVALID_ARGUMENT',
        `--cert: does not verify against --ca (${(err as Error).message})`,
        {
          cause: err,
        },
      );
    }
    try {
      seed = ed25519SeedFromPkcs8Pem(o.keyPem);
    } catch (err) {
      throw new ClientError('INVALID_ARGUMENT', '--key: not an Ed25519 PKCS#8 key', { cause: err });
    }
    const derived = crypto.ed25519.keyPairFromSecret(asEd25519SecretKey(seed)).publicKey;
    if (!constantTimeEqual(derived, verified.identityKey)) {
      zeroize(seed);
      throw new ClientError('INVALID_ARGUMENT', '--key: does not belong to --cert');
    }
    name = verified.name;
    meta.push(
      { key: META_TLS_CA, value: utf8Encode(o.caPem) },
      { key: META_TLS_CERT, value: utf8Encode(o.certPem) },
      { key: META_TLS_KEY, value: utf8Encode(o.keyPem) },
    );
  } else {
    name = checkUserName(o.name, '--name');
    seed = crypto.randomBytes(32);
    if (o.caPem !== undefined) meta.push({ key: META_TLS_CA, value: utf8Encode(o.caPem) });
  }
  const store = await createProfile(o.profile, o.passphrase, {
    crypto,
    ...(o.kdf ? { kdf: o.kdf } : {}),
  });
  try {
    const writes = Account.creationWrites(
      {
        name,
        deviceId: DEFAULT_DEVICE_ID,
        server,
        mode: o.mode,
        registered: false,
        createdAt: now(),
      },
      seed,
    );
    await store.commit([...writes, ...meta.map((m) => ({ op: 'meta.put' as const, ...m }))]);
    const identityKey = crypto.ed25519.keyPairFromSecret(asEd25519SecretKey(seed)).publicKey;
    return { name, mode: o.mode, identityKey };
  } finally {
    zeroize(seed);
    await store.close();
  }
}

export interface OpenClientOptions {
  readonly profile: string;
  readonly passphrase: string;
  readonly crypto?: CryptoProvider;
  readonly clock?: () => number;
  /** Keep reconnecting after a drop (chat, read --follow). Default true. */
  readonly reconnect?: boolean;
  /** Override the stored relay URL (tests that restart a relay on a new port). */
  readonly server?: string;
  /** Repair bounds; defaults are the named constants of the client core (repair.ts). */
  readonly repairPolicy?: ClientOptions['repairPolicy'];
}

/** A ready-to-connect Node client. `close` stops the transport and closes the store. */
export interface NodeClient {
  readonly client: ParleyClient;
  readonly store: ClientStore;
  readonly transport: NodeTransport;
  readonly account: Account;
  /** mtls: revocation of our own and our contacts' certificates, expiry warnings. */
  readonly revocation?: RevocationWatch;
  /** Starts connecting and waits until authenticated. */
  connect(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Default bound on connecting for one-shot commands. */
export const CONNECT_WAIT_MS = 20_000;

export async function openNodeClient(o: OpenClientOptions): Promise<NodeClient> {
  const crypto = o.crypto ?? createPortableCrypto();
  const clock = o.clock ?? (() => Date.now());
  const store = await openProfile(o.profile, o.passphrase, { crypto });
  try {
    const account = await Account.load(store, crypto);
    const text = async (key: string): Promise<string | undefined> => {
      const v = await store.getMeta(key);
      return v && utf8Decode(v);
    };
    const caPem = await text(META_TLS_CA);
    const certPem = await text(META_TLS_CERT);
    const keyPem = await text(META_TLS_KEY);
    if (account.info.mode === 'mtls' && certPem === undefined) {
      throw new ClientError(
        'INVALID_ARGUMENT',
        'this profile has no certificate yet: finish it with parley init --profile DIR --cert F --ca F',
      );
    }
    const revocation =
      account.info.mode === 'mtls' && caPem !== undefined && certPem !== undefined
        ? await RevocationWatch.load(store, caPem, certPem, clock)
        : undefined;
    const verifyPeerCertificate =
      account.info.mode === 'mtls' && caPem !== undefined
        ? async (certificate: Uint8Array, name: string): Promise<Uint8Array> => {
            const v = await verifyClientCertificate({
              certDer: certificate,
              caPem,
              now: new Date(clock()),
            });
            if (v.name !== name)
              throw new ClientError('UNTRUSTED_KEY', `certificate is for ${v.name}, not ${name}`);
            if (revocation?.serialRevoked(v.serial)) {
              throw new ClientError('PEER_REVOKED', `${name}'s certificate was revoked`);
            }
            await revocation?.notePeerCertificate(name, certificate);
            return v.identityKey;
          }
        : undefined;
    const client = new ParleyClient({
      store,
      crypto,
      e2ee: createProtocolE2ee(crypto),
      account,
      clock,
      ...(verifyPeerCertificate ? { verifyPeerCertificate } : {}),
      ...(revocation ? { revocation } : {}),
      ...(o.repairPolicy ? { repairPolicy: o.repairPolicy } : {}),
    });
    const transport = new NodeTransport({
      url: o.server ?? account.info.server,
      client,
      reconnect: o.reconnect ?? true,
      ...(caPem !== undefined ? { caPem } : {}),
      ...(certPem !== undefined ? { certPem } : {}),
      ...(keyPem !== undefined ? { keyPem } : {}),
    });
    // Learning our own revocation ends the connection for good: every handshake would fail.
    revocation?.onOwnRevoked((err) => transport.halt(err));
    revocation?.setRefresher((peer) => client.fetchContact(peer));
    let started = false;
    return {
      client,
      store,
      transport,
      account,
      ...(revocation ? { revocation } : {}),
      async connect(timeoutMs = CONNECT_WAIT_MS) {
        const revoked = revocation?.ownRevocation;
        if (revoked) throw revoked;
        if (!started) transport.start();
        started = true;
        await transport.waitReady(timeoutMs);
      },
      async close() {
        await transport.stop();
        await client.close();
        await store.close();
        account.dispose();
      },
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}
