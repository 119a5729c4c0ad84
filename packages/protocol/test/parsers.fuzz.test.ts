/**
 * Fuzzing of every parser in the package (M43): arbitrary bytes, and valid encodings
 * with random mutations, must only ever produce a ProtocolError (never another
 * exception, never a hang) and never change a session. Runs PARLEY_FUZZ_RUNS inputs per
 * property (default 2,000 in the normal run; `npm run fuzz` raises it).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createNodeCrypto } from '@parley/crypto/node';
import {
  ProtocolError,
  decodeKemPreKey,
  decodeOneTimePreKey,
  decodePreKeyBundle,
  decodePublicIdentity,
  decodeSignedPreKey,
  decrypt,
  deserializeSession,
  encodePreKeyBundle,
  encrypt,
  initiateSession,
  parsePreKeyMessage,
  respondToPreKeyMessage,
  serializeSession,
  verifyPreKeyBundle,
} from '@parley/protocol';
import { ALICE, BOB, bundleOf, makeDevice, meta, text } from './helpers.js';

const RUNS = Number(process.env['PARLEY_FUZZ_RUNS'] ?? 2000);
const crypto = createNodeCrypto();
const ctx = { crypto, now: () => 1_750_000_000_000 };

/** Only ProtocolError may escape. */
function onlyProtocolErrors(run: () => unknown): void {
  try {
    run();
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
  }
}

/** A valid sample with random byte edits (set, truncate, extend). */
const mutated = (sample: Uint8Array) =>
  fc
    .record({
      edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
      cut: fc.nat({ max: sample.length }),
      extra: fc.uint8Array({ maxLength: 8 }),
      mode: fc.integer({ min: 0, max: 2 }),
    })
    .map(({ edits, cut, extra, mode }) => {
      let b = sample.slice();
      for (const [i, v] of edits) b[i % b.length] = v;
      if (mode === 1) b = b.slice(0, cut);
      if (mode === 2) b = new Uint8Array([...b, ...extra]);
      return b;
    });

describe('parser fuzzing', () => {
  const alice = makeDevice(crypto);
  const bob = makeDevice(crypto, { oneTime: 1 });
  const bundle = bundleOf(bob);
  const bundleBytes = encodePreKeyBundle(bundle);
  const init = initiateSession(
    ctx,
    { identity: alice.identity, bundle: verifyPreKeyBundle(crypto, bundle) },
    text('seed'),
    meta(ALICE, BOB),
  );
  const keys = {
    signedPreKey: bob.store.signed.get(1)!,
    kemPreKey: bob.store.kem.get(1)!,
    oneTimePreKey: [...bob.store.oneTime.values()][0],
  };
  const r = respondToPreKeyMessage(
    ctx,
    { identity: bob.identity, keys },
    init.envelope,
    meta(ALICE, BOB),
  );
  const reply = encrypt(ctx, r.session, text('reply'), meta(BOB, ALICE));
  const aliceSession = init.session;
  const stateBytes = serializeSession(aliceSession);

  const decoders: Array<[string, (b: Uint8Array) => unknown, Uint8Array]> = [
    ['bundle', decodePreKeyBundle, bundleBytes],
    ['signed prekey', decodeSignedPreKey, bundleBytes.subarray(130, 230)],
    ['kem prekey', decodeKemPreKey, bundleBytes.subarray(230, 1482)],
    ['one-time prekey', decodeOneTimePreKey, bundleBytes.subarray(1482)],
    ['public identity', decodePublicIdentity, bundleBytes.subarray(2, 130)],
    ['prekey message', parsePreKeyMessage, init.envelope],
    ['session state', deserializeSession, stateBytes],
  ];
  for (const [name, decode, sample] of decoders) {
    it(`${name}: random and mutated inputs only raise ProtocolError`, () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 2048 }), (b) => onlyProtocolErrors(() => decode(b))),
        { numRuns: RUNS },
      );
      fc.assert(
        fc.property(mutated(sample), (b) => onlyProtocolErrors(() => decode(b))),
        { numRuns: RUNS },
      );
    });
  }

  it('decrypt: mutated envelopes only raise ProtocolError and leave the session usable', () => {
    fc.assert(
      fc.property(mutated(reply.envelope), (b) => {
        // An edit may rewrite a byte with its own value; the unchanged envelope is valid.
        fc.pre(b.length !== reply.envelope.length || b.some((x, i) => x !== reply.envelope[i]));
        onlyProtocolErrors(() => decrypt(ctx, aliceSession, b, meta(BOB, ALICE)));
        expect(aliceSession.usable).toBe(true);
      }),
      { numRuns: RUNS },
    );
    expect(
      new TextDecoder().decode(
        decrypt(ctx, aliceSession, reply.envelope, meta(BOB, ALICE)).plaintext,
      ),
    ).toBe('reply');
  });
});
