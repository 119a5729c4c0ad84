/**
 * Forward secrecy and post-compromise security, the classical and the post-quantum
 * secret separately. The attacker ("Eve") steals a full copy of Bob's state and then
 * mirrors Bob: she runs the same `decrypt` on every message Alice sends him. What Eve
 * additionally knows is modelled by randomness: each party draws X25519 keys and
 * ML-KEM randomness from separate, cloneable streams, and Eve gets a clone of Bob's
 * X25519 stream (a quantum computer's view: every X25519 secret is known) and/or of his
 * ML-KEM stream (control: then she must never lose track).
 */
import { describe, expect, it } from 'vitest';
import { createPortableCrypto, type CryptoProvider } from '@parley/crypto';
import {
  ProtocolError,
  decrypt,
  deserializeSession,
  encrypt,
  initiateSession,
  respondToPreKeyMessage,
  serializeSession,
  verifyPreKeyBundle,
  PQ_RATCHET_INTERVAL_CHAINS,
  type Session,
} from '@parley/protocol';
import { stateOf } from '../src/session.js';
import { ALICE, BOB, bundleOf, makeDevice, meta, text, untext } from './helpers.js';

const hashing = createPortableCrypto();

/** A deterministic stream that can be cloned at its current position. */
class Stream {
  constructor(
    private readonly seed: number,
    private counter = 0,
  ) {}
  draw = (n: number): Uint8Array => {
    const out = new Uint8Array(n);
    for (let off = 0; off < n; off += 32) {
      const block = hashing.sha256(
        Uint8Array.of(this.seed, this.counter >>> 8, this.counter & 255, 7),
      );
      this.counter++;
      out.set(block.subarray(0, Math.min(32, n - off)), off);
    }
    return out;
  };
  clone(): Stream {
    return new Stream(this.seed, this.counter);
  }
}

interface Streams {
  x25519: Stream;
  kem: Stream;
  other: Stream;
}

function provider(s: Streams): CryptoProvider {
  const base = createPortableCrypto({ random: s.other.draw });
  const kem = createPortableCrypto({ random: s.kem.draw });
  const xgen = createPortableCrypto({ random: s.x25519.draw });
  return {
    ...base,
    x25519: { ...base.x25519, generateKeyPair: () => xgen.x25519.generateKeyPair() },
    mlkem768: kem.mlkem768,
  };
}

function established() {
  const aliceStreams = { x25519: new Stream(1), kem: new Stream(2), other: new Stream(3) };
  const bobStreams = { x25519: new Stream(4), kem: new Stream(5), other: new Stream(6) };
  const ctxA = { crypto: provider(aliceStreams), now: () => 0 };
  const ctxB = { crypto: provider(bobStreams), now: () => 0 };
  const alice = makeDevice(ctxA.crypto);
  const bob = makeDevice(ctxB.crypto);
  const bundle = verifyPreKeyBundle(ctxA.crypto, bundleOf(bob));
  const init = initiateSession(
    ctxA,
    { identity: alice.identity, bundle },
    text('hi'),
    meta(ALICE, BOB),
  );
  const spk = bob.store.signed.get(1);
  const kem = bob.store.kem.get(1);
  if (!spk || !kem) throw new Error('fixture');
  const resp = respondToPreKeyMessage(
    ctxB,
    { identity: bob.identity, keys: { signedPreKey: spk, kemPreKey: kem } },
    init.envelope,
    meta(ALICE, BOB),
  );
  const s = { a: init.session, b: resp.session };
  let n = 0;
  /** Alice -> Bob; returns the envelope (Bob has read it). */
  const aliceSends = (): Uint8Array => {
    const e = encrypt(ctxA, s.a, text(`a${n++}`), meta(ALICE, BOB));
    s.a = e.session;
    s.b = decrypt(ctxB, s.b, e.envelope, meta(ALICE, BOB)).session;
    return e.envelope;
  };
  const bobSends = (): void => {
    const e = encrypt(ctxB, s.b, text(`b${n++}`), meta(BOB, ALICE));
    s.b = e.session;
    s.a = decrypt(ctxA, s.a, e.envelope, meta(BOB, ALICE)).session;
  };
  return { s, aliceStreams, bobStreams, aliceSends, bobSends };
}

/** Eve's copy of Bob, mirroring his decryptions with the streams she is given. */
function eve(bob: Session, streams: Streams) {
  let copy: Session | undefined = deserializeSession(serializeSession(bob));
  const ctx = { crypto: provider(streams), now: () => 0 };
  return {
    /** True if Eve could read the envelope (and keeps tracking), false once she lost. */
    read(envelope: Uint8Array): boolean {
      if (!copy) return false;
      try {
        const r = decrypt(ctx, copy, envelope, meta(ALICE, BOB));
        copy = r.session;
        return untext(r.plaintext).startsWith('a');
      } catch (e) {
        expect(e).toBeInstanceOf(ProtocolError);
        copy = undefined;
        return false;
      }
    },
  };
}

const noKemStepYet = (s: Session): boolean => {
  const st = stateOf(s);
  return st.pqRemoteSeenId === 0 && st.pqNextLocalId === 1 && st.pqSendCiphertext === undefined;
};

describe('forward secrecy', () => {
  it('a full copy of the recipient state taken after reading cannot read the message again', () => {
    const t = established();
    const envelopes: Uint8Array[] = [];
    for (let i = 0; i < 3; i++) {
      envelopes.push(t.aliceSends());
      t.bobSends();
    }
    envelopes.push(t.aliceSends(), t.aliceSends());
    const stolen = eve(t.s.b, t.bobStreams);
    for (const e of envelopes) {
      // Each try uses a fresh copy so an earlier failure cannot mask a later success.
      const fresh = eve(t.s.b, t.bobStreams);
      expect(fresh.read(e)).toBe(false);
    }
    expect(stolen.read(envelopes[0] as Uint8Array)).toBe(false);
  });

  it('after reading, the state holds neither the message key nor a chain key that derives it', () => {
    const t = established();
    t.bobSends();
    t.aliceSends();
    // Bob's receiving chain key right before he reads the next message, and the message
    // key it yields (Double Ratchet §5.2: MK = HMAC(CK, 0x01)).
    const ck = stateOf(t.s.b).recv!.chainKey.slice();
    const mk = hashing.hmacSha256(ck, Uint8Array.of(1));
    const before = serializeSession(t.s.b);
    t.aliceSends();
    const after = serializeSession(t.s.b);
    const contains = (hay: Uint8Array, needle: Uint8Array): boolean => {
      outer: for (let i = 0; i + needle.length <= hay.length; i++) {
        for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
        return true;
      }
      return false;
    };
    expect(contains(after, ck)).toBe(false);
    expect(contains(after, mk)).toBe(false);
    // The state before reading did contain the chain key (so the check can fail).
    expect(contains(before, ck)).toBe(true);
  });

  it('the same copy taken before reading can read it (the attack model works)', () => {
    const t = established();
    t.bobSends();
    const before = eve(t.s.b, {
      x25519: t.bobStreams.x25519.clone(),
      kem: t.bobStreams.kem.clone(),
      other: new Stream(99),
    });
    const e = t.aliceSends();
    expect(before.read(e)).toBe(true);
  });
});

describe('post-compromise security', () => {
  it('classical: Eve loses after one round trip with fresh X25519 keys, before any KEM step', () => {
    const t = established();
    t.bobSends();
    const e = eve(t.s.b, { x25519: new Stream(77), kem: new Stream(78), other: new Stream(79) });
    // Still inside the compromised epoch: Eve reads Alice's next message.
    expect(e.read(t.aliceSends())).toBe(true);
    // Round trip: Bob answers from a fresh X25519 key (made when he read that message,
    // from randomness Eve lacks) and Alice answers back on a chain keyed to it.
    t.bobSends();
    const healed = t.aliceSends();
    expect(noKemStepYet(t.s.a) && noKemStepYet(t.s.b)).toBe(true);
    expect(e.read(healed)).toBe(false);
  });

  it("classical control: with Bob's randomness Eve keeps reading, so the loss above is real", () => {
    const t = established();
    t.bobSends();
    const e = eve(t.s.b, {
      x25519: t.bobStreams.x25519.clone(),
      kem: t.bobStreams.kem.clone(),
      other: new Stream(79),
    });
    for (let i = 0; i < 4 * PQ_RATCHET_INTERVAL_CHAINS + 4; i++) {
      expect(e.read(t.aliceSends())).toBe(true);
      t.bobSends();
    }
  });

  it('post-quantum: an attacker who knows every X25519 secret loses at the first KEM step', () => {
    const t = established();
    t.bobSends();
    // Eve knows all of Bob's future X25519 secrets (as a quantum computer would compute
    // them from public keys) but not his ML-KEM randomness.
    const e = eve(t.s.b, {
      x25519: t.bobStreams.x25519.clone(),
      kem: new Stream(88),
      other: new Stream(89),
    });
    let lostAt = -1;
    let firstKemAt = -1;
    const turns = 4 * PQ_RATCHET_INTERVAL_CHAINS + 4;
    for (let i = 0; i < turns && lostAt < 0; i++) {
      const env = t.aliceSends();
      if (firstKemAt < 0 && !noKemStepYet(t.s.b)) firstKemAt = i;
      if (!e.read(env)) lostAt = i;
      t.bobSends();
    }
    // Classical healing (by turn 2) did not stop her; the KEM ratchet did, within the schedule.
    expect(lostAt).toBeGreaterThan(2);
    expect(firstKemAt).toBeGreaterThanOrEqual(0);
    expect(lostAt).toBeGreaterThanOrEqual(firstKemAt);
    expect(lostAt).toBeLessThan(turns);
  });
});
