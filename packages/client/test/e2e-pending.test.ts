/**
 * End to end with the real relay (TLS 1.3, WebSocket, SQLite mailbox) and real mtls
 * profiles: Alice, offline and with no session with Bob, writes to him; the messages are
 * kept in her encrypted profile across a restart and, once she connects, her client
 * fetches Bob's certified keys, starts the session and sends them; Bob receives them in
 * order.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openNodeClient } from '@parley/client-node';
import type { NodeClient } from '@parley/client-node';
import { PASS, crypto, startMtlsPair, until } from './e2e-helpers.js';

const root = mkdtempSync(join(tmpdir(), 'parley-e2e-pending-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const open = (profile: string): Promise<NodeClient> =>
  openNodeClient({ profile, passphrase: PASS, crypto });

describe('end to end: first message written offline', () => {
  it('mtls: alice offline writes to bob (no session), restarts, connects -> bob receives in order', async () => {
    const { relay, profiles } = await startMtlsPair(root);
    try {
      // Bob publishes prekeys once and goes offline.
      {
        const bob = await open(profiles.bob);
        await bob.connect();
        await until(() => bob.client.mailboxDrained, 'bob drained');
        await bob.client.requestPresence(); // round trip: the upload has been processed
        await bob.close();
      }

      // Alice never connects in this run: both messages are stored, none is sent.
      let alice = await open(profiles.alice);
      const m1 = await alice.client.send('bob', 'offline first');
      const m2 = await alice.client.send('bob', 'offline second');
      expect([m1.status, m2.status]).toEqual(['sending', 'sending']);
      expect(await alice.store.getSession('bob', 1)).toBeUndefined();
      await alice.close();

      // Restart, then connect: the client looks up bob's keys, checks his certificate,
      // starts the session and sends both, in order, each queued at the relay.
      alice = await open(profiles.alice);
      expect((await alice.client.messages('bob')).map((m) => m.status)).toEqual([
        'sending',
        'sending',
      ]);
      await alice.connect();
      for (const m of [m1, m2]) await alice.client.waitForStatus('bob', m.id, 'queued', 20_000);
      expect((await alice.client.contacts()).map((k) => [k.name, k.trust])).toEqual([
        ['bob', 'ca-attested'],
      ]);

      const bob = await open(profiles.bob);
      await bob.connect();
      await until(async () => (await bob.client.messages('alice')).length === 2, 'two at bob');
      expect((await bob.client.messages('alice')).map((m) => [m.id, m.text])).toEqual([
        [m1.id, 'offline first'],
        [m2.id, 'offline second'],
      ]);
      for (const m of [m1, m2]) await alice.client.waitForStatus('bob', m.id, 'delivered', 20_000);
      await alice.close();
      await bob.close();
    } finally {
      await relay.close();
    }
  });
});
