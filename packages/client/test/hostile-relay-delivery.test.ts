/**
 * M41, the attacks on delivery status (issue 9 §1): a hostile relay (hostile-relay.ts)
 * in front of a genuine relay, between real clients. The rule under test: the sender
 * shows "delivered" only for a message the recipient has read — only an end-to-end
 * receipt from the recipient's client may say so; whatever the relay says is
 * "on-device" at most — and the relay cannot make the recipient discard a genuine
 * message by reusing a relay-assigned id.
 *
 * These cases need end-to-end receipts and dedupe on authenticated ids; on a client
 * that takes the relay's word for "delivered" (or dedupes on `serverMessageId`) they fail.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '@parley/crypto';
import type { ServerFrame } from '@parley/wire';
import { until } from './e2e-helpers.js';
import {
  deliverOf,
  passThrough,
  sendOf,
  startBehindHostileRelay,
  trap,
  type Victim,
} from './hostile-relay.js';

const root = mkdtempSync(join(tmpdir(), 'parley-hostile-delivery-'));
let setup: Awaited<ReturnType<typeof startBehindHostileRelay>>;
let alice: Victim;
let bob: Victim;
let carol: Victim;

beforeAll(async () => {
  setup = await startBehindHostileRelay(root, ['alice', 'bob', 'carol']);
  bob = await setup.connect('bob');
  carol = await setup.connect('carol');
  alice = await setup.connect('alice');
  // A session both ways first, so each attack hits an established conversation.
  setup.hostile.policy = passThrough;
  await readByBob('hello bob');
  const r = await bob.c.client.send('alice', 'hello alice');
  await until(async () => (await inIds(alice, 'bob')).has(r.id), 'alice reads the hello');
}, 120_000);

afterAll(async () => {
  await setup?.close();
  rmSync(root, { recursive: true, force: true });
});

const inIds = async (v: Victim, peer: string): Promise<Set<string>> =>
  new Set((await v.c.client.messages(peer)).filter((m) => m.direction === 'in').map((m) => m.id));
const statusOf = async (v: Victim, peer: string, id: string): Promise<string | undefined> =>
  (await v.c.client.messages(peer)).find((m) => m.id === id)?.status;

/** Alice writes `text`; the relay is honest; it is read by bob and ends "delivered" at alice. */
async function readByBob(text: string): Promise<string> {
  const m = await alice.c.client.send('bob', text);
  await until(async () => (await inIds(bob, 'alice')).has(m.id), `bob reads "${text}"`);
  await alice.c.client.waitForStatus('bob', m.id, 'delivered', 20_000);
  return m.id;
}

/** Where a test starts: alice's messages and events before it are another test's business. */
interface Mark {
  readonly ids: ReadonlySet<string>;
  readonly events: number;
}
const mark = async (): Promise<Mark> => ({
  ids: new Set((await alice.c.client.messages()).map((m) => m.id)),
  events: alice.events.length,
});

/**
 * The promise behind ✓✓: every message alice saw as "delivered" to `peer` since `from`
 * (stored status or any status event) is one `peer` has read.
 */
async function deliveredMeansRead(peer: Victim, from: Mark): Promise<void> {
  const read = await inIds(peer, 'alice');
  const claimed = new Set<string>();
  for (const m of await alice.c.client.messages(peer.name))
    if (m.direction === 'out' && m.status === 'delivered' && !from.ids.has(m.id)) claimed.add(m.id);
  for (const e of alice.events.slice(from.events))
    if (e.type === 'status' && e.peer === peer.name && e.status === 'delivered') claimed.add(e.id);
  for (const id of claimed) expect(read.has(id), `alice shows ${id} delivered`).toBe(true);
}

/** The relay's word, at most: never "delivered" for a message the recipient does not have. */
const RELAY_STATUSES = ['sending', 'queued', 'on-device'];

describe('a hostile relay cannot fake delivery (M41, issue 9 §1)', () => {
  it('a relabelled serverMessageId does not make the recipient discard the later genuine message with that id', async () => {
    const start = await mark();
    let held: Extract<ServerFrame, { type: 'deliver' }> | undefined;
    let stolenId: number | undefined;
    let acksToFix = 0;
    setup.hostile.policy = (x) => {
      if (x.leg === 'up' && x.name === 'bob' && x.frame.type === 'ack' && held && acksToFix > 0) {
        // Bob acks the relabelled first message under the second's id: the relay is told
        // the real id, so it stays consistent and deletes each message once.
        if (x.frame.serverMessageId === stolenId) {
          acksToFix--;
          return [{ ...x.frame, serverMessageId: held.serverMessageId }];
        }
        return undefined;
      }
      const d = deliverOf(x, 'bob', 'alice');
      if (!d) return undefined;
      if (held === undefined) {
        held = d;
        return [];
      }
      if (stolenId !== undefined) return undefined;
      stolenId = d.serverMessageId;
      acksToFix = 1;
      // First the earlier message under the later one's id, then the later one itself.
      return [{ ...held, serverMessageId: d.serverMessageId }, d];
    };
    const first = await alice.c.client.send('bob', 'first, relabelled');
    const second = await alice.c.client.send('bob', 'second, with its genuine id');
    await until(async () => (await inIds(bob, 'alice')).has(first.id), 'bob reads the first');
    await until(
      async () => (await inIds(bob, 'alice')).has(second.id),
      'bob reads the second despite the reused id',
      15_000,
    );
    setup.hostile.policy = passThrough;
    await readByBob('after the relabelling');
    await deliveredMeansRead(bob, start);
  });

  it('a swallowed send answered with forged relay receipts never shows "delivered"', async () => {
    const start = await mark();
    let swallowed: string | undefined;
    setup.hostile.policy = (x) => {
      const s = sendOf(x, 'alice', 'bob');
      if (!s) return undefined;
      const id = toHex(s.clientMessageId);
      swallowed ??= id;
      if (id !== swallowed) return undefined;
      const receipt = {
        type: 'receipt',
        clientMessageId: s.clientMessageId,
        serverMessageId: 5_000_000,
        timestamp: Date.now(),
      } as const;
      setup.hostile.inject('alice', 'down', { ...receipt, status: 'queued' });
      setup.hostile.inject('alice', 'down', { ...receipt, status: 'delivered' });
      return []; // the genuine relay never sees it, also when alice sends it again
    };
    const lost = await alice.c.client.send('bob', 'swallowed by the relay');
    await until(() => swallowed === lost.id, 'the relay swallowed it');
    // Ordered after the forged receipts on alice's connection, and read by bob.
    await readByBob('after the swallowed one');
    expect((await inIds(bob, 'alice')).has(lost.id)).toBe(false);
    expect(RELAY_STATUSES).toContain(await statusOf(alice, 'bob', lost.id));
    await deliveredMeansRead(bob, start);
  });

  it('a forged kept receipt ("receipt.stored" delivered) after a reconnect never shows "delivered"', async () => {
    const start = await mark();
    let swallowed: Uint8Array | undefined;
    // Swallowed on every (re)send, so no genuine receipt ever comes; on alice's next
    // connection the relay pretends it kept a "delivered" for her.
    setup.hostile.policy = (x) => {
      if (x.leg === 'down' && x.name === 'alice' && x.frame.type === 'welcome' && swallowed) {
        return [
          x.frame,
          {
            type: 'receipt.stored',
            clientMessageId: swallowed,
            status: 'delivered',
            serverMessageId: 5_000_001,
            timestamp: Date.now(),
          },
        ];
      }
      const s = sendOf(x, 'alice', 'bob');
      if (!s) return undefined;
      swallowed ??= s.clientMessageId;
      return toHex(s.clientMessageId) === toHex(swallowed) ? [] : undefined;
    };
    const lost = await alice.c.client.send('bob', 'swallowed, then "kept" as delivered');
    await until(() => swallowed !== undefined, 'the relay swallowed it');
    alice.c.transport.dropConnection();
    await until(() => !alice.c.client.isReady, 'alice disconnected');
    await until(() => alice.c.client.isReady && alice.c.client.mailboxDrained, 'alice back');
    await readByBob('after the forged kept receipt');
    expect((await inIds(bob, 'alice')).has(lost.id)).toBe(false);
    expect(RELAY_STATUSES).toContain(await statusOf(alice, 'bob', lost.id));
    await deliveredMeansRead(bob, start);
  });

  it('a delivery the relay swallows and acks itself (the genuine relay then reports it delivered) never shows "delivered"', async () => {
    const start = await mark();
    const t = trap(
      (x) => deliverOf(x, 'bob', 'alice') !== undefined,
      (x) => {
        const d = x.frame as Extract<ServerFrame, { type: 'deliver' }>;
        setup.hostile.inject('bob', 'up', { type: 'ack', serverMessageId: d.serverMessageId });
        return [];
      },
    );
    setup.hostile.policy = t.policy;
    const lost = await alice.c.client.send('bob', 'acked by the relay, never seen');
    await until(() => t.hits === 1, 'the relay swallowed it');
    setup.hostile.policy = passThrough;
    await readByBob('after the self-acked one');
    expect((await inIds(bob, 'alice')).has(lost.id)).toBe(false);
    expect(RELAY_STATUSES).toContain(await statusOf(alice, 'bob', lost.id));
    await deliveredMeansRead(bob, start);
  });

  it('a bit-flipped delivery the recipient cannot read never shows "delivered"', async () => {
    const start = await mark();
    let tampered: number | undefined;
    const t = trap(
      (x) => deliverOf(x, 'bob', 'alice') !== undefined,
      (x) => {
        const d = x.frame as Extract<ServerFrame, { type: 'deliver' }>;
        tampered = d.serverMessageId;
        const payload = d.payload.slice();
        payload[payload.length >> 1] = (payload[payload.length >> 1] as number) ^ 0x80;
        return [{ ...d, payload }];
      },
    );
    setup.hostile.policy = t.policy;
    await alice.c.client.send('bob', 'flipped on the way');
    await until(
      () => tampered !== undefined && setup.hostile.acked('bob', tampered),
      'bob dealt with it',
    );
    setup.hostile.policy = passThrough;
    await readByBob('after the flipped one');
    await deliveredMeansRead(bob, start);
  });

  it('a send re-addressed to another recipient never shows "delivered" to the intended one', async () => {
    const start = await mark();
    const t = trap(
      (x) => sendOf(x, 'alice', 'bob') !== undefined,
      (x) => {
        const f = x.frame as Extract<typeof x.frame, { type: 'send' }>;
        return [{ ...f, to: { name: 'carol', deviceId: 1 } }];
      },
    );
    setup.hostile.policy = t.policy;
    const before = setup.hostile.deliveries('carol', 'alice').length;
    const lost = await alice.c.client.send('bob', 'for bob, routed to carol');
    await until(() => {
      const d = setup.hostile.deliveries('carol', 'alice')[before];
      return d !== undefined && setup.hostile.acked('carol', d.serverMessageId);
    }, 'carol dealt with it');
    setup.hostile.policy = passThrough;
    expect((await inIds(carol, 'alice')).has(lost.id)).toBe(false);
    await readByBob('after the re-addressed one');
    expect((await inIds(bob, 'alice')).has(lost.id)).toBe(false);
    await deliveredMeansRead(bob, start);
  });
});
