import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { toHex } from '@parley/crypto';
import {
  ENVELOPE_UNIT_BYTES,
  MAX_PLAINTEXT_BYTES,
  MAX_SINGLE_UNIT_PLAINTEXT_BYTES,
  MAX_SKIP_PER_CHAIN,
  MemoryIdentityStore,
  MemorySeenStore,
  SKIPPED_KEY_LIFETIME_MS,
  decrypt,
  deserializeSession,
  encrypt,
  envelopeBytes,
  envelopeKind,
  initiateSession,
  respondToPreKeyMessage,
  respondWithStores,
  serializeSession,
  sessionEnvelopeBytes,
  terminateSession,
  verifyPreKeyBundle,
  type MessageMeta,
  type Session,
} from '@parley/protocol';
import { secretBuffers } from '../src/ratchet.js';
import { stateOf } from '../src/session.js';
import {
  ALICE,
  BOB,
  bundleOf,
  code,
  ctxOf,
  fakeClock,
  makeDevice,
  meta,
  seeded,
  text,
  untext,
} from './helpers.js';

/** Alice and Bob with an established session (Bob has replied once). */
function pair(seed = 1) {
  const crypto = seeded(seed);
  const clock = fakeClock();
  const ctx = ctxOf(crypto, clock.now);
  const alice = makeDevice(crypto);
  const bob = makeDevice(crypto);
  const bundle = verifyPreKeyBundle(crypto, bundleOf(bob));
  const i = initiateSession(
    ctx,
    { identity: alice.identity, bundle },
    text('hello'),
    meta(ALICE, BOB),
  );
  const r = respondToPreKeyMessage(
    ctx,
    {
      identity: bob.identity,
      keys: { signedPreKey: bob.store.signed.get(1)!, kemPreKey: bob.store.kem.get(1)! },
    },
    i.envelope,
    meta(ALICE, BOB),
  );
  const s = { a: i.session, b: r.session };
  const send = (fromAlice: boolean, body: string | Uint8Array, m?: MessageMeta): Uint8Array => {
    const e = encrypt(
      ctx,
      fromAlice ? s.a : s.b,
      typeof body === 'string' ? text(body) : body,
      m ?? (fromAlice ? meta(ALICE, BOB) : meta(BOB, ALICE)),
    );
    if (fromAlice) s.a = e.session;
    else s.b = e.session;
    return e.envelope;
  };
  const recv = (toAlice: boolean, env: Uint8Array, m?: MessageMeta): Uint8Array => {
    const d = decrypt(
      ctx,
      toAlice ? s.a : s.b,
      env,
      m ?? (toAlice ? meta(BOB, ALICE) : meta(ALICE, BOB)),
    );
    if (toAlice) s.a = d.session;
    else s.b = d.session;
    return d.plaintext;
  };
  recv(true, send(false, 'ready'));
  return { crypto, ctx, clock, s, send, recv, alice, bob };
}

describe('session', () => {
  it('round-trips in both directions through many ratchet turns', async () => {
    const crypto = seeded(2);
    const ctx = ctxOf(crypto);
    const alice = makeDevice(crypto);
    const bob = makeDevice(crypto, { oneTime: 2, oneTimeKem: 1 });
    const bundle = verifyPreKeyBundle(crypto, bundleOf(bob));
    const a0 = initiateSession(
      ctx,
      { identity: alice.identity, bundle },
      text('hello'),
      meta(ALICE, BOB),
    );
    expect(envelopeKind(a0.envelope)).toBe('prekey');
    const r = await respondWithStores(
      ctx,
      {
        identity: new MemoryIdentityStore(bob.identity),
        preKeys: bob.store,
        seen: new MemorySeenStore(),
      },
      a0.envelope,
      meta(ALICE, BOB),
    );
    expect(untext(r.plaintext)).toBe('hello');
    let b = r.session;
    let a = a0.session;
    for (let i = 0; i < 20; i++) {
      const e = encrypt(ctx, b, text(`b${i}`), meta(BOB, ALICE));
      b = e.session;
      const d = decrypt(ctx, a, e.envelope, meta(BOB, ALICE));
      a = d.session;
      expect(untext(d.plaintext)).toBe(`b${i}`);
      const e2 = encrypt(ctx, a, text(`a${i}`), meta(ALICE, BOB));
      expect(envelopeKind(e2.envelope)).toBe('message');
      a = e2.session;
      const d2 = decrypt(ctx, b, e2.envelope, meta(ALICE, BOB));
      b = d2.session;
      expect(untext(d2.plaintext)).toBe(`a${i}`);
    }
  });

  it('decrypts out of order across chains and refuses duplicates, also after save/restore', () => {
    const t = pair();
    const first = [t.send(true, 'x0'), t.send(true, 'x1'), t.send(true, 'x2')];
    expect(untext(t.recv(false, first[2]!))).toBe('x2');
    t.recv(true, t.send(false, 'turn'));
    const second = [t.send(true, 'y0'), t.send(true, 'y1')];
    expect(untext(t.recv(false, second[1]!))).toBe('y1');
    // Save and restore Bob mid-conversation, with skipped keys in two chains.
    t.s.b = deserializeSession(serializeSession(t.s.b));
    expect(untext(t.recv(false, first[0]!))).toBe('x0');
    expect(untext(t.recv(false, second[0]!))).toBe('y0');
    expect(untext(t.recv(false, first[1]!))).toBe('x1');
    t.s.b = deserializeSession(serializeSession(t.s.b));
    for (const env of [...first, ...second])
      expect(code(() => t.recv(false, env))).toBe('DUPLICATE_MESSAGE');
  });

  it('binds every routing field into the AD: changing any of them fails and changes nothing', () => {
    const t = pair();
    const good = meta(ALICE, BOB, 1_750_000_000_123, 7);
    const env = t.send(true, 'routed', good);
    const variants: MessageMeta[] = [
      { ...good, sender: { ...ALICE, userId: 'alicf' } },
      { ...good, sender: { ...ALICE, deviceId: 2 } },
      { ...good, recipient: { ...BOB, userId: 'bobby' } },
      { ...good, recipient: { ...BOB, deviceId: 9 } },
      { ...good, messageType: 8 },
      { ...good, timestampMs: good.timestampMs + 1 },
    ];
    const before = t.s.b;
    for (const m of variants) expect(code(() => t.recv(false, env, m))).toBe('INVALID_MESSAGE');
    expect(t.s.b).toBe(before);
    expect(untext(t.recv(false, env, good))).toBe('routed');
  });

  it('refuses more than MAX_SKIP_PER_CHAIN skipped messages, leaving the state usable', () => {
    const t = pair();
    const envs: Uint8Array[] = [];
    for (let i = 0; i <= MAX_SKIP_PER_CHAIN + 1; i++) envs.push(t.send(true, `s${i}`));
    expect(code(() => t.recv(false, envs[MAX_SKIP_PER_CHAIN + 1]!))).toBe('TOO_MANY_SKIPPED');
    expect(untext(t.recv(false, envs[MAX_SKIP_PER_CHAIN]!))).toBe(`s${MAX_SKIP_PER_CHAIN}`);
    expect(untext(t.recv(false, envs[0]!))).toBe('s0');
  });

  it('expires skipped keys after SKIPPED_KEY_LIFETIME_MS', () => {
    const t = pair();
    const late = t.send(true, 'late');
    const soon = t.send(true, 'soon');
    t.recv(false, soon);
    t.clock.advance(SKIPPED_KEY_LIFETIME_MS + 1);
    t.recv(false, t.send(true, 'tick'));
    expect(stateOf(t.s.b).recv?.skipped.size).toBe(0);
    expect(code(() => t.recv(false, late))).toBeDefined();
  });

  it('pads every envelope to whole units and predicts its size', () => {
    const t = pair();
    expect(envelopeBytes(256)).toBe(ENVELOPE_UNIT_BYTES);
    expect(envelopeBytes(MAX_SINGLE_UNIT_PLAINTEXT_BYTES)).toBe(ENVELOPE_UNIT_BYTES);
    expect(envelopeBytes(MAX_SINGLE_UNIT_PLAINTEXT_BYTES + 1)).toBe(2 * ENVELOPE_UNIT_BYTES);
    for (const len of [
      0,
      1,
      256,
      MAX_SINGLE_UNIT_PLAINTEXT_BYTES,
      MAX_SINGLE_UNIT_PLAINTEXT_BYTES + 1,
      2999,
    ]) {
      const body = t.crypto.randomBytes(len);
      const predicted = sessionEnvelopeBytes(t.s.a, len);
      const env = t.send(true, body);
      expect(env.length).toBe(predicted);
      expect(env.length % ENVELOPE_UNIT_BYTES).toBe(0);
      expect(t.recv(false, env)).toEqual(body);
    }
  });

  it('compresses large bodies inside the padding (M33) and bounds the plaintext size', () => {
    const t = pair();
    const big = text('all work and no play makes jack a dull boy. '.repeat(3000));
    const env = t.send(true, big);
    expect(env.length).toBe(ENVELOPE_UNIT_BYTES);
    expect(t.recv(false, env)).toEqual(big);
    const random = t.crypto.randomBytes(10_000);
    const env2 = t.send(true, random);
    expect(env2.length).toBe(3 * ENVELOPE_UNIT_BYTES);
    expect(t.recv(false, env2)).toEqual(random);
    expect(code(() => t.send(true, new Uint8Array(MAX_PLAINTEXT_BYTES + 1)))).toBe(
      'MESSAGE_TOO_LARGE',
    );
  });

  it('terminates: every key is wiped and the session refuses further use (M31)', () => {
    const t = pair();
    const pending = t.send(false, 'in flight');
    const buffers = secretBuffers(stateOf(t.s.a));
    expect(buffers.some((b) => b.some((x) => x !== 0))).toBe(true);
    const a = t.s.a;
    terminateSession(a);
    expect(buffers.every((b) => b.every((x) => x === 0))).toBe(true);
    expect(a.usable).toBe(false);
    expect(code(() => encrypt(t.ctx, a, text('x'), meta(ALICE, BOB)))).toBe('SESSION_TERMINATED');
    expect(code(() => decrypt(t.ctx, a, pending, meta(BOB, ALICE)))).toBe('SESSION_TERMINATED');
    expect(code(() => serializeSession(a))).toBe('SESSION_TERMINATED');
  });

  it('consumes the input session on success and wipes its superseded keys', () => {
    const t = pair();
    const old: Session = t.s.a;
    const oldChainKey = stateOf(old).send!.chainKey;
    t.send(true, 'advance');
    expect(old.usable).toBe(false);
    expect(oldChainKey.every((x) => x === 0)).toBe(true);
    expect(code(() => encrypt(t.ctx, old, text('again'), meta(ALICE, BOB)))).toBe(
      'SESSION_TERMINATED',
    );
  });

  it('never prints secrets (toString, JSON, inspect)', () => {
    const t = pair();
    const st = stateOf(t.s.a);
    const secrets = secretBuffers(st).map(toHex);
    const seedHex = toHex(t.alice.identity.exportSeed());
    const printed = [
      String(t.s.a),
      JSON.stringify(t.s.a),
      inspect(t.s.a, { depth: 10, showHidden: true }),
      String(t.alice.identity),
      JSON.stringify(t.alice.identity),
      inspect(t.alice.identity, { depth: 10, showHidden: true }),
    ].join('\n');
    for (const s of [...secrets, seedHex]) expect(printed).not.toContain(s);
    expect(printed).toContain(toHex(t.alice.identity.publicIdentity.signingKey));
  });

  it('refuses malformed or foreign state bytes', () => {
    const t = pair();
    const bytes = serializeSession(t.s.a);
    expect(code(() => deserializeSession(bytes.subarray(0, bytes.length - 3)))).toBe(
      'INVALID_STATE',
    );
    const wrongVersion = bytes.slice();
    wrongVersion[0] = 99;
    expect(code(() => deserializeSession(wrongVersion))).toBe('UNSUPPORTED_VERSION');
    expect(code(() => deserializeSession(new Uint8Array(0)))).toBe('INVALID_STATE');
    expect(serializeSession(deserializeSession(bytes))).toEqual(bytes);
  });

  it('refuses envelopes of an unknown protocol version or type', () => {
    const t = pair();
    const env = t.send(true, 'v');
    const v2 = env.slice();
    v2[1] = 2;
    expect(code(() => t.recv(false, v2))).toBe('UNSUPPORTED_VERSION');
    const ty = env.slice();
    ty[0] = 9;
    expect(code(() => t.recv(false, ty))).toBe('INVALID_MESSAGE');
    expect(code(() => t.recv(false, env.subarray(0, 10)))).toBe('INVALID_MESSAGE');
  });
});
