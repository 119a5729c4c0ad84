/**
 * Browser profiles: create one (a fresh device key; an open-mode relay registers it on
 * the first connection, an mtls one needs it certified first: enrolment.ts), and unlock
 * one into a running client. The client core does the
 * protocol; this file assembles it from the IndexedDB store, the profile lock and the
 * browser connection, the way the Node adapter does from SQLite and TLS.
 */
import { createPortableCrypto, zeroize } from '@parley/crypto';
import type { CryptoProvider } from '@parley/crypto';
import {
  Account,
  ClientError,
  ConnectionDriver,
  DEFAULT_DEVICE_ID,
  META_TLS_CA,
  ParleyClient,
  checkUserName,
  createProtocolE2ee,
} from '@parley/client';
import type { AuthMode, ClientOptions, KdfParams } from '@parley/client';
import { utf8Encode } from '@parley/crypto';
import { checkImportedCertificate, mtlsClientOptions, profileCsr } from './enrolment.js';
import { createIdbProfile, openIdbProfile } from './idb-store.js';
import type { IdbStore } from './idb-store.js';
import { tryLockProfile, waitForProfileLock } from './lock.js';
import type { ProfileLock } from './lock.js';
import { browserSocketOpener, relayUrlFor } from './socket.js';

export {
  deleteIdbProfile as deleteWebProfile,
  listIdbProfiles as listWebProfiles,
} from './idb-store.js';

/** How long `connect` waits for the relay by default. */
export const WEB_CONNECT_WAIT_MS = 20_000;

export interface CreateWebProfileOptions {
  /** The user name to register; also the profile's name in this browser. */
  readonly name: string;
  readonly passphrase: string;
  /** Relay URL; default: `/ws` on the page's own origin. */
  readonly server?: string;
  readonly crypto?: CryptoProvider;
  readonly kdf?: Partial<Pick<KdfParams, 'memoryKiB' | 'iterations' | 'parallelism'>>;
  readonly now?: () => number;
  /** How the relay signs devices in (default open); mtls needs the organisation CA. */
  readonly mode?: AuthMode;
  readonly caPem?: string;
}

/** A profile open in this tab: the client, its store, its connection; `close` gives all back. */
export interface WebClient {
  readonly profile: string;
  readonly client: ParleyClient;
  readonly store: IdbStore;
  readonly connection: ConnectionDriver;
  readonly account: Account;
  /** Starts connecting (registering on first use) and waits until authenticated. */
  connect(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Another tab has this profile open: this one must not write to it. */
export interface InAnotherTab {
  readonly status: 'in-another-tab';
  readonly profile: string;
}

/** An mtls profile without its certificate yet: `csr` is for the administrator to sign. */
export interface NeedsCertificate {
  readonly status: 'needs-certificate';
  readonly profile: string;
  readonly csr: string;
}

export type OpenWebResult =
  { readonly status: 'open'; readonly web: WebClient } | InAnotherTab | NeedsCertificate;

function pageRelayUrl(): string {
  return relayUrlFor(globalThis.location);
}

/**
 * Creates a profile with a fresh identity key. `PROFILE_EXISTS` if this browser has one
 * of that name; `in-another-tab` if another tab is creating or using it.
 */
export async function createWebProfile(
  o: CreateWebProfileOptions,
): Promise<{ status: 'created' } | InAnotherTab> {
  const name = checkUserName(o.name, 'name');
  const mode = o.mode ?? 'open';
  if (mode === 'mtls' && o.caPem === undefined)
    throw new ClientError('INVALID_ARGUMENT', 'an mtls profile needs the organisation CA');
  const crypto = o.crypto ?? createPortableCrypto();
  const lock = await tryLockProfile(name);
  if (!lock) return { status: 'in-another-tab', profile: name };
  const seed = crypto.randomBytes(32);
  try {
    const store = await createIdbProfile(name, o.passphrase, {
      crypto,
      ...(o.kdf ? { kdf: o.kdf } : {}),
    });
    try {
      await store.commit(
        Account.creationWrites(
          {
            name,
            deviceId: DEFAULT_DEVICE_ID,
            server: o.server ?? pageRelayUrl(),
            mode,
            registered: false,
            createdAt: (o.now ?? (() => Date.now()))(),
          },
          seed,
        ).concat(
          mode === 'mtls' && o.caPem !== undefined
            ? [{ op: 'meta.put', key: META_TLS_CA, value: utf8Encode(o.caPem) }]
            : [],
        ),
      );
    } finally {
      await store.close();
    }
    return { status: 'created' };
  } finally {
    zeroize(seed);
    lock.release();
  }
}

export interface OpenWebClientOptions {
  readonly profile: string;
  readonly passphrase: string;
  /** Relay URL override; default: the one stored at creation. */
  readonly server?: string;
  readonly crypto?: CryptoProvider;
  readonly clock?: () => number;
  readonly repairPolicy?: ClientOptions['repairPolicy'];
  /**
   * If another tab has the profile: wait until it lets go (aborted by the signal)
   * instead of answering `in-another-tab` at once.
   */
  readonly waitForOtherTab?: AbortSignal | true;
}

/**
 * Unlocks a profile into a client (not yet connected). Errors: `PROFILE_NOT_FOUND`,
 * `WRONG_PASSPHRASE` (nothing touched), `PROFILE_CORRUPT`. Another tab holding the
 * profile is not an error but a state the UI shows.
 */
export async function openWebClient(o: OpenWebClientOptions): Promise<OpenWebResult> {
  const crypto = o.crypto ?? createPortableCrypto();
  const clock = o.clock ?? (() => Date.now());
  const wait = o.waitForOtherTab;
  const lock: ProfileLock | undefined =
    wait === undefined
      ? await tryLockProfile(o.profile)
      : await waitForProfileLock(o.profile, wait === true ? undefined : wait);
  if (!lock) return { status: 'in-another-tab', profile: o.profile };
  let store: IdbStore | undefined;
  try {
    store = await openIdbProfile(o.profile, o.passphrase, { crypto });
    const account = await Account.load(store, crypto);
    const mtls =
      account.info.mode === 'mtls' ? await mtlsClientOptions(store, account, clock) : undefined;
    if (account.info.mode === 'mtls' && mtls === undefined) {
      const csr = await profileCsr(account);
      account.dispose();
      await store.close();
      lock.release();
      return { status: 'needs-certificate', profile: o.profile, csr };
    }
    const client = new ParleyClient({
      ...mtls,
      store,
      crypto,
      e2ee: createProtocolE2ee(crypto),
      account,
      clock,
      ...(o.repairPolicy ? { repairPolicy: o.repairPolicy } : {}),
    });
    const connection = new ConnectionDriver({
      client,
      open: browserSocketOpener(o.server ?? account.info.server),
      // The page asks the person what to do; retrying refused credentials would not help.
      stopWhenRefused: true,
    });
    // The browser knows when the network is back; waiting out the backoff would only delay.
    const online = (): void => connection.retryNow();
    globalThis.addEventListener?.('online', online);
    const opened = store;
    let closed = false;
    const web: WebClient = {
      profile: o.profile,
      client,
      store: opened,
      connection,
      account,
      async connect(timeoutMs = WEB_CONNECT_WAIT_MS) {
        connection.start();
        await connection.waitReady(timeoutMs);
      },
      async close() {
        if (closed) return;
        closed = true;
        globalThis.removeEventListener?.('online', online);
        await connection.stop();
        await client.close();
        await opened.close();
        account.dispose();
        lock.release();
      },
    };
    return { status: 'open', web };
  } catch (err) {
    await store?.close();
    lock.release();
    throw err;
  }
}

export interface ImportWebCertificateOptions {
  readonly profile: string;
  readonly passphrase: string;
  /** The certificate `parley pki sign` wrote for this profile's CSR (PEM). */
  readonly certPem: string;
  readonly crypto?: CryptoProvider;
  readonly clock?: () => number;
}

/**
 * Imports the signed certificate of an mtls profile, after checking it is from the
 * profile's CA and certifies this profile's name and key. `INVALID_ARGUMENT` with the
 * reason otherwise, and nothing is stored.
 */
export async function importWebCertificate(
  o: ImportWebCertificateOptions,
): Promise<{ status: 'imported' } | InAnotherTab> {
  const crypto = o.crypto ?? createPortableCrypto();
  const lock = await tryLockProfile(o.profile);
  if (!lock) return { status: 'in-another-tab', profile: o.profile };
  try {
    const store = await openIdbProfile(o.profile, o.passphrase, { crypto });
    try {
      const account = await Account.load(store, crypto);
      try {
        const now = new Date((o.clock ?? (() => Date.now()))());
        const write = await checkImportedCertificate(store, account, o.certPem, now);
        await store.commit([{ op: 'meta.put', ...write }]);
      } finally {
        account.dispose();
      }
    } finally {
      await store.close();
    }
    return { status: 'imported' };
  } finally {
    lock.release();
  }
}
