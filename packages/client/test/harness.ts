/**
 * Shared set-up for client-core tests against the in-process relay (fake-relay.ts): real
 * protocol package, real stores, portable crypto.
 */
import { createPortableCrypto } from '@parley/crypto';
import { Account, MIN_KDF_MEMORY_KIB, ParleyClient, createProtocolE2ee } from '@parley/client';
import type { ClientEvent, ClientOptions, ClientStore } from '@parley/client';
import type { FakeRelay } from './fake-relay.js';

export const crypto = createPortableCrypto();
export const e2ee = createProtocolE2ee(crypto);
/** Cheapest Argon2id the profile accepts: tests exercise the store, not the KDF cost. */
export const cheap = { crypto, kdf: { memoryKiB: MIN_KDF_MEMORY_KIB, iterations: 1 } };

/** Polls `cond` (bounded: about 10 s) while the in-process relay and clients run. */
export async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export interface Device {
  name: string;
  store: ClientStore;
  client: ParleyClient;
  events: ClientEvent[];
}

/** Writes a registered open-mode account for `name` into `store`. */
export async function makeAccount(
  store: ClientStore,
  name: string,
  seed = crypto.randomBytes(32),
): Promise<void> {
  await store.commit(
    Account.creationWrites(
      {
        name,
        deviceId: 1,
        server: 'wss://relay.test/ws',
        mode: 'open',
        registered: true,
        createdAt: 1,
      },
      seed,
    ),
  );
}

/** A client over `store`, provisioned at the relay (or its key updated there: key change). */
export async function device(
  relay: FakeRelay,
  name: string,
  store: ClientStore,
  clock?: () => number,
  options?: Pick<ClientOptions, 'repairPolicy' | 'timers'>,
): Promise<Device> {
  const account = await Account.load(store, crypto);
  if (!relay.users.has(name)) relay.provision(name, account.keyPair.publicKey);
  else relay.users.get(name)!.identityKey = account.keyPair.publicKey;
  const client = new ParleyClient({
    store,
    crypto,
    e2ee,
    account,
    ...(clock ? { clock } : {}),
    ...options,
  });
  const events: ClientEvent[] = [];
  client.on((e) => events.push(e));
  return { name, store, client, events };
}

export async function online(relay: FakeRelay, d: Device): Promise<void> {
  relay.connect(d.name, d.client);
  await until(() => d.client.isReady && d.client.mailboxDrained, `${d.name} ready and drained`);
}

export const texts = async (d: Device, peer: string): Promise<string[]> =>
  (await d.client.messages(peer)).map((m) => `${m.direction}:${m.text}`);
