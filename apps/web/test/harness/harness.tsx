/** @jsxImportSource preact */
/**
 * Test harness for the UI alone: the real App and the real client core (protocol,
 * portable crypto, MemoryStore) in the page, with the client tests' in-process relay
 * and a second user "bob" the test drives through `window.harness`. The platform
 * (IndexedDB, socket, lock) is not involved: the browser end-to-end tests cover it
 * against a real relay.
 */
import { render } from 'preact';
import { createPortableCrypto } from '@parley/crypto';
import {
  Account,
  ClientError,
  MemoryStore,
  ParleyClient,
  createProtocolE2ee,
} from '@parley/client';
import type { ClientStore } from '@parley/client';
import { FakeRelay } from '../../../../packages/client/test/fake-relay.js';
import type { FakeConnection } from '../../../../packages/client/test/fake-relay.js';
import { App } from '../../src/ui/App.js';
import type { ChatSession, ProfileGate } from '../../src/ui/session.js';

const crypto = createPortableCrypto();
const e2ee = createProtocolE2ee(crypto);
const relay = new FakeRelay();
const tamperNext = new Set<string>();

async function account(store: ClientStore, name: string): Promise<Account> {
  await store.commit(
    Account.creationWrites(
      {
        name,
        deviceId: 1,
        server: 'wss://relay.test/ws',
        mode: 'open',
        registered: true,
        createdAt: Date.now(),
      },
      crypto.randomBytes(32),
    ),
  );
  return Account.load(store, crypto);
}

async function user(name: string, store: ClientStore = new MemoryStore()) {
  const existing = (await store.getMeta('account')) !== undefined;
  const acct = existing ? await Account.load(store, crypto) : await account(store, name);
  // A new identity replaces the relay's record (a reinstall); a reopened one keeps its mail.
  if (!existing || !relay.users.has(name)) {
    relay.users.delete(name);
    relay.provision(name, acct.keyPair.publicKey);
  }
  const client = new ParleyClient({ store, crypto, e2ee, account: acct });
  // A relay that flips a byte of the next message to this user, when asked.
  const handle = client.handleFrame.bind(client);
  client.handleFrame = (f) => {
    if (f.type === 'deliver' && tamperNext.delete(name)) {
      const p = f.payload.slice();
      p[p.length - 5] = (p[p.length - 5] as number) ^ 1;
      return handle({ ...f, payload: p });
    }
    return handle(f);
  };
  const conn = relay.connect(name, client);
  return { name, store, client, conn };
}

type User = Awaited<ReturnType<typeof user>>;
let alice: (User & { passphrase: string }) | undefined;
let aliceStore: ClientStore | undefined;
let bob: User = await user('bob');

function session(u: User): ChatSession {
  return {
    client: u.client,
    name: u.name,
    mode: 'open',
    close: async () => {
      u.conn.close();
      await u.client.close();
    },
  };
}

const gate: ProfileGate = {
  exists: () => Promise.resolve(aliceStore !== undefined),
  storedName: () => Promise.resolve(alice?.name),
  create: async ({ name, passphrase }) => {
    aliceStore = new MemoryStore();
    alice = { ...(await user(name, aliceStore)), passphrase };
    return session(alice);
  },
  unlock: async (passphrase) => {
    if (!alice || !aliceStore) throw new ClientError('PROFILE_NOT_FOUND', 'no profile');
    if (passphrase !== alice.passphrase)
      throw new ClientError('WRONG_PASSPHRASE', 'wrong passphrase');
    alice = { ...(await user(alice.name, aliceStore)), passphrase };
    return session(alice);
  },
};

let aliceDropped: FakeConnection | undefined;
const harness = {
  bobReady: () => bob.client.isReady,
  bobSend: async (text: string) => (await bob.client.send(alice?.name ?? 'alice', text)).id,
  bobTexts: async () =>
    (await bob.client.messages(alice?.name ?? 'alice'))
      .filter((m) => m.direction === 'in')
      .map((m) => m.text),
  /** The next message to Alice arrives with one byte changed (she cannot read it: repair). */
  tamperNextToAlice: () => {
    tamperNext.add(alice?.name ?? 'alice');
  },
  /** Another user who writes to Alice (a second conversation in her list). */
  carolSend: async (text: string) => {
    const carol = await user('carol');
    await carol.client.send(alice?.name ?? 'alice', text);
  },
  /** Bob reinstalls: a new identity key under the same name. */
  bobReinstall: async () => {
    bob.conn.close();
    await bob.client.close();
    bob = await user('bob');
  },
  /** The relay connection drops (the relay goes away); `reconnectAlice` brings it back. */
  dropAlice: () => {
    if (!alice) return;
    aliceDropped = alice.conn;
    alice.conn.close();
  },
  reconnectAlice: () => {
    if (!alice || !aliceDropped) return;
    alice.conn = relay.connect(alice.name, alice.client);
  },
};
(window as unknown as { harness: typeof harness }).harness = harness;

const root = document.getElementById('app');
if (root) render(<App gate={gate} />, root);
