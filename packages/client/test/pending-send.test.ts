/**
 * First messages to a peer with no session, written while the client is offline: they
 * are stored at once (encrypted profile, status `sending`), survive a restart, and are
 * encrypted and sent in order once the client connects; a definite key refusal marks
 * them `failed` with a reason and loses nothing else. In-process relay, real protocol,
 * real SQLCipher profile for the restart.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { utf8Encode } from '@parley/crypto';
import { Account, ClientError, MemoryStore, ParleyClient } from '@parley/client';
import { createProfile, openProfile } from '@parley/client-node';
import { FakeRelay } from './fake-relay.js';
import { cheap, crypto, device, e2ee, makeAccount, online, texts, until } from './harness.js';
import type { Device } from './harness.js';

const root = mkdtempSync(join(tmpdir(), 'parley-pending-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
/** Bob publishes prekeys once and goes offline; alice has never talked to him. */
async function bobWithPrekeys(relay: FakeRelay): Promise<Device> {
  const bs = new MemoryStore();
  await makeAccount(bs, 'bob');
  const bob = await device(relay, 'bob', bs);
  await online(relay, bob);
  await until(() => (relay.users.get('bob')?.oneTime.length ?? 0) > 0, 'bob prekeys');
  relay.users.get('bob')?.conn?.close();
  return bob;
}

const statuses = async (d: Device, peer: string): Promise<string[]> =>
  (await d.client.messages(peer)).map((m) => m.status);

describe('first message to a peer while offline', () => {
  it('is stored as sending, survives a restart, then goes out in order once connected', async () => {
    const relay = new FakeRelay();
    const bob = await bobWithPrekeys(relay);
    const adir = join(root, 'alice');
    let as = await createProfile(adir, 'pa', cheap);
    await makeAccount(as, 'alice');
    let alice = await device(relay, 'alice', as);

    // Offline, no session with bob: both messages are kept, nothing is encrypted yet.
    const m1 = await alice.client.send('bob', 'first while offline');
    const m2 = await alice.client.send('bob', 'second while offline');
    expect([m1.status, m2.status]).toEqual(['sending', 'sending']);
    expect(await as.getSession('bob', 1)).toBeUndefined();
    expect(await as.listOutbox()).toEqual([]);
    expect(relay.seenPayloads.length).toBe(0);

    // Restart: the profile is closed and reopened; the messages are still there, waiting.
    await alice.client.close();
    await as.close();
    as = await openProfile(adir, 'pa', cheap);
    alice = await device(relay, 'alice', as);
    expect(await texts(alice, 'bob')).toEqual([
      'out:first while offline',
      'out:second while offline',
    ]);
    expect(await statuses(alice, 'bob')).toEqual(['sending', 'sending']);

    // Connect, and send a third message the moment the client is ready (it could fetch
    // bob's keys itself now): it must not overtake the first two.
    const ready = new Promise<void>((resolve) => {
      const off = alice.client.on((e) => {
        if (e.type !== 'ready') return;
        off();
        resolve();
      });
    });
    relay.connect('alice', alice.client);
    await ready;
    const m3 = await alice.client.send('bob', 'third after connecting');
    for (const m of [m1, m2, m3]) await alice.client.waitForStatus('bob', m.id, 'queued', 5000);
    expect(await as.listOutbox()).toEqual([]);
    expect(await as.getSession('bob', 1)).toBeDefined();
    // Each message reached the relay as ciphertext, once per id (client ids are kept).
    expect(relay.seenPayloads.length).toBe(3);
    for (const p of relay.seenPayloads) {
      for (const t of ['first while offline', 'second while offline'])
        expect(Buffer.from(p).includes(Buffer.from(utf8Encode(t)))).toBe(false);
    }

    await online(relay, bob);
    await until(async () => (await bob.client.messages('alice')).length === 3, 'bob has all three');
    expect(await texts(bob, 'alice')).toEqual([
      'in:first while offline',
      'in:second while offline',
      'in:third after connecting',
    ]);
    // Same ids at both ends: the ids chosen while offline survived the restart.
    expect((await bob.client.messages('alice')).map((m) => m.id)).toEqual([m1.id, m2.id, m3.id]);
    for (const m of [m1, m2, m3]) await alice.client.waitForStatus('bob', m.id, 'delivered', 5000);
    expect(await statuses(alice, 'bob')).toEqual(['delivered', 'delivered', 'delivered']);
    await alice.client.close();
    await bob.client.close();
    await as.close();
  });

  it('a definite key refusal marks the message failed with a reason; other messages still go', async () => {
    const relay = new FakeRelay();
    const bob = await bobWithPrekeys(relay);
    const as = new MemoryStore();
    await makeAccount(as, 'alice');
    const alice = await device(relay, 'alice', as);

    const lost = await alice.client.send('nobody', 'to a user the relay does not know');
    const fine = await alice.client.send('bob', 'to bob');
    const after = await alice.client.send('nobody', 'second to nobody');
    await online(relay, alice);

    await alice.client.waitForStatus('bob', fine.id, 'queued', 5000);
    await expect(alice.client.waitForStatus('nobody', lost.id, 'queued', 5000)).rejects.toThrow(
      ClientError,
    );
    await until(async () => (await statuses(alice, 'nobody'))[1] === 'failed', 'second failed');
    expect(await statuses(alice, 'nobody')).toEqual(['failed', 'failed']);
    // The text is kept in the history, with the reason the send failed.
    expect(await texts(alice, 'nobody')).toEqual([
      'out:to a user the relay does not know',
      'out:second to nobody',
    ]);
    const why = await alice.client.sendFailure('nobody', lost.id);
    expect(why?.code).toBe('NOT_FOUND');
    expect(why?.reason).toMatch(/nobody: unknown to the relay/);
    expect(await alice.client.sendFailure('nobody', after.id)).toBeDefined();
    expect(await alice.client.sendFailure('bob', fine.id)).toBeUndefined();
    const failedEvents = alice.events.filter((e) => e.type === 'status' && e.status === 'failed');
    expect(failedEvents.length).toBe(2);
    expect(
      alice.events.some(
        (e) => e.type === 'error' && /message to nobody not sent/.test(e.error.message),
      ),
    ).toBe(true);

    await online(relay, bob);
    await until(async () => (await bob.client.messages('alice')).length === 1, 'bob has it');
    expect(await texts(bob, 'alice')).toEqual(['in:to bob']);
    // A failed message is never sent later, e.g. after a reconnect.
    relay.users.get('alice')?.conn?.close();
    await online(relay, alice);
    expect(await statuses(alice, 'nobody')).toEqual(['failed', 'failed']);
    // Alice relayed only the message to bob (bob's end-to-end receipt is his).
    expect(relay.relayed.filter((r) => r.from === 'alice').map((r) => r.to)).toEqual(['bob']);
    await alice.client.close();
    await bob.client.close();
  });

  it('mtls: a certificate that does not verify marks the message failed (UNTRUSTED_KEY)', async () => {
    const relay = new FakeRelay();
    // Bob and mallory publish prekeys (the relay holds a "certificate" for each), then leave.
    const peers: Device[] = [];
    for (const name of ['bob', 'mallory']) {
      const store = new MemoryStore();
      await makeAccount(store, name);
      const account = await Account.load(store, crypto);
      relay.provision(name, account.keyPair.publicKey, utf8Encode(`certificate of ${name}`));
      const d = await device(relay, name, store);
      await online(relay, d);
      await until(() => (relay.users.get(name)?.oneTime.length ?? 0) > 0, `${name} prekeys`);
      relay.users.get(name)?.conn?.close();
      peers.push(d);
    }
    const as = new MemoryStore();
    await as.commit(
      Account.creationWrites(
        {
          name: 'alice',
          deviceId: 1,
          server: 'wss://relay.test/ws',
          mode: 'mtls',
          registered: true,
          createdAt: 1,
        },
        crypto.randomBytes(32),
      ),
    );
    const account = await Account.load(as, crypto);
    relay.provision('alice', account.keyPair.publicKey);
    const checked: string[] = [];
    // Stands in for the CA check: bob's certificate verifies, mallory's does not.
    const verifyPeerCertificate = async (cert: Uint8Array, name: string): Promise<Uint8Array> => {
      checked.push(name);
      if (name !== 'bob') throw new Error('not issued by our CA');
      expect(Buffer.from(cert).toString()).toBe('certificate of bob');
      return relay.users.get('bob')!.identityKey;
    };
    const client = new ParleyClient({ store: as, crypto, e2ee, account, verifyPeerCertificate });
    const alice: Device = { name: 'alice', store: as, client, events: [] };
    client.on((e) => alice.events.push(e));

    const bad = await client.send('mallory', 'for mallory');
    const good = await client.send('bob', 'for bob');
    await online(relay, alice);
    await client.waitForStatus('bob', good.id, 'queued', 5000);
    await expect(client.waitForStatus('mallory', bad.id, 'queued', 5000)).rejects.toMatchObject({
      code: 'UNTRUSTED_KEY',
    });
    expect(await statuses(alice, 'mallory')).toEqual(['failed']);
    expect((await client.sendFailure('mallory', bad.id))?.reason).toMatch(
      /mallory: certificate does not verify/,
    );
    expect(await as.getSession('mallory', 1)).toBeUndefined();
    expect(checked.sort()).toEqual(['bob', 'mallory']);
    expect((await client.contacts()).map((c) => [c.name, c.trust])).toEqual([
      ['bob', 'ca-attested'],
    ]);
    // The refused message never reached the relay; bob's did.
    expect(relay.seenPayloads.length).toBe(1);
    await client.close();
    for (const d of peers) await d.client.close();
  });

  it('connection lost during the key lookup: kept as sending, sent after the reconnect', async () => {
    const relay = new FakeRelay();
    const bob = await bobWithPrekeys(relay);
    const as = new MemoryStore();
    await makeAccount(as, 'alice');
    const alice = await device(relay, 'alice', as);
    await online(relay, alice);
    relay.dropLookups = true;
    const sending = alice.client.send('bob', 'sent as the link died');
    await until(() => relay.lookups === 1, 'the lookup reached the relay');
    relay.users.get('alice')?.conn?.close();
    const m = await sending;
    expect(m.status).toBe('sending');
    expect(await as.listOutbox()).toEqual([]);
    relay.dropLookups = false;
    await online(relay, alice);
    await alice.client.waitForStatus('bob', m.id, 'queued', 5000);
    await online(relay, bob);
    await until(async () => (await bob.client.messages('alice')).length === 1, 'bob has it');
    expect(await texts(bob, 'alice')).toEqual(['in:sent as the link died']);
    await alice.client.close();
    await bob.client.close();
  });

  it('a refusal while connected is reported to the caller and stores nothing', async () => {
    const relay = new FakeRelay();
    const as = new MemoryStore();
    await makeAccount(as, 'alice');
    const alice = await device(relay, 'alice', as);
    await online(relay, alice);
    await expect(alice.client.send('nobody', 'hello?')).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    expect(await alice.client.messages('nobody')).toEqual([]);
    await alice.client.close();
  });
});
