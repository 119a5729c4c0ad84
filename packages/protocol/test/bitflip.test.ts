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
  PQ_RATCHET_INTERVAL_CHAINS,
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

/** Lets vitest's worker breathe during long synchronous sweeps. */
const breathe = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

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

  it('rejects every flipped bit of an initial message (handshake fields through the full responder)', async () => {
    const env = first.envelope;
    const handshakeBits = (2 + PREKEY_PART_BYTES) * 8;
    for (let bit = 0; bit < handshakeBits; bit++) {
      if (bit % 1024 === 0) await breathe();
      expectRejected(() =>
        respondToPreKeyMessage(ctx, { identity: bob.identity, keys }, flipped(env, bit), m),
      );
    }
    // Past the handshake fields the responder's handshake result is a function of
    // unchanged bytes, so it is computed once and the ratchet part swept from it.
    const initial = responderState(crypto, bob.identity, BOB, ALICE, info, keys);
    for (let bit = handshakeBits; bit < env.length * 8; bit++) {
      if (bit % 4096 === 0) await breathe();
      expectRejected(() => decryptForTest(ctx, initial, flipped(env, bit), m));
    }
    const ok = respondToPreKeyMessage(ctx, { identity: bob.identity, keys }, env, m);
    expect(untext(ok.plaintext)).toBe('first');
  });

  it('rejects every flipped bit of ordinary messages, with and without PQ header material', async () => {
    let a: Session = first.session;
    let b: Session = respondToPreKeyMessage(
      ctx,
      { identity: bob.identity, keys },
      first.envelope,
      m,
    ).session;
    /** Sweeps every bit of `env` at Alice, then checks the original still decrypts. */
    const sweep = async (env: Uint8Array): Promise<void> => {
      for (let bit = 0; bit < env.length * 8; bit++) {
        if (bit % 4096 === 0) await breathe();
        expectRejected(() => decrypt(ctx, a, flipped(env, bit), meta(BOB, ALICE)));
      }
      const r = decrypt(ctx, a, env, meta(BOB, ALICE));
      a = r.session;
      expect(untext(r.plaintext)).toMatch(/^c\d+$/);
    };
    // Samples are second messages of Bob's chains (the in-chain path); the ratchet turns
    // until a header carries KEM material (longer than the 41-byte base header + tag).
    let swept = 0;
    for (let i = 0; i < 3 * PQ_RATCHET_INTERVAL_CHAINS && swept < 2; i++) {
      const e1 = encrypt(ctx, b, text(`b${i}`), meta(BOB, ALICE));
      b = e1.session;
      a = decrypt(ctx, a, e1.envelope, meta(BOB, ALICE)).session;
      const e2 = encrypt(ctx, b, text(`c${i}`), meta(BOB, ALICE));
      b = e2.session;
      const headerLen = (e2.envelope[14] as number) * 256 + (e2.envelope[15] as number);
      if (swept === 0 || headerLen > 100) {
        await sweep(e2.envelope);
        swept++;
      } else {
        a = decrypt(ctx, a, e2.envelope, meta(BOB, ALICE)).session;
      }
      const ea = encrypt(ctx, a, text(`a${i}`), meta(ALICE, BOB));
      a = ea.session;
      b = decrypt(ctx, b, ea.envelope, meta(ALICE, BOB)).session;
    }
    expect(swept).toBe(2);
  });
});
