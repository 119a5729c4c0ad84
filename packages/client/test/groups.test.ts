/**
 * Groups in the client core against the in-process relay: membership changes and
 * sender keys over pairwise sessions, one upload per group message, per-member
 * receipts, and the "no unable to decrypt" rules under loss, duplication and
 * reordering of every path (changes, distributions, messages, receipts).
 */
import { describe, expect, it } from 'vitest';
import { createSeededRandom } from '@parley/crypto';
import { MemoryStore, groupConversationId } from '@parley/client';
import type { StoredMessage, Timers } from '@parley/client';
import { FakeRelay } from './fake-relay.js';
import { device, makeAccount, online } from './harness.js';
import type { Device } from './harness.js';

/**
 * Time runs 20× faster for the clients of the fault test: a 30 s resync is 1.5 s of
 * test, and a 15 s request bound still 0.75 s on a loaded machine.
 */
const SCALE = 20;
const start = Date.now();
const clock = (): number => start + (Date.now() - start) * SCALE;
const timers: Timers = {
  set: (fn, ms) => setTimeout(fn, ms / SCALE),
  clear: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** Polls `cond` for at most `ms` of real time. */
async function waitFor(cond: () => Promise<boolean>, what: string, ms = 40_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function members(
  relay: FakeRelay,
  names: readonly string[],
  fast = false,
): Promise<Device[]> {
  const out: Device[] = [];
  for (const n of names) {
    const store = new MemoryStore();
    await makeAccount(store, n);
    const d = fast
      ? await device(relay, n, store, clock, { timers })
      : await device(relay, n, store);
    await online(relay, d);
    out.push(d);
  }
  return out;
}

const groupOf = async (d: Device, name: string) =>
  (await d.client.groupList()).find((g) => g.name === name);

async function incoming(d: Device, conversation: string): Promise<StoredMessage[]> {
  return (await d.client.messages(conversation)).filter((m) => m.direction === 'in');
}

describe('groups (client core, in-process relay)', () => {
  it('creates a group, sends one upload per message, and counts receipts k of n', async () => {
    const relay = new FakeRelay();
    const [alice, bob, carol] = await members(relay, ['alice', 'bob', 'carol']);
    const g = await alice!.client.createGroup('team', ['bob', 'carol']);
    expect(g.members.map((m) => `${m.name}:${m.role}`)).toEqual([
      'alice:admin',
      'bob:member',
      'carol:member',
    ]);
    for (const d of [bob!, carol!])
      await waitFor(
        async () => (await groupOf(d, 'team'))?.members.length === 3,
        `${d.name} joined`,
      );
    const before = relay.groupUploads;
    const sent = await alice!.client.sendToGroup('team', 'hello team');
    expect(relay.groupUploads).toBe(before + 1);
    const conv = groupConversationId(g.id);
    for (const d of [bob!, carol!]) {
      await waitFor(async () => (await incoming(d, conv)).length === 1, `${d.name} got it`);
      const [m] = await incoming(d, conv);
      expect(m).toMatchObject({ text: 'hello team', from: 'alice', id: sent.id });
    }
    await waitFor(
      async () => (await alice!.store.getMessage(conv, 'out', sent.id))?.status === 'delivered',
      'delivered to 2 of 2',
    );
    const done = await alice!.store.getMessage(conv, 'out', sent.id);
    expect(done?.groupDelivery?.of).toBe(2);
    expect([...(done?.groupDelivery?.by ?? [])].sort()).toEqual(['bob', 'carol']);
    // Nothing the relay held was the plaintext.
    const needle = new TextEncoder().encode('hello team');
    expect(relay.seenPayloads.some((p) => Buffer.from(p).includes(Buffer.from(needle)))).toBe(
      false,
    );
    for (const d of [alice!, bob!, carol!]) await d.client.close();
  });

  it('refuses changes by a non-admin and unknown groups or members, with clear errors', async () => {
    const relay = new FakeRelay();
    const [alice, bob] = await members(relay, ['alice', 'bob']);
    await alice!.client.createGroup('team', ['bob']);
    await waitFor(async () => (await groupOf(bob!, 'team')) !== undefined, 'bob has the group');
    await expect(bob!.client.removeFromGroup('team', ['alice'])).rejects.toMatchObject({
      code: 'NOT_AUTHORIZED',
    });
    await expect(alice!.client.sendToGroup('nope', 'x')).rejects.toThrow(/unknown group nope/);
    await expect(alice!.client.addToGroup('team', ['zed'])).rejects.toThrow(/unknown member zed/);
    await expect(alice!.client.removeFromGroup('team', ['zed'])).rejects.toThrow(
      /zed is not a member/,
    );
    for (const d of [alice!, bob!]) await d.client.close();
  });

  it('under loss, duplication and reordering every message is read exactly once, and a removed member reads nothing after', async () => {
    const relay = new FakeRelay();
    const names = ['alice', 'bob', 'carol', 'dave'];
    const ds = await members(relay, names, true);
    const [alice, bob, carol, dave] = ds as [Device, Device, Device, Device];
    const rand = createSeededRandom(new Uint8Array(32).fill(7));
    let faults = true;
    relay.fault = ({ kind }) => {
      if (!faults) return 'ok';
      const r = rand(1)[0]! / 256;
      // A stored group copy is never lost (the relay said `queued`); a pairwise copy may be.
      if (r < 0.15 && kind !== 'group') return 'drop';
      if (r < 0.3) return 'dup';
      if (r < 0.45) return 'hold';
      return 'ok';
    };
    const g = await alice.client.createGroup('team', ['bob', 'carol', 'dave']);
    const conv = groupConversationId(g.id);
    const release = setInterval(() => relay.releaseHeld(), 20);
    try {
      const sent = new Map<string, string>();
      const senders = [alice, bob, carol, dave];
      for (const d of senders.slice(1))
        await waitFor(async () => (await groupOf(d, 'team')) !== undefined, `${d.name} has team`);
      for (let round = 0; round < 3; round++) {
        for (const d of senders) {
          const m = await d.client.sendToGroup('team', `${d.name} ${round}`);
          sent.set(m.id, d.name);
        }
      }
      // Each member reads every other member's messages once, in spite of the faults.
      for (const d of senders) {
        const expected = [...sent].filter(([, from]) => from !== d.name).map(([id]) => id);
        await waitFor(async () => {
          relay.releaseHeld();
          return (await incoming(d, conv)).length >= expected.length;
        }, `${d.name} read all`);
        const got = await incoming(d, conv);
        expect(got.map((m) => m.id).sort()).toEqual(expected.sort());
        for (const m of got) expect(m.from).toBe(sent.get(m.id));
      }
      // Remove dave: what is sent after it never reaches dave's store.
      await alice.client.removeFromGroup('team', ['dave']);
      await waitFor(
        async () => (await groupOf(dave, 'team'))?.status === 'removed',
        'dave removed',
      );
      for (const d of [bob, carol])
        await waitFor(
          async () => (await groupOf(d, 'team'))?.members.length === 3,
          `${d.name} saw it`,
        );
      const after: string[] = [];
      for (const d of [alice, bob, carol]) {
        const m = await d.client.sendToGroup('team', `after removal from ${d.name}`);
        after.push(m.id);
        sent.set(m.id, d.name);
      }
      for (const d of [alice, bob, carol]) {
        const expected = [...sent].filter(([, from]) => from !== d.name).map(([id]) => id);
        await waitFor(async () => {
          relay.releaseHeld();
          return (await incoming(d, conv)).length >= expected.length;
        }, `${d.name} read the later ones`);
        expect((await incoming(d, conv)).map((m) => m.id).sort()).toEqual(expected.sort());
      }
      faults = false;
      relay.releaseHeld();
      const daveTexts = (await dave.client.messages(conv)).map((m) => m.text);
      for (const d of [alice, bob, carol])
        expect(daveTexts).not.toContain(`after removal from ${d.name}`);
      // A message becomes delivered once all current recipients (not dave) receipted it.
      // Sent with the faults off: a group receipt the relay loses after `queued` is not
      // sent again (docs/client.md), so one sent under the faults may stay at 1 of 2.
      const last = await alice.client.sendToGroup('team', 'after the faults');
      await waitFor(async () => {
        const m = await alice.store.getMessage(conv, 'out', last.id);
        return m?.status === 'delivered';
      }, 'alice delivered to 2 of 2 after removal');
      const m = await alice.store.getMessage(conv, 'out', last.id);
      expect(m?.groupDelivery?.of).toBe(2);
      expect([...(m?.groupDelivery?.by ?? [])].sort()).toEqual(['bob', 'carol']);
    } finally {
      clearInterval(release);
      for (const d of ds) await d.client.close();
    }
  }, 150_000);

  it('a member offline while the group is made and used catches up in order', async () => {
    const relay = new FakeRelay();
    const [alice, bob, carol] = await members(relay, ['alice', 'bob', 'carol']);
    relay.users.get('carol')!.conn?.close();
    const g = await alice!.client.createGroup('team', ['bob', 'carol']);
    await waitFor(async () => (await groupOf(bob!, 'team')) !== undefined, 'bob has team');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await alice!.client.sendToGroup('team', `m${i}`)).id);
    ids.push((await bob!.client.sendToGroup('team', 'from bob')).id);
    await online(relay, carol!);
    const conv = groupConversationId(g.id);
    await waitFor(async () => (await incoming(carol!, conv)).length === 6, 'carol caught up');
    expect((await incoming(carol!, conv)).map((m) => m.text)).toEqual([
      'm0',
      'm1',
      'm2',
      'm3',
      'm4',
      'from bob',
    ]);
    for (const d of [alice!, bob!, carol!]) await d.client.close();
  });

  it('drops a forged or altered group message and replayed copies, and the group reads on', async () => {
    const relay = new FakeRelay();
    const [alice, bob] = await members(relay, ['alice', 'bob']);
    const g = await alice!.client.createGroup('team', ['bob']);
    const conv = groupConversationId(g.id);
    await waitFor(async () => (await groupOf(bob!, 'team')) !== undefined, 'bob has team');
    await alice!.client.sendToGroup('team', 'first');
    await waitFor(async () => (await incoming(bob!, conv)).length === 1, 'bob read first');
    const copy = relay.delivered.get('bob')!.find((f) => f.kind === 'group')!;
    const altered = copy.payload.slice();
    altered[altered.length - 100]! ^= 1;
    const inject = (payload: Uint8Array, serverMessageId: number) =>
      bob!.client.handleFrame({ ...copy, serverMessageId, payload });
    await inject(altered, 900_001);
    // The same authentic bytes again (a relay replay under a new server id).
    await inject(copy.payload, 900_002);
    await waitFor(
      async () =>
        bob!.events.some((e) => e.type === 'error' && /did not authenticate/.test(e.error.message)),
      'bob reported the altered one',
    );
    await alice!.client.sendToGroup('team', 'second');
    await waitFor(async () => (await incoming(bob!, conv)).length === 2, 'bob read second');
    expect((await incoming(bob!, conv)).map((m) => m.text)).toEqual(['first', 'second']);
    for (const d of [alice!, bob!]) await d.client.close();
  });

  it('joins a shared room: the first creates it, the next is added by its admin', async () => {
    const relay = new FakeRelay();
    const [alice, bob] = await members(relay, ['alice', 'bob']);
    const first = await alice!.client.joinRoom('lobby');
    expect(first.room).toBe(true);
    expect(first.members.map((m) => m.name)).toEqual(['alice']);
    const joined = await bob!.client.joinRoom('lobby');
    expect(joined.id).toBe(first.id);
    await waitFor(
      async () => (await groupOf(alice!, 'lobby'))?.members.length === 2,
      'alice added bob',
    );
    await bob!.client.sendToGroup('lobby', 'hi room');
    await waitFor(
      async () => (await incoming(alice!, groupConversationId(first.id))).length === 1,
      'alice read the room',
    );
    for (const d of [alice!, bob!]) await d.client.close();
  });
});
