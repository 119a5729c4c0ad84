import { describe, expect, it } from 'vitest';
import {
  decrypt,
  encrypt,
  initiateSession,
  respondWithStores,
  verifyPreKeyBundle,
  MemoryIdentityStore,
  MemorySeenStore,
  ENVELOPE_UNIT_BYTES,
} from '@parley/protocol';
import { ALICE, BOB, bundleOf, ctxOf, makeDevice, meta, seeded, text, untext } from './helpers.js';

describe('session round trip', () => {
  it('initiates, responds and ratchets in both directions', async () => {
    const crypto = seeded(1);
    const ctx = ctxOf(crypto);
    const alice = makeDevice(crypto);
    const bob = makeDevice(crypto, { oneTime: 2, oneTimeKem: 1 });
    const bundle = verifyPreKeyBundle(crypto, bundleOf(bob));
    const a = initiateSession(
      ctx,
      { identity: alice.identity, bundle },
      text('hello'),
      meta(ALICE, BOB),
    );
    expect(a.envelope.length).toBe(
      2 * ENVELOPE_UNIT_BYTES > a.envelope.length ? ENVELOPE_UNIT_BYTES : 2 * ENVELOPE_UNIT_BYTES,
    );
    const r = await respondWithStores(
      ctx,
      {
        identity: new MemoryIdentityStore(bob.identity),
        preKeys: bob.store,
        seen: new MemorySeenStore(),
      },
      a.envelope,
      meta(ALICE, BOB),
    );
    expect(untext(r.plaintext)).toBe('hello');
    let b = r.session;
    let as = a.session;
    for (let i = 0; i < 20; i++) {
      const e = encrypt(ctx, b, text(`b${i}`), meta(BOB, ALICE));
      b = e.session;
      const d = decrypt(ctx, as, e.envelope, meta(BOB, ALICE));
      as = d.session;
      expect(untext(d.plaintext)).toBe(`b${i}`);
      const e2 = encrypt(ctx, as, text(`a${i}`), meta(ALICE, BOB));
      as = e2.session;
      const d2 = decrypt(ctx, b, e2.envelope, meta(ALICE, BOB));
      b = d2.session;
      expect(untext(d2.plaintext)).toBe(`a${i}`);
    }
  });
});
