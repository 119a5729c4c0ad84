/**
 * Client core against the in-process relay, with the real protocol package and real
 * stores (memory, and the SQLCipher profile for restarts). Covers the core
 * behaviours: offline recipient with queued -> delivered, order, retries, duplicates
 * shown once, restart without a new handshake, tampering, key change, termination,
 * and atomic commit of message + session.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { toHex, utf8Encode } from '@parley/crypto';
import { MemoryStore } from '@parley/client';
import type { StoreWrite } from '@parley/client';
import { createProfile, openProfile } from '@parley/client-node';
import { FakeRelay } from './fake-relay.js';
import { cheap, device, makeAccount, online, texts, until } from './harness.js';
import type { Device } from './harness.js';

const root = mkdtempSync(join(tmpdir(), 'parley-core-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
async function pair(): Promise<{ relay: FakeRelay; alice: Device; bob: Device }> {
  const relay = new FakeRelay();
  const as = new MemoryStore();
  const bs = new MemoryStore();
  await makeAccount(as, 'alice');
  await makeAccount(bs, 'bob');
  const alice = await device(relay, 'alice', as);
  const bob = await device(relay, 'bob', bs);
  // Bob publishes prekeys once, then goes offline.
  await online(relay, bob);
  await until(() => (relay.users.get('bob')?.oneTime.length ?? 0) > 0, 'bob prekeys');
  relay.users.get('bob')?.conn?.close();
  await online(relay, alice);
  return { relay, alice, bob };
}

describe('client core with the in-process relay', () => {
  it('offline recipient: three messages queued, delivered in order, sender sees delivered', async () => {
    const { relay, alice, bob } = await pair();
    const sent = [];
    for (const t of ['one', 'two', 'three']) {
      const m = await alice.client.send('bob', t);
      await alice.client.waitForStatus('bob', m.id, 'queued', 5000);
      sent.push(m);
    }
    expect((await alice.client.messages('bob')).map((m) => m.status)).toEqual([
      'queued',
      'queued',
      'queued',
    ]);
    // Out of the pending outbox, kept as records for the relay's late device receipts.
    expect(await alice.store.listOutbox()).toEqual([]);
    for (const m of sent)
      expect(await alice.store.getOutbox(m.id)).toMatchObject({ state: 'sent', message: m.id });
    await online(relay, bob);
    expect(await texts(bob, 'alice')).toEqual(['in:one', 'in:two', 'in:three']);
    for (const m of sent) await alice.client.waitForStatus('bob', m.id, 'delivered', 5000);
    expect((await alice.client.messages('bob')).map((m) => m.status)).toEqual([
      'delivered',
      'delivered',
      'delivered',
    ]);
    // Once delivered no record is left (the relay's device receipt or the end-to-end
    // receipt deleted it).
    for (const m of sent) expect(await alice.store.getOutbox(m.id)).toBeUndefined();
    // The relay only ever held ciphertext.
    for (const p of relay.seenPayloads) {
      for (const t of ['one', 'two', 'three'])
        expect(Buffer.from(p).includes(Buffer.from(utf8Encode(t)))).toBe(false);
    }
    // Reply goes back over the same session, and the conversation continues.
    const r = await bob.client.send('alice', 'hi alice');
    await bob.client.waitForStatus('alice', r.id, 'delivered', 5000);
    expect(await texts(alice, 'bob')).toEqual(['out:one', 'out:two', 'out:three', 'in:hi alice']);
    expect((await alice.client.contacts()).map((c) => [c.name, c.trust])).toEqual([
      ['bob', 'unverified'],
    ]);
  });

  it('shows a message once when the relay redelivers it (lost ack, replay)', async () => {
    const { relay, alice, bob } = await pair();
    relay.dropAcks = true;
    await online(relay, bob);
    const m = await alice.client.send('bob', 'only once');
    await until(async () => (await bob.client.messages('alice')).length === 1, 'first delivery');
    relay.redeliver('bob');
    relay.redeliver('bob');
    bob.client.connectionClosed();
    await online(relay, bob); // reconnect: the pushed backlog delivers it again
    relay.dropAcks = false;
    relay.redeliver('bob');
    await until(() => relay.users.get('bob')?.mailbox.length === 0, 'acked');
    expect(await texts(bob, 'alice')).toEqual(['in:only once']);
    expect(bob.events.filter((e) => e.type === 'message').length).toBe(1);
    await alice.client.waitForStatus('bob', m.id, 'delivered', 5000);
  });

  it('a relay replaying old frames under new ids shows nothing twice and raises no alarm', async () => {
    const { relay, alice, bob } = await pair();
    await online(relay, bob);
    for (const t of ['a', 'b']) {
      const m = await alice.client.send('bob', t);
      await alice.client.waitForStatus('bob', m.id, 'delivered', 5000);
    }
    const r = await bob.client.send('alice', 'reply');
    await bob.client.waitForStatus('alice', r.id, 'delivered', 5000);
    const m3 = await alice.client.send('bob', 'c');
    await alice.client.waitForStatus('bob', m3.id, 'delivered', 5000);
    const relayedBefore = relay.relayed.length;
    const replayed = [...relay.replayAll('bob'), ...relay.replayAll('alice')];
    // Four messages and the end-to-end receipts for them, every one replayed.
    expect(replayed.length).toBe(
      (relay.delivered.get('bob')?.length ?? 0) + (relay.delivered.get('alice')?.length ?? 0),
    );
    expect(replayed.length).toBeGreaterThanOrEqual(6);
    // Every replay was processed (decrypted, refused as a duplicate) and acknowledged.
    await until(() => replayed.every((id) => relay.acked.has(id)), 'replays acknowledged');
    // Nothing answered them: no receipt for a replay, no repair.
    await alice.client.requestPresence();
    await bob.client.requestPresence();
    expect(relay.relayed.length).toBe(relayedBefore);
    expect([...bob.events, ...alice.events].filter((e) => e.type === 'session-repaired')).toEqual(
      [],
    );
    expect(await texts(bob, 'alice')).toEqual(['in:a', 'in:b', 'out:reply', 'in:c']);
    expect(await texts(alice, 'bob')).toEqual(['out:a', 'out:b', 'in:reply', 'out:c']);
    expect([...bob.events, ...alice.events].filter((e) => e.type === 'error')).toEqual([]);
  });

  it('retries the outbox until the relay says queued, with the same ciphertext', async () => {
    const { relay, alice, bob } = await pair();
    relay.dropSends = true;
    const m = await alice.client.send('bob', 'eventually');
    await new Promise((r) => setTimeout(r, 50));
    expect((await alice.client.messages('bob'))[0]?.status).toBe('sending');
    const [entry] = await alice.store.listOutbox();
    relay.dropSends = false;
    alice.client.connectionClosed();
    await online(relay, alice);
    await alice.client.waitForStatus('bob', m.id, 'queued', 5000);
    expect(relay.seenPayloads.map(toHex)).toEqual([toHex(entry!.payload)]);
    expect(await alice.store.listOutbox()).toEqual([]);
    await online(relay, bob);
    expect(await texts(bob, 'alice')).toEqual(['in:eventually']);
  });

  it('backs off and resends when the relay says rate_limited', async () => {
    const { relay, alice, bob } = await pair();
    relay.rateLimitNext = 1;
    const m = await alice.client.send('bob', 'slow down');
    await until(
      () => alice.events.some((e) => e.type === 'error') || relay.rateLimitNext === 0,
      'refusal',
    );
    expect((await alice.client.messages('bob'))[0]?.status).toBe('sending');
    await alice.client.waitForStatus('bob', m.id, 'queued', 5000);
    await online(relay, bob);
    expect(await texts(bob, 'alice')).toEqual(['in:slow down']);
  });

  it('retries on the same connection when the relay says server_error, then it is queued', async () => {
    const { relay, alice, bob } = await pair();
    relay.serverErrorNext = 2;
    const opened = alice.events.filter((e) => e.type === 'ready').length;
    const m = await alice.client.send('bob', 'storage came back');
    await alice.client.waitForStatus('bob', m.id, 'queued', 8000);
    expect(relay.serverErrorNext).toBe(0);
    // No reconnect was needed, and no error was reported for a refusal that was retried.
    expect(alice.events.filter((e) => e.type === 'ready').length).toBe(opened);
    expect(alice.events.filter((e) => e.type === 'error')).toEqual([]);
    await online(relay, bob);
    expect(await texts(bob, 'alice')).toEqual(['in:storage came back']);
  });

  it('a tampered message changes no session; the repair it starts brings the message through', async () => {
    const { relay, alice, bob } = await pair();
    await online(relay, bob);
    const first = await alice.client.send('bob', 'first');
    await alice.client.waitForStatus('bob', first.id, 'delivered', 5000);
    const before = await bob.store.getSession('alice', 1);
    // Every batch bob commits from here on, to see what the failed decryption wrote.
    const commits: (readonly StoreWrite[])[] = [];
    const commit = bob.store.commit.bind(bob.store);
    bob.store.commit = (writes: readonly StoreWrite[]) => {
      commits.push(writes);
      return commit(writes);
    };
    // A relay flips a byte in the next payload.
    const origHandle = bob.client.handleFrame.bind(bob.client);
    let flipped = false;
    bob.client.handleFrame = async (f) => {
      if (f.type === 'deliver' && !flipped) {
        flipped = true;
        const p = f.payload.slice();
        p[p.length - 5] = (p[p.length - 5] as number) ^ 1;
        return origHandle({ ...f, payload: p });
      }
      return origHandle(f);
    };
    const tampered = await alice.client.send('bob', 'tampered');
    // Bob could not read it, so alice never hears "delivered" for that copy; the
    // repair makes her send it again in the new session, and then it is.
    await alice.client.waitForStatus('bob', tampered.id, 'delivered', 5000);
    expect(await texts(bob, 'alice')).toEqual(['in:first', 'in:tampered']);
    // The failed decryption wrote nothing: the first session change bob committed is
    // the repair's new session, together with its reset in the outbox.
    const firstSessionWrite = commits.find((w) => w.some((x) => x.op === 'session.put'));
    expect(firstSessionWrite?.some((x) => x.op === 'outbox.put')).toBe(true);
    expect(toHex((await bob.store.getSession('alice', 1))!)).not.toBe(toHex(before!));
    expect(bob.events.some((e) => e.type === 'error')).toBe(false);
    expect(alice.events.some((e) => e.type === 'session-repaired')).toBe(true);
    const third = await alice.client.send('bob', 'third');
    await alice.client.waitForStatus('bob', third.id, 'delivered', 5000);
    expect(await texts(bob, 'alice')).toEqual(['in:first', 'in:tampered', 'in:third']);
    expect((await alice.client.messages('bob')).map((m) => m.status)).toEqual([
      'delivered',
      'delivered',
      'delivered',
    ]);
  });

  it('commits message and session together: a failed commit leaves both out, redelivery succeeds', async () => {
    const { relay, alice, bob } = await pair();
    // Make Bob's store fail the first commit that carries a message.
    const real = bob.store.commit.bind(bob.store);
    let fail = true;
    bob.store.commit = async (writes: readonly StoreWrite[]) => {
      if (fail && writes.some((w) => w.op === 'message.put')) {
        fail = false;
        throw new Error('disk full');
      }
      return real(writes);
    };
    await online(relay, bob);
    await alice.client.send('bob', 'atomic');
    await until(() => !fail, 'failed commit');
    await new Promise((r) => setTimeout(r, 20));
    expect(await bob.store.getSession('alice', 1)).toBeUndefined();
    expect(await bob.client.messages('alice')).toEqual([]);
    expect(relay.users.get('bob')?.mailbox.length).toBe(1); // not acknowledged
    relay.redeliver('bob');
    await until(async () => (await bob.client.messages('alice')).length === 1, 'redelivered');
    expect(await texts(bob, 'alice')).toEqual(['in:atomic']);
    expect(await bob.store.getSession('alice', 1)).toBeDefined();
  });

  it('warns loudly when a contact key changes', async () => {
    const { relay, alice, bob } = await pair();
    await online(relay, bob);
    const m = await alice.client.send('bob', 'before');
    await alice.client.waitForStatus('bob', m.id, 'delivered', 5000);
    // Bob reinstalls: new identity, new prekeys; Alice's old session is ended by Bob's new one.
    const bs2 = new MemoryStore();
    await makeAccount(bs2, 'bob');
    relay.users.get('bob')?.conn?.close();
    relay.users.delete('bob');
    const bob2 = await device(relay, 'bob', bs2);
    await online(relay, bob2);
    await until(() => (relay.users.get('bob')?.oneTime.length ?? 0) > 0, 'bob2 prekeys');
    await bob2.client.send('alice', 'new phone');
    await until(() => alice.events.some((e) => e.type === 'key-changed'), 'key-changed event');
    const c = (await alice.client.contacts())[0];
    expect(c?.trust).toBe('key-changed');
    expect(c?.previousIdentityKey).toBeDefined();
    const v = await alice.client.markVerified('bob');
    expect(v.trust).toBe('verified');
  });

  it('a changed key holds replies (nothing encrypted to it) until the user accepts it', async () => {
    const { relay, alice, bob } = await pair();
    await online(relay, bob);
    const m = await alice.client.send('bob', 'before');
    await alice.client.waitForStatus('bob', m.id, 'delivered', 5000);
    const bs2 = new MemoryStore();
    await makeAccount(bs2, 'bob');
    relay.users.get('bob')?.conn?.close();
    relay.users.delete('bob');
    const bob2 = await device(relay, 'bob', bs2);
    await online(relay, bob2);
    await until(() => (relay.users.get('bob')?.oneTime.length ?? 0) > 0, 'bob2 prekeys');
    await bob2.client.send('alice', 'new phone');
    await until(async () => (await texts(alice, 'bob')).includes('in:new phone'), 'alice reads');
    const payloads = relay.seenPayloads.length;
    const reply = await alice.client.send('bob', 'held reply');
    expect(reply.status).toBe('sending');
    expect(alice.events.some((e) => e.type === 'error' && e.error.code === 'KEY_CHANGED')).toBe(
      true,
    );
    // A round trip: anything sent before it has reached the relay.
    await alice.client.requestPresence();
    expect(relay.seenPayloads.length).toBe(payloads);
    expect((await alice.client.messages('bob')).find((x) => x.id === reply.id)?.status).toBe(
      'sending',
    );
    await alice.client.markVerified('bob');
    await alice.client.waitForStatus('bob', reply.id, 'delivered', 5000);
    expect(await texts(bob2, 'alice')).toEqual(['out:new phone', 'in:held reply']);
  });

  it('terminates a session: keys discarded on both sides, the next message starts afresh', async () => {
    const { relay, alice, bob } = await pair();
    await online(relay, bob);
    const m = await alice.client.send('bob', 'hello');
    await alice.client.waitForStatus('bob', m.id, 'delivered', 5000);
    await alice.client.terminate('bob');
    expect(await alice.store.getSession('bob', 1)).toBeUndefined();
    await until(() => bob.events.some((e) => e.type === 'session-ended'), 'bob sees end');
    expect(await bob.store.getSession('alice', 1)).toBeUndefined();
    await alice.client.send('bob', 'again');
    await until(async () => (await bob.client.messages('alice')).length === 2, 'again');
    expect(await texts(bob, 'alice')).toEqual(['in:hello', 'in:again']);
  });

  it('survives a restart of both clients: history kept, no new handshake, nothing shown twice', async () => {
    const relay = new FakeRelay();
    const adir = join(root, 'alice');
    const bdir = join(root, 'bob');
    let as = await createProfile(adir, 'pa', cheap);
    let bs = await createProfile(bdir, 'pb', cheap);
    await makeAccount(as, 'alice');
    await makeAccount(bs, 'bob');
    let alice = await device(relay, 'alice', as);
    let bob = await device(relay, 'bob', bs);
    await online(relay, bob);
    await online(relay, alice);
    const m1 = await alice.client.send('bob', 'before restart');
    await alice.client.waitForStatus('bob', m1.id, 'delivered', 5000);
    const r1 = await bob.client.send('alice', 'ack before restart');
    await bob.client.waitForStatus('alice', r1.id, 'delivered', 5000);
    for (const d of [alice, bob]) {
      relay.users.get(d.name)?.conn?.close();
      await d.client.close();
      await d.store.close();
    }
    as = await openProfile(adir, 'pa', cheap);
    bs = await openProfile(bdir, 'pb', cheap);
    alice = await device(relay, 'alice', as);
    bob = await device(relay, 'bob', bs);
    await online(relay, alice);
    await online(relay, bob);
    const before = relay.seenPayloads.length;
    const m2 = await alice.client.send('bob', 'after restart');
    await alice.client.waitForStatus('bob', m2.id, 'delivered', 5000);
    // Envelope type 2 = ordinary ratchet message: the session continued, no handshake.
    expect(relay.seenPayloads[before]?.[0]).toBe(2);
    expect(await texts(bob, 'alice')).toEqual([
      'in:before restart',
      'out:ack before restart',
      'in:after restart',
    ]);
    expect(
      bob.events.filter((e) => e.type === 'message' && e.message.direction === 'in').length,
    ).toBe(1);
    await alice.client.close();
    await bob.client.close();
    await as.close();
    await bs.close();
  });

  it('rotates the signed prekey weekly and keeps the old secret through the grace period', async () => {
    const relay = new FakeRelay();
    let now = Date.UTC(2026, 0, 1);
    const clock = (): number => now;
    const as = new MemoryStore();
    const bs = new MemoryStore();
    await makeAccount(as, 'alice');
    await makeAccount(bs, 'bob');
    const alice = await device(relay, 'alice', as, clock);
    let bob = await device(relay, 'bob', bs, clock);
    await online(relay, bob);
    await until(() => relay.users.get('bob')?.signedPrekey !== undefined, 'bob prekeys');
    const spk1 = relay.users.get('bob')?.signedPrekey?.id as number;
    relay.users.get('bob')?.conn?.close();
    await online(relay, alice);
    // Alice writes from the week-1 bundle while Bob is away for eight days.
    await alice.client.send('bob', 'sent against the old signed prekey');
    now += 8 * 24 * 3600 * 1000;
    await bob.client.close();
    bob = await device(relay, 'bob', bs, clock);
    await online(relay, bob);
    const spk2 = relay.users.get('bob')?.signedPrekey?.id as number;
    expect(spk2).not.toBe(spk1);
    expect(await bs.getSecret('spk', spk1)).toBeDefined();
    expect(await texts(bob, 'alice')).toEqual(['in:sent against the old signed prekey']);
    // Forty days later the week-1 secret is gone; the week-2 one stays until its successor ages.
    now += 40 * 24 * 3600 * 1000;
    relay.users.get('bob')?.conn?.close();
    await online(relay, bob);
    expect(await bs.getSecret('spk', spk1)).toBeUndefined();
    expect(await bs.getSecret('spk', spk2)).toBeDefined();
    expect(relay.users.get('bob')?.signedPrekey?.id).not.toBe(spk2);
  });
});
