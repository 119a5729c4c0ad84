/**
 * End-to-end delivery in the client core (in-process relay, real protocol): only the
 * recipient's end-to-end receipt makes a message `delivered`; the relay's receipts,
 * forged or not, give `queued` / `on-device`; a receipt from another peer names
 * nothing of ours; receipts are never answered; dedupe ignores relay-assigned ids; and
 * a peer that never decrypts cannot make the repair loop.
 */
import { describe, expect, it } from 'vitest';
import { MAX_REPAIRS_PER_PEER, MAX_RESENDS_PER_MESSAGE, MemoryStore } from '@parley/client';
import type { MessageStatus } from '@parley/client';
import { parsePreKeyMessage } from '@parley/protocol';
import { FakeRelay } from './fake-relay.js';
import { device, makeAccount, online, texts } from './harness.js';
import type { Device } from './harness.js';

async function trio(): Promise<{ relay: FakeRelay; alice: Device; bob: Device; carol: Device }> {
  const relay = new FakeRelay();
  const [as, bs, cs] = [new MemoryStore(), new MemoryStore(), new MemoryStore()];
  await makeAccount(as, 'alice');
  await makeAccount(bs, 'bob');
  await makeAccount(cs, 'carol');
  const alice = await device(relay, 'alice', as);
  const bob = await device(relay, 'bob', bs);
  const carol = await device(relay, 'carol', cs);
  for (const d of [bob, carol, alice]) await online(relay, d);
  return { relay, alice, bob, carol };
}

const statusOf = async (d: Device, peer: string, id: string): Promise<MessageStatus | undefined> =>
  (await d.store.getMessage(peer, 'out', id))?.status;

/** A round trip through the relay: every frame sent before it has been handled. */
async function settle(...ds: Device[]): Promise<void> {
  for (const d of ds) await d.client.requestPresence();
}

describe('end-to-end delivery receipts', () => {
  it('a device that acks what it could not decrypt gives on-device; delivered comes only with the copy it reads', async () => {
    const { alice, bob } = await trio();
    // One log for both clients, so the order of what each saw can be compared.
    const log: string[] = [];
    alice.client.on((e) => {
      if (e.type === 'status') log.push(`alice:${e.status}`);
    });
    bob.client.on((e) => {
      if (e.type === 'message' && e.message.direction === 'in')
        log.push(`bob:has:${e.message.text}`);
    });
    // The first payload bob gets is damaged in transit: his device acks it, unread.
    const handle = bob.client.handleFrame.bind(bob.client);
    let damaged = false;
    bob.client.handleFrame = (f) => {
      if (f.type !== 'deliver' || damaged) return handle(f);
      damaged = true;
      const p = f.payload.slice();
      p[p.length - 5] = (p[p.length - 5] as number) ^ 1;
      return handle({ ...f, payload: p });
    };
    const m = await alice.client.send('bob', 'hello');
    await alice.client.waitForStatus('bob', m.id, 'delivered', 5000);
    expect(await texts(bob, 'alice')).toEqual(['in:hello']);
    expect(log).toContain('alice:on-device');
    expect(log.indexOf('bob:has:hello')).toBeGreaterThanOrEqual(0);
    expect(log.indexOf('alice:delivered')).toBeGreaterThan(log.indexOf('bob:has:hello'));
    expect(log.filter((l) => l === 'alice:delivered')).toHaveLength(1);
  });

  it('a relay that swallows mail and forges "delivered" gets "on-device" at most, and the outbox keeps the text', async () => {
    const { relay, alice, bob } = await trio();
    relay.swallowFor = 'bob';
    const m = await alice.client.send('bob', 'swallowed');
    await alice.client.waitForStatus('bob', m.id, 'on-device', 5000);
    await settle(alice, bob);
    expect(await statusOf(alice, 'bob', m.id)).toBe('on-device');
    expect(await texts(bob, 'alice')).toEqual([]);
    await expect(alice.client.waitForStatus('bob', m.id, 'delivered', 300)).rejects.toMatchObject({
      code: 'TIMEOUT',
    });
    // Its text stays in the (encrypted) history until a receipt, for a re-send.
    expect((await alice.store.getMessage('bob', 'out', m.id))?.text).toBe('swallowed');
  });

  it("a receipt from another peer names nothing of ours; a relay's forged receipt cannot either", async () => {
    const { relay, alice, bob, carol } = await trio();
    relay.swallowFor = 'bob';
    const m = await alice.client.send('bob', 'for bob only');
    await alice.client.waitForStatus('bob', m.id, 'on-device', 5000);
    relay.swallowFor = undefined;
    // Carol knows the id (say the relay told her) and "receipts" it in her own session
    // with alice: a real end-to-end receipt, but from the wrong peer.
    const c = await carol.client.send('alice', 'hi alice');
    await carol.client.waitForStatus('alice', c.id, 'delivered', 5000);
    const due = await carol.store.getMeta('receipts-due:alice');
    expect(due).toBeUndefined();
    await carol.store.commit([
      {
        op: 'meta.put',
        key: 'receipts-due:alice',
        value: new TextEncoder().encode(JSON.stringify([m.id])),
      },
    ]);
    // Carol receives something from alice, which flushes her due receipts (m's id included).
    const a = await alice.client.send('carol', 'hi carol');
    await alice.client.waitForStatus('carol', a.id, 'delivered', 5000);
    await settle(alice, carol);
    expect(await statusOf(alice, 'bob', m.id)).toBe('on-device');
    // A relay that puts a raw "receipt" in a deliver frame from bob only makes noise.
    await alice.client.handleFrame({
      type: 'deliver',
      serverMessageId: 999_999,
      kind: 'message',
      from: { name: 'bob', deviceId: 1 },
      timestamp: Date.now(),
      payload: new TextEncoder().encode(JSON.stringify({ v: 1, t: 'rcpt', ids: [m.id] })),
    });
    await settle(alice, bob);
    expect(await statusOf(alice, 'bob', m.id)).not.toBe('delivered');
  });

  it('receipts are batched and never answered by receipts', async () => {
    const { relay, alice, bob } = await trio();
    relay.users.get('bob')?.conn?.close();
    const sent = [];
    for (const t of ['1', '2', '3', '4', '5']) sent.push(await alice.client.send('bob', t));
    for (const m of sent) await alice.client.waitForStatus('bob', m.id, 'queued', 5000);
    await online(relay, bob);
    for (const m of sent) await alice.client.waitForStatus('bob', m.id, 'delivered', 5000);
    await settle(alice, bob);
    const from = (n: string): number => relay.relayed.filter((r) => r.from === n).length;
    // Alice relayed her five messages and nothing in answer to bob's receipts.
    expect(from('alice')).toBe(5);
    // Bob relayed receipts only, fewer than one per message when the backlog came at once.
    expect(from('bob')).toBeGreaterThanOrEqual(1);
    expect(from('bob')).toBeLessThanOrEqual(5);
    expect(await texts(bob, 'alice')).toEqual(['in:1', 'in:2', 'in:3', 'in:4', 'in:5']);
  });
});

describe('repair handshakes', () => {
  it('name no one-time prekey, even when the bundle offers one', async () => {
    const { relay, alice, bob } = await trio();
    const m1 = await alice.client.send('bob', 'first');
    await alice.client.waitForStatus('bob', m1.id, 'delivered', 5000);
    const handle = bob.client.handleFrame.bind(bob.client);
    let damaged = false;
    bob.client.handleFrame = (f) => {
      if (f.type !== 'deliver' || damaged) return handle(f);
      damaged = true;
      const p = f.payload.slice();
      p[p.length - 5] = (p[p.length - 5] as number) ^ 1;
      return handle({ ...f, payload: p });
    };
    const offered = relay.users.get('alice')?.oneTime.length ?? 0;
    const held = (await alice.store.listSecretIds('otk')).length;
    const m2 = await alice.client.send('bob', 'second');
    await alice.client.waitForStatus('bob', m2.id, 'delivered', 5000);
    const initial = relay.relayed.filter((r) => r.from === 'bob' && r.payload[0] === 1);
    expect(initial).toHaveLength(1);
    expect(parsePreKeyMessage(initial[0]!.payload).oneTimePreKeyId).toBeUndefined();
    // The relay handed one of alice's one-time prekeys out; the repair did not use it.
    expect(relay.users.get('alice')?.oneTime.length).toBe(offered - 1);
    expect((await alice.store.listSecretIds('otk')).length).toBe(held);
    expect(await texts(bob, 'alice')).toEqual(['in:first', 'in:second']);
  });
});

describe('repair under traffic', () => {
  it('both sides writing while the session is repaired: one repair, nothing lost or failed', async () => {
    const { relay, alice, bob } = await trio();
    const m0 = await alice.client.send('bob', 'a0');
    await alice.client.waitForStatus('bob', m0.id, 'delivered', 5000);
    const r0 = await bob.client.send('alice', 'b0');
    await bob.client.waitForStatus('alice', r0.id, 'delivered', 5000);
    const handle = bob.client.handleFrame.bind(bob.client);
    let damaged = false;
    bob.client.handleFrame = (f) => {
      if (f.type !== 'deliver' || damaged) return handle(f);
      damaged = true;
      const p = f.payload.slice();
      p[p.length - 5] = (p[p.length - 5] as number) ^ 1;
      return handle({ ...f, payload: p });
    };
    const before = relay.relayed.length;
    // Both write at once, without waiting: the repair happens in the middle of it.
    const sends = await Promise.all([
      ...['a1', 'a2', 'a3'].map((t) => alice.client.send('bob', t)),
      ...['b1', 'b2', 'b3'].map((t) => bob.client.send('alice', t)),
    ]);
    for (const m of sends) {
      const [from, to] = m.peer === 'bob' ? [alice, 'bob'] : [bob, 'alice'];
      await from.client.waitForStatus(to, m.id, 'delivered', 5000);
    }
    // Order of arrival: the damaged one and what followed it come with the re-send.
    expect((await texts(bob, 'alice')).filter((t) => t.startsWith('in:')).sort()).toEqual([
      'in:a0',
      'in:a1',
      'in:a2',
      'in:a3',
    ]);
    expect((await texts(alice, 'bob')).filter((t) => t.startsWith('in:')).sort()).toEqual([
      'in:b0',
      'in:b1',
      'in:b2',
      'in:b3',
    ]);
    // One handshake in all: bob's reset. No repair answered another.
    const handshakes = relay.relayed.slice(before).filter((r) => r.payload[0] === 1);
    expect(
      handshakes.filter((r) => r.from === 'bob' && r.to === 'alice').length,
    ).toBeGreaterThanOrEqual(1);
    expect(handshakes.filter((r) => r.from === 'alice').length).toBe(0);
    expect([...alice.events, ...bob.events].filter((e) => e.type === 'error')).toEqual([]);
  });
});

describe('simultaneous repairs', () => {
  it('both sides repair at once: the session of the name that sorts first wins, everything arrives', async () => {
    const { relay, alice, bob } = await trio();
    const m0 = await alice.client.send('bob', 'a0');
    await alice.client.waitForStatus('bob', m0.id, 'delivered', 5000);
    const r0 = await bob.client.send('alice', 'b0');
    await bob.client.waitForStatus('alice', r0.id, 'delivered', 5000);
    // The next payload each side gets is damaged: both start a repair.
    for (const d of [alice, bob]) {
      const handle = d.client.handleFrame.bind(d.client);
      let damaged = false;
      d.client.handleFrame = (f) => {
        if (f.type !== 'deliver' || damaged) return handle(f);
        damaged = true;
        const p = f.payload.slice();
        p[p.length - 5] = (p[p.length - 5] as number) ^ 1;
        return handle({ ...f, payload: p });
      };
    }
    const before = relay.relayed.length;
    const [a1, b1] = await Promise.all([
      alice.client.send('bob', 'a1'),
      bob.client.send('alice', 'b1'),
    ]);
    await alice.client.waitForStatus('bob', a1.id, 'delivered', 5000);
    await bob.client.waitForStatus('alice', b1.id, 'delivered', 5000);
    expect(await texts(bob, 'alice')).toEqual(['in:a0', 'out:b0', 'out:b1', 'in:a1']);
    expect(await texts(alice, 'bob')).toEqual(['out:a0', 'in:b0', 'out:a1', 'in:b1']);
    // Both repaired; after that the two sides share one session, so messages flow
    // without another handshake.
    const handshakes = (): number =>
      relay.relayed.slice(before).filter((r) => r.payload[0] === 1).length;
    const settled = handshakes();
    expect(settled).toBeGreaterThanOrEqual(2);
    const a2 = await alice.client.send('bob', 'a2');
    await alice.client.waitForStatus('bob', a2.id, 'delivered', 5000);
    const b2 = await bob.client.send('alice', 'b2');
    await bob.client.waitForStatus('alice', b2.id, 'delivered', 5000);
    await settle(alice, bob);
    expect([...alice.events, ...bob.events].filter((e) => e.type === 'error')).toEqual([]);
    expect(
      [...(await alice.client.messages('bob')), ...(await bob.client.messages('alice'))]
        .filter((m) => m.direction === 'out')
        .map((m) => m.status),
    ).toEqual(['delivered', 'delivered', 'delivered', 'delivered', 'delivered', 'delivered']);
  });
});

describe('dedupe on what the sender authenticated', () => {
  it('a relay that gives two messages the same server id does not make the second one vanish', async () => {
    const { alice, bob } = await trio();
    const handle = bob.client.handleFrame.bind(bob.client);
    bob.client.handleFrame = (f) =>
      handle(f.type === 'deliver' ? { ...f, serverMessageId: 4242 } : f);
    const m1 = await alice.client.send('bob', 'one');
    await alice.client.waitForStatus('bob', m1.id, 'delivered', 5000);
    const m2 = await alice.client.send('bob', 'two');
    await alice.client.waitForStatus('bob', m2.id, 'delivered', 5000);
    expect(await texts(bob, 'alice')).toEqual(['in:one', 'in:two']);
  });
});

describe('repair bounds', () => {
  it('a peer that never decrypts cannot drive a loop: bounded resets, the message ends failed with a reason', async () => {
    const relay = new FakeRelay();
    const [as, bs] = [new MemoryStore(), new MemoryStore()];
    await makeAccount(as, 'alice');
    await makeAccount(bs, 'bob');
    const alice = await device(relay, 'alice', as);
    // No waiting between repairs, so the bounds are what stops it.
    const bob = await device(relay, 'bob', bs, undefined, { repairPolicy: { retryAfterMs: 0 } });
    await online(relay, bob);
    await online(relay, alice);
    // Bob's device is broken: every payload it receives is corrupted before decryption.
    const handle = bob.client.handleFrame.bind(bob.client);
    bob.client.handleFrame = (f) => {
      if (f.type !== 'deliver') return handle(f);
      const p = f.payload.slice();
      p[p.length - 5] = (p[p.length - 5] as number) ^ 1;
      return handle({ ...f, payload: p });
    };
    const m = await alice.client.send('bob', 'never readable');
    await expect(
      alice.client.waitForStatus('bob', m.id, 'delivered', 10_000),
    ).rejects.toMatchObject({ code: 'UNDELIVERABLE' });
    expect(await statusOf(alice, 'bob', m.id)).toBe('failed');
    expect((await alice.client.sendFailure('bob', m.id))?.reason).toMatch(
      /bob could not decrypt it after 2 repairs/,
    );
    // Quiet afterwards: count what each side relayed, wait a round trip, count again.
    await settle(alice, bob);
    const count = relay.relayed.length;
    await settle(alice, bob);
    await settle(alice, bob);
    expect(relay.relayed.length).toBe(count);
    // Bob sent at most MAX_REPAIRS_PER_PEER resets; alice sent the message at most
    // 1 + MAX_RESENDS_PER_MESSAGE times.
    expect(relay.relayed.filter((r) => r.from === 'bob').length).toBeLessThanOrEqual(
      MAX_REPAIRS_PER_PEER,
    );
    expect(relay.relayed.filter((r) => r.from === 'alice').length).toBe(
      1 + MAX_RESENDS_PER_MESSAGE,
    );
    expect(alice.events.some((e) => e.type === 'error' && e.error.code === 'UNDELIVERABLE')).toBe(
      true,
    );
    // A later message is not re-sent in a loop either: bob is at his bound.
    const m2 = await alice.client.send('bob', 'also unreadable');
    await alice.client.waitForStatus('bob', m2.id, 'on-device', 5000);
    await settle(alice, bob);
    await settle(alice, bob);
    expect(await statusOf(alice, 'bob', m2.id)).toBe('on-device');
    expect(relay.relayed.filter((r) => r.from === 'bob').length).toBeLessThanOrEqual(
      MAX_REPAIRS_PER_PEER,
    );
    expect(bob.events.some((e) => e.type === 'error' && /repair limit/.test(e.error.message))).toBe(
      true,
    );
  });
});
