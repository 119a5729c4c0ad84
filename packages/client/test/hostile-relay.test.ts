/**
 * M41, what the clients already withstand: real clients (SQLCipher profiles, TLS 1.3
 * mtls) talk through a hostile relay (hostile-relay.ts) in front of a genuine relay.
 * It flips bits, replays, reorders, drops, re-addresses and forges deliveries,
 * substitutes keys and forges receipts for messages that do not exist. For each
 * attack the recipient shows nothing that its sender did not write, and nothing twice;
 * what cannot be read is refused (the client has dealt with it: acknowledged to the
 * relay, stored nothing), and told to the user as an error or, where the session is
 * repaired automatically, mended so the genuine text arrives; the conversation goes on.
 *
 * What the sender's status says under these attacks depends on end-to-end receipts:
 * hostile-relay-delivery.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerFrame } from '@parley/wire';
import { crypto, until } from './e2e-helpers.js';
import {
  deliverOf,
  impostorIdentity,
  passThrough,
  sendOf,
  startBehindHostileRelay,
  substitutedBundle,
  trap,
  type Victim,
} from './hostile-relay.js';

const root = mkdtempSync(join(tmpdir(), 'parley-hostile-'));
let setup: Awaited<ReturnType<typeof startBehindHostileRelay>>;
let alice: Victim;
let bob: Victim;
let carol: Victim;
/** Nobody writes to dave before the key-substitution case: his first contact is the attack. */
let dave: Victim;
/** Every text alice genuinely wrote to bob. */
const written: string[] = [];

beforeAll(async () => {
  setup = await startBehindHostileRelay(root, ['alice', 'bob', 'carol', 'dave']);
  bob = await setup.connect('bob');
  carol = await setup.connect('carol');
  dave = await setup.connect('dave');
  alice = await setup.connect('alice');
}, 120_000);

afterAll(async () => {
  await setup?.close();
  rmSync(root, { recursive: true, force: true });
});

const incoming = async (v: Victim, peer: string): Promise<string[]> =>
  (await v.c.client.messages(peer)).filter((m) => m.direction === 'in').map((m) => m.text);
/**
 * What the user is told about a message that could not be read: an error, or (with
 * automatic session repair) the "secured again" note once the session is repaired.
 */
const noticed = (v: Victim): number =>
  v.events.filter((e) => e.type === 'error' || (e.type as string) === 'session-repaired').length;

/** Alice writes `text` to bob (recorded as genuine) and returns its id. */
async function aliceWrites(text: string): Promise<string> {
  written.push(text);
  return (await alice.c.client.send('bob', text)).id;
}

/** The relay is honest again; alice's next message reaches bob, is read, and shows delivered. */
async function conversationGoesOn(tag: string): Promise<void> {
  setup.hostile.policy = passThrough;
  const text = `after ${tag}`;
  const id = await aliceWrites(text);
  await until(async () => (await incoming(bob, 'alice')).includes(text), `bob reads "${text}"`);
  await alice.c.client.waitForStatus('bob', id, 'delivered', 20_000);
}

/** Bob shows only what alice wrote, each text at most once, and never a message from carol. */
async function nothingFabricated(): Promise<void> {
  const shown = await incoming(bob, 'alice');
  for (const t of shown) expect(written).toContain(t);
  expect(new Set(shown).size).toBe(shown.length);
  expect(await incoming(bob, 'carol')).toEqual([]);
}

const flip = (payload: Uint8Array, at: number): Uint8Array => {
  const out = payload.slice();
  out[at] = (out[at] as number) ^ 0x01;
  return out;
};

describe('a hostile relay between two real clients (M41)', () => {
  it('honest baseline: the proxy is transparent, both ways', async () => {
    await conversationGoesOn('the baseline');
    const reply = await bob.c.client.send('alice', 'reply through the proxy');
    await until(
      async () => (await incoming(alice, 'bob')).includes('reply through the proxy'),
      'alice reads the reply',
    );
    await bob.c.client.waitForStatus('alice', reply.id, 'delivered', 20_000);
    expect(setup.hostile.seen.some((x) => deliverOf(x, 'bob', 'alice'))).toBe(true);
  });

  it('bit flips in a delivered ciphertext (first, middle, last byte) are refused and told', async () => {
    for (const where of ['first', 'middle', 'last'] as const) {
      const before = noticed(bob);
      const text = `tampered at the ${where} byte`;
      let tampered: number | undefined;
      const t = trap(
        (x) => deliverOf(x, 'bob', 'alice') !== undefined,
        (x) => {
          const f = x.frame as Extract<ServerFrame, { type: 'deliver' }>;
          tampered = f.serverMessageId;
          const at =
            where === 'first' ? 0 : where === 'last' ? f.payload.length - 1 : f.payload.length >> 1;
          return [{ ...f, payload: flip(f.payload, at) }];
        },
      );
      setup.hostile.policy = t.policy;
      await aliceWrites(text);
      await until(
        () => tampered !== undefined && setup.hostile.acked('bob', tampered),
        `bob dealt with the ${where}-byte flip`,
      );
      // Told (an error), or repaired: then the sender's genuine text arrives instead.
      await until(
        async () => noticed(bob) > before || (await incoming(bob, 'alice')).includes(text),
        `bob is told of the ${where}-byte flip or gets the genuine text`,
      );
      await conversationGoesOn(`a flip at the ${where} byte`);
    }
    await nothingFabricated();
    // The tampered texts were never shown as written (a repair may later bring the genuine one).
    const shown = await incoming(bob, 'alice');
    expect(shown.filter((t) => t.startsWith('tampered')).every((t) => written.includes(t))).toBe(
      true,
    );
  });

  it('replays of a delivered message (same id, fresh id, later) are shown once', async () => {
    let genuine: Extract<ServerFrame, { type: 'deliver' }> | undefined;
    const t = trap(
      (x) => deliverOf(x, 'bob', 'alice') !== undefined,
      (x) => {
        genuine = x.frame as Extract<ServerFrame, { type: 'deliver' }>;
        // The same delivery three times, the last under an id the relay never assigned.
        return [
          genuine,
          genuine,
          { ...genuine, serverMessageId: genuine.serverMessageId + 1_000_000 },
        ];
      },
    );
    setup.hostile.policy = t.policy;
    await aliceWrites('say it once');
    await until(async () => (await incoming(bob, 'alice')).includes('say it once'), 'bob reads it');
    await conversationGoesOn('the replay');
    // Replayed again, after a later message and under yet another id.
    expect(genuine).toBeDefined();
    const g = genuine as Extract<ServerFrame, { type: 'deliver' }>;
    expect(
      setup.hostile.inject('bob', 'down', { ...g, serverMessageId: g.serverMessageId + 2_000_000 }),
    ).toBe(true);
    await conversationGoesOn('the late replay');
    await nothingFabricated();
    expect((await incoming(bob, 'alice')).filter((x) => x === 'say it once')).toHaveLength(1);
  });

  it('reordered deliveries are each shown once, with the times their sender wrote them', async () => {
    let held: ServerFrame | undefined;
    setup.hostile.policy = (x) => {
      const d = deliverOf(x, 'bob', 'alice');
      if (!d) return undefined;
      if (held === undefined) {
        held = d; // the first is kept back …
        return [];
      }
      const first = held;
      setup.hostile.policy = passThrough;
      return [d, first]; // … and delivered after the second
    };
    const first = await aliceWrites('reordered one');
    const second = await aliceWrites('reordered two');
    await until(async () => {
      const shown = await incoming(bob, 'alice');
      return shown.includes('reordered one') && shown.includes('reordered two');
    }, 'bob reads both');
    const byId = new Map((await bob.c.client.messages('alice')).map((m) => [m.id, m]));
    const sentOne = (await alice.c.client.messages('bob')).find((m) => m.id === first);
    const sentTwo = (await alice.c.client.messages('bob')).find((m) => m.id === second);
    expect(byId.get(first)?.sentAt).toBe(sentOne?.sentAt);
    expect(byId.get(second)?.sentAt).toBe(sentTwo?.sentAt);
    await conversationGoesOn('the reorder');
    await nothingFabricated();
  });

  it('a dropped delivery leaves the message queued (never delivered) and the next one is read', async () => {
    // Every delivery of this one message is swallowed, also on a new connection.
    let swallowed: number | undefined;
    setup.hostile.policy = (x) => {
      const d = deliverOf(x, 'bob', 'alice');
      if (!d) return undefined;
      swallowed ??= d.serverMessageId;
      return d.serverMessageId === swallowed ? [] : undefined;
    };
    const lost = await aliceWrites('never arrives');
    await alice.c.client.waitForStatus('bob', lost, 'queued', 20_000);
    await until(() => swallowed !== undefined, 'the relay swallowed it');
    const keep = setup.hostile.policy;
    const next = 'read despite the gap';
    await aliceWrites(next);
    await until(async () => (await incoming(bob, 'alice')).includes(next), 'bob reads the next');
    bob.c.transport.dropConnection();
    await until(() => !bob.c.client.isReady, 'bob disconnected');
    await until(() => bob.c.client.isReady && bob.c.client.mailboxDrained, 'bob back');
    expect(setup.hostile.policy).toBe(keep);
    expect(await incoming(bob, 'alice')).not.toContain('never arrives');
    const status = (await alice.c.client.messages('bob')).find((m) => m.id === lost)?.status;
    expect(status).toBe('queued');
    // Once the relay stops swallowing it, the mail it kept arrives after all.
    setup.hostile.policy = passThrough;
    bob.c.transport.dropConnection();
    await until(
      async () => (await incoming(bob, 'alice')).includes('never arrives'),
      'the kept message arrives once the relay relents',
    );
    await alice.c.client.waitForStatus('bob', lost, 'delivered', 20_000);
    await nothingFabricated();
  });

  it('a delivery re-addressed as if from another sender is refused, shown from nobody', async () => {
    let relabelled: number | undefined;
    const t = trap(
      (x) => deliverOf(x, 'bob', 'alice') !== undefined,
      (x) => {
        const f = x.frame as Extract<ServerFrame, { type: 'deliver' }>;
        relabelled = f.serverMessageId;
        return [{ ...f, from: { name: 'carol', deviceId: 1 } }];
      },
    );
    setup.hostile.policy = t.policy;
    await aliceWrites('said by alice, labelled carol');
    await until(
      () => relabelled !== undefined && setup.hostile.acked('bob', relabelled),
      'bob dealt with it',
    );
    await conversationGoesOn('the relabelled sender');
    await nothingFabricated();
    expect(bob.events.some((e) => e.type === 'key-changed')).toBe(false);
  });

  it('a send re-addressed to another recipient is unreadable there and shown to nobody', async () => {
    const before = setup.hostile.deliveries('carol', 'alice').length;
    const t = trap(
      (x) => sendOf(x, 'alice', 'bob') !== undefined,
      (x) => {
        const f = x.frame as Extract<typeof x.frame, { type: 'send' }>;
        return [{ ...f, to: { name: 'carol', deviceId: 1 } }];
      },
    );
    setup.hostile.policy = t.policy;
    await aliceWrites('for bob, sent to carol');
    await until(() => {
      const d = setup.hostile.deliveries('carol', 'alice')[before];
      return d !== undefined && setup.hostile.acked('carol', d.serverMessageId);
    }, 'carol dealt with it');
    expect(await incoming(carol, 'alice')).toEqual([]);
    await conversationGoesOn('the re-addressed send');
    await nothingFabricated();
  });

  it('forged deliveries (garbage, a replayed ciphertext as session.terminate, an unknown sender) show nothing', async () => {
    // A genuine ciphertext to reuse, captured on its way.
    let genuine: Extract<ServerFrame, { type: 'deliver' }> | undefined;
    setup.hostile.policy = (x) => {
      genuine ??= deliverOf(x, 'bob', 'alice');
      return undefined;
    };
    await aliceWrites('a ciphertext to reuse');
    await until(
      async () => (await incoming(bob, 'alice')).includes('a ciphertext to reuse'),
      'bob reads it',
    );
    const g = genuine as Extract<ServerFrame, { type: 'deliver' }>;
    const forged: Extract<ServerFrame, { type: 'deliver' }>[] = [
      {
        ...g,
        serverMessageId: g.serverMessageId + 3_000_000,
        payload: crypto.randomBytes(g.payload.length),
      },
      { ...g, serverMessageId: g.serverMessageId + 3_000_001, kind: 'session.terminate' },
      {
        ...g,
        serverMessageId: g.serverMessageId + 3_000_002,
        from: { name: 'mallory', deviceId: 1 },
        payload: crypto.randomBytes(g.payload.length),
      },
    ];
    for (const f of forged) expect(setup.hostile.inject('bob', 'down', f)).toBe(true);
    await until(
      () => forged.every((f) => setup.hostile.acked('bob', f.serverMessageId)),
      'bob dealt with the forgeries',
    );
    expect(bob.events.some((e) => e.type === 'session-ended')).toBe(false);
    expect(await bob.c.store.getSession('alice', 1)).toBeDefined();
    await conversationGoesOn('the forged deliveries');
    await nothingFabricated();
    expect(await incoming(bob, 'mallory')).toEqual([]);
  });

  it('the session-opening message replayed later neither shows twice nor resets the session', async () => {
    // The first delivery alice ever made to bob carried the handshake (kept by the proxy's log).
    const opening = setup.hostile.seen
      .map((x) => deliverOf(x, 'bob', 'alice'))
      .find((d) => d !== undefined);
    expect(opening).toBeDefined();
    const o = opening as Extract<ServerFrame, { type: 'deliver' }>;
    const sessionBefore = await bob.c.store.getSession('alice', 1);
    expect(
      setup.hostile.inject('bob', 'down', { ...o, serverMessageId: o.serverMessageId + 6_000_000 }),
    ).toBe(true);
    await conversationGoesOn('the replayed handshake');
    // Both directions still work on the one session.
    const back = await bob.c.client.send('alice', 'still one session');
    await until(
      async () => (await incoming(alice, 'bob')).includes('still one session'),
      'alice reads bob after the replayed handshake',
    );
    await bob.c.client.waitForStatus('alice', back.id, 'delivered', 20_000);
    expect(sessionBefore).toBeDefined();
    expect(bob.events.some((e) => e.type === 'key-changed')).toBe(false);
    await nothingFabricated();
  });

  it('a replayed session.terminate does not end the session that replaced it', async () => {
    let end: Extract<ServerFrame, { type: 'deliver' }> | undefined;
    setup.hostile.policy = (x) => {
      const d = deliverOf(x, 'bob', 'alice');
      if (d?.kind === 'session.terminate') end ??= d;
      return undefined;
    };
    const endedBefore = bob.events.filter((e) => e.type === 'session-ended').length;
    await alice.c.client.terminate('bob');
    await until(
      () => bob.events.filter((e) => e.type === 'session-ended').length === endedBefore + 1,
      'bob sees the genuine end',
    );
    // A new session, opened by alice's next message.
    await conversationGoesOn('the genuine end');
    expect(end).toBeDefined();
    const e = end as Extract<ServerFrame, { type: 'deliver' }>;
    expect(
      setup.hostile.inject('bob', 'down', { ...e, serverMessageId: e.serverMessageId + 7_000_000 }),
    ).toBe(true);
    await conversationGoesOn('the replayed end');
    expect(bob.events.filter((x) => x.type === 'session-ended').length).toBe(endedBefore + 1);
    expect(await bob.c.store.getSession('alice', 1)).toBeDefined();
    await nothingFabricated();
  });

  it('receipts forged for messages that do not exist change nothing', async () => {
    const statusesBefore = (await alice.c.client.messages('bob')).map((m) => `${m.id}:${m.status}`);
    const eventsBefore = alice.events.length;
    for (const status of ['queued', 'delivered'] as const) {
      for (const type of ['receipt', 'receipt.stored'] as const) {
        expect(
          setup.hostile.inject('alice', 'down', {
            type,
            clientMessageId: crypto.randomBytes(16),
            status,
            serverMessageId: 4_000_000,
            timestamp: Date.now(),
          }),
        ).toBe(true);
      }
    }
    await conversationGoesOn('the forged receipts'); // ordered after the forgeries on alice's connection
    const after = (await alice.c.client.messages('bob')).map((m) => `${m.id}:${m.status}`);
    expect(after.slice(0, statusesBefore.length)).toEqual(statusesBefore);
    expect(
      alice.events
        .slice(eventsBefore)
        .filter((e) => e.type === 'status' && !after.some((a) => a.startsWith(e.id))),
    ).toEqual([]);
  });

  it('a substituted key bundle (another key behind dave’s genuine certificate) is refused: the message fails visibly', async () => {
    const impostor = impostorIdentity();
    const t = trap(
      (x) => x.leg === 'down' && x.name === 'alice' && x.frame.type === 'keys.bundle',
      (x) => [
        substitutedBundle(x.frame as Extract<ServerFrame, { type: 'keys.bundle' }>, impostor),
      ],
    );
    setup.hostile.policy = t.policy;
    // Refused while connected: the send is refused with the reason and nothing is stored.
    const err = await alice.c.client.send('dave', 'for dave only').catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'ClientError', code: 'UNTRUSTED_KEY' });
    expect(t.hits).toBe(1);
    expect(await alice.c.client.messages('dave')).toEqual([]);
    expect(await alice.c.store.getSession('dave', 1)).toBeUndefined();
    // Honest again: a new message to dave sets up a session with his real key.
    setup.hostile.policy = passThrough;
    const again = await alice.c.client.send('dave', 'for dave, honestly routed');
    await until(
      async () => (await incoming(dave, 'alice')).includes('for dave, honestly routed'),
      'dave reads it',
    );
    await alice.c.client.waitForStatus('dave', again.id, 'delivered', 20_000);
    expect(await incoming(dave, 'alice')).toEqual(['for dave, honestly routed']);
  });
});
