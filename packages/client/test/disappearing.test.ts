/**
 * Disappearing messages in the core, on injected time: the timer set by one side reaches
 * the other inside the session, each message carries the timer it was written under,
 * and both sides delete it when its time is up, including a client that was closed
 * then (it sweeps when it starts).
 */
import { describe, expect, it } from 'vitest';
import { MemoryStore, decodeEnvelope, encodeEnvelope } from '@parley/client';
import type { Timers } from '@parley/client';
import { device, makeAccount, online, until } from './harness.js';
import { FakeRelay } from './fake-relay.js';

const FIVE_MIN = 5 * 60_000;

class ManualTimers implements Timers {
  now = 7_000_000;
  private next = 1;
  private readonly due = new Map<number, { at: number; fn: () => void }>();
  set(fn: () => void, delayMs: number): number {
    const id = this.next++;
    this.due.set(id, { at: this.now + delayMs, fn });
    return id;
  }
  clear(handle: unknown): void {
    this.due.delete(handle as number);
  }
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      const first = [...this.due].sort((a, b) => a[1].at - b[1].at)[0];
      if (first === undefined || first[1].at > end) break;
      this.due.delete(first[0]);
      this.now = first[1].at;
      first[1].fn();
    }
    this.now = end;
  }
}

describe('disappearing messages', () => {
  it('both sides delete at expiry, also the side that was closed at the time', async () => {
    const time = new ManualTimers();
    const clock = (): number => time.now;
    const relay = new FakeRelay();
    const as = new MemoryStore();
    const bs = new MemoryStore();
    await makeAccount(as, 'alice');
    await makeAccount(bs, 'bob');
    const alice = await device(relay, 'alice', as, clock, { timers: time });
    let bob = await device(relay, 'bob', bs, clock, { timers: time });
    await online(relay, bob);
    await until(() => (relay.users.get('bob')?.oneTime.length ?? 0) > 0, 'bob prekeys');
    await online(relay, alice);

    await alice.client.send('bob', 'kept-before-timer');
    const event = await alice.client.setTimer('bob', FIVE_MIN);
    expect(event).toMatchObject({ timerMs: FIVE_MIN, text: '' });
    expect(await alice.client.timer('bob')).toBe(FIVE_MIN);
    await until(
      async () => (await bob.client.timer('alice')) === FIVE_MIN,
      'bob applies the timer',
    );
    const m = await alice.client.send('bob', 'zebra-vanishing-7731');
    expect(m.expiresAt).toBe(time.now + FIVE_MIN);
    await until(
      async () => (await bob.store.getMessage('alice', 'in', m.id)) !== undefined,
      'bob has it',
    );
    expect((await bob.store.getMessage('alice', 'in', m.id))?.expiresAt).toBe(time.now + FIVE_MIN);
    // Bob's own reply is timed by the conversation's timer too.
    const reply = await bob.client.send('alice', 'bob-reply-vanishing');
    expect(reply.expiresAt).toBe(time.now + FIVE_MIN);
    await until(
      async () => (await alice.store.getMessage('bob', 'in', reply.id)) !== undefined,
      'alice has the reply',
    );

    // Bob closes the app before the expiry.
    relay.users.get('bob')?.conn?.close();
    await bob.client.close();

    time.advance(FIVE_MIN - 1);
    await new Promise((r) => setImmediate(r));
    expect(await alice.store.getMessage('bob', 'out', m.id)).toBeDefined();
    time.advance(1);
    await until(
      () => alice.events.some((e) => e.type === 'expired' && e.ids.includes(m.id)),
      'alice expires it',
    );
    const left = (await alice.client.messages('bob')).map((x) => x.text);
    expect(left).toEqual(['kept-before-timer', '']);
    expect(left.join()).not.toContain('vanishing');

    // Bob reopens after the expiry: the sweep at start deletes both before anything shows.
    expect(await bs.getMessage('alice', 'in', m.id)).toBeDefined();
    bob = await device(relay, 'bob', bs, clock, { timers: time });
    await until(async () => (await bs.getMessage('alice', 'in', m.id)) === undefined, 'bob sweep');
    await until(async () => (await bs.getMessage('alice', 'out', reply.id)) === undefined, 'reply');
    const bobLeft = await bob.client.messages('alice');
    expect(bobLeft.map((x) => x.text)).toEqual(['kept-before-timer', '']);
    expect(bobLeft[1]).toMatchObject({ direction: 'in', timerMs: FIVE_MIN });

    // Off again: a later message carries no expiry on either side.
    await online(relay, bob);
    await bob.client.setTimer('alice', 0);
    await until(async () => (await alice.client.timer('bob')) === 0, 'alice applies off');
    const later = await alice.client.send('bob', 'stays');
    expect(later.expiresAt).toBeUndefined();
    await until(
      async () => (await bs.getMessage('alice', 'in', later.id)) !== undefined,
      'bob has it',
    );
    expect((await bs.getMessage('alice', 'in', later.id))?.expiresAt).toBeUndefined();
    await alice.client.close();
    await bob.client.close();
  });

  it('the envelope carries ttl byte for byte as documented and refuses values outside the set', () => {
    const id = 'ab'.repeat(16);
    const enc = (o: object): Uint8Array => new TextEncoder().encode(JSON.stringify(o));
    expect(
      new TextDecoder().decode(encodeEnvelope({ kind: 'timer', id, sentAt: 5, ttlMs: 3_600_000 })),
    ).toBe(`{"v":1,"t":"timer","id":"${id}","at":5,"ttl":3600000}`);
    expect(
      new TextDecoder().decode(
        encodeEnvelope({ kind: 'msg', id, sentAt: 5, body: 'hi', ttlMs: 300_000 }),
      ),
    ).toBe(`{"v":1,"t":"msg","id":"${id}","at":5,"body":"hi","ttl":300000}`);
    expect(decodeEnvelope(enc({ v: 1, t: 'timer', id, at: 5, ttl: 0 }))).toMatchObject({
      ttlMs: 0,
    });
    // An attachment written under a timer carries it the same way.
    const file = {
      blob: 'cd'.repeat(16),
      key: 'ef'.repeat(32),
      sha256: '01'.repeat(32),
      size: 10,
      padded: 65536,
      chunks: 17,
      chunkBytes: 4057,
      name: 'a.txt',
      type: 'text/plain',
    };
    const f = decodeEnvelope(
      encodeEnvelope({ kind: 'file', id, sentAt: 5, file, ttlMs: 86_400_000 }),
    );
    expect(f).toMatchObject({ kind: 'file', ttlMs: 86_400_000 });
    expect(() => decodeEnvelope(enc({ v: 1, t: 'file', id, at: 5, file, ttl: 7 }))).toThrow(
      expect.objectContaining({ code: 'PROTOCOL' }),
    );
    for (const bad of [
      { v: 1, t: 'timer', id, at: 5, ttl: 1234 },
      { v: 1, t: 'timer', id, at: 5 },
      { v: 1, t: 'msg', id, at: 5, body: 'x', ttl: 0 },
      { v: 1, t: 'msg', id, at: 5, body: 'x', ttl: '300000' },
      { v: 1, t: 'end', id, at: 5, body: '', ttl: 300_000 },
    ])
      expect(() => decodeEnvelope(enc(bad))).toThrow(expect.objectContaining({ code: 'PROTOCOL' }));
  });

  it('refuses a timer outside the fixed set and stores nothing', async () => {
    const relay = new FakeRelay();
    const as = new MemoryStore();
    await makeAccount(as, 'alice');
    const alice = await device(relay, 'alice', as);
    await expect(alice.client.setTimer('bob', 1234)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect(await as.listMessages()).toEqual([]);
    await alice.client.close();
  });
});
