/**
 * Bit-flip sweep (M29): every single-bit change of a sample envelope of each type is
 * rejected, and the receiving state is left as it was (the original still decrypts
 * afterwards). Types: an initial (prekey) message, an ordinary message, and an ordinary
 * message whose header carries post-quantum ratchet material.
 */
import { describe, expect, it } from 'vitest';
import { createNodeCrypto } from '@parley/crypto/node';
import {
  ProtocolError,
  decrypt,
  encrypt,
  initiateSession,
  parsePreKeyMessage,
  respondToPreKeyMessage,
  verifyPreKeyBundle,
  PREKEY_PART_BYTES,
  type Session,
} from '@parley/protocol';
import { responderState } from '../src/handshake.js';
import { decryptForTest } from '../src/session.js';
import { ALICE, BOB, bundleOf, makeDevice, meta, text, untext } from './helpers.js';

const crypto = createNodeCrypto();
const ctx = { crypto, now: () => 1_750_000_000_000 };

function flipped(envelope: Uint8Array, bit: number): Uint8Array {
  const copy = envelope.slice();
  copy[bit >> 3] = (copy[bit >> 3] as number) ^ (1 << (bit & 7));
  return copy;
}

function expectRejected(run: () => unknown): void {
  let err: unknown;
  try {
    run();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ProtocolError);
}

describe('bit-flip sweep', () => {
  const alice = makeDevice(crypto);
  const bob = makeDevice(crypto, { oneTime: 1, oneTimeKem: 1 });
  const bundle = verifyPreKeyBundle(crypto, bundleOf(bob));
  const m = meta(ALICE, BOB);
  const first = initiateSession(ctx, { identity: alice.identity, bundle }, text('first'), m);
  const info = parsePreKeyMessage(first.envelope);
  const keys = {
    signedPreKey: bob.store.signed.get(info.signedPreKeyId)!,
    kemPreKey: bob.store.kem.get(info.kemPreKeyId)!,
    oneTimePreKey: bob.store.oneTime.get(info.oneTimePreKeyId!)!,
  };

  it('rejects every flipped bit of an initial message (handshake fields through the full responder)', () => {
    const env = first.envelope;
    const handshakeBits = (2 + PREKEY_PART_BYTES) * 8;
    for (let bit = 0; bit < handshakeBits; bit++) {
      expectRejected(() =>
        respondToPreKeyMessage(ctx, { identity: bob.identity, keys }, flipped(env, bit), m),
      );
    }
    // Past the handshake fields the responder's handshake result is a function of
    // unchanged bytes, so it is computed once and the ratchet part swept from it.
    const initial = responderState(crypto, bob.identity, BOB, ALICE, info, keys);
    for (let bit = handshakeBits; bit < env.length * 8; bit++) {
      expectRejected(() => decryptForTest(ctx, initial, flipped(env, bit), m));
    }
    const ok = respondToPreKeyMessage(ctx, { identity: bob.identity, keys }, env, m);
    expect(untext(ok.plaintext)).toBe('first');
  });

  it('rejects every flipped bit of ordinary messages, with and without PQ header material', () => {
    let a: Session = first.session;
    let b: Session = respondToPreKeyMessage(
      ctx,
      { identity: bob.identity, keys },
      first.envelope,
      m,
    ).session;
    const samples: Array<{ env: Uint8Array; from: 'a' | 'b' }> = [];
    // Samples are second messages of Bob's chains (the first one of each chain is
    // delivered, so the sample exercises the in-chain path); the ratchet turns until a
    // header carries KEM material (longer than the 41-byte base header + tag).
    for (let i = 0; i < 40 && samples.length < 2; i++) {
      const e1 = encrypt(ctx, b, text(`b${i}`), meta(BOB, ALICE));
      b = e1.session;
      a = decrypt(ctx, a, e1.envelope, meta(BOB, ALICE)).session;
      const e2 = encrypt(ctx, b, text(`c${i}`), meta(BOB, ALICE));
      b = e2.session;
      const headerLen = (e2.envelope[14] as number) * 256 + (e2.envelope[15] as number);
      if (samples.length === 0 || headerLen > 100) samples.push({ env: e2.envelope, from: 'b' });
      else a = decrypt(ctx, a, e2.envelope, meta(BOB, ALICE)).session;
      if (samples.length === 2) break;
      const ea = encrypt(ctx, a, text(`a${i}`), meta(ALICE, BOB));
      a = ea.session;
      b = decrypt(ctx, b, ea.envelope, meta(ALICE, BOB)).session;
    }
    expect(samples).toHaveLength(2);
    for (const { env } of samples) {
      for (let bit = 0; bit < env.length * 8; bit++) {
        expectRejected(() => decrypt(ctx, a, flipped(env, bit), meta(BOB, ALICE)));
      }
    }
    // Nothing was consumed: both originals still decrypt (the first from a skipped key).
    for (const { env } of samples) {
      const r = decrypt(ctx, a, env, meta(BOB, ALICE));
      a = r.session;
      expect(untext(r.plaintext)).toMatch(/^c\d+$/);
    }
  });
});
