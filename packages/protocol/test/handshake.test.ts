/**
 * Handshake and prekeys: bundle encodings, signature and identity failures, trust,
 * exhausted one-time prekeys, replayed initial messages.
 */
import { describe, expect, it } from 'vitest';
import {
  IdentityKeyPair,
  MemoryIdentityStore,
  MemorySeenStore,
  ProtocolError,
  assemblePreKeyBundle,
  decodeKemPreKey,
  decodeOneTimePreKey,
  decodePreKeyBundle,
  decodePublicIdentity,
  decodeSignedPreKey,
  decrypt,
  encodeKemPreKey,
  encodeOneTimePreKey,
  encodePreKeyBundle,
  encodePublicIdentity,
  encodeSignedPreKey,
  encrypt,
  initiateSession,
  respondToPreKeyMessage,
  respondWithStores,
  terminateSession,
  verifyPreKeyBundle,
  isGraceOver,
  isRotationDue,
  needsReplenishment,
  PREKEY_REPLENISH_BELOW,
  SIGNED_PREKEY_GRACE_MS,
  SIGNED_PREKEY_ROTATION_MS,
  type PreKeyBundle,
} from '@parley/protocol';
import type { MlKem768PublicKey, X25519PublicKey } from '@parley/crypto';
import {
  ALICE,
  BOB,
  bundleOf,
  code,
  ctxOf,
  makeDevice,
  meta,
  seeded,
  text,
  untext,
} from './helpers.js';

const crypto = seeded(7);
const ctx = ctxOf(crypto);

async function codeAsync(run: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await run();
  } catch (e) {
    if (e instanceof ProtocolError) return e.code;
    throw e;
  }
  return undefined;
}

const flip = (b: Uint8Array, i = 0): Uint8Array => {
  const c = b.slice();
  c[i] = (c[i] as number) ^ 1;
  return c;
};

describe('bundles', () => {
  const bob = makeDevice(crypto, { oneTime: 1, oneTimeKem: 1 });
  const bundle = bundleOf(bob);

  it('encodes and decodes the whole bundle and every part canonically', () => {
    const bytes = encodePreKeyBundle(bundle);
    expect(encodePreKeyBundle(decodePreKeyBundle(bytes))).toEqual(bytes);
    expect(decodePreKeyBundle(bytes)).toEqual(bundle);
    expect(decodeSignedPreKey(encodeSignedPreKey(bundle.signedPreKey))).toEqual(
      bundle.signedPreKey,
    );
    expect(encodeSignedPreKey(bundle.signedPreKey)).toHaveLength(100);
    expect(decodeKemPreKey(encodeKemPreKey(bundle.kemPreKey))).toEqual(bundle.kemPreKey);
    expect(encodeKemPreKey(bundle.kemPreKey)).toHaveLength(1252);
    const otk = bundle.oneTimePreKey;
    expect(otk).toBeDefined();
    if (otk) expect(decodeOneTimePreKey(encodeOneTimePreKey(otk))).toEqual(otk);
    expect(decodePublicIdentity(encodePublicIdentity(bundle.identity))).toEqual(bundle.identity);
    // A bundle reassembled from the relay's parts verifies like the original.
    const parts = assemblePreKeyBundle({
      identity: decodePublicIdentity(encodePublicIdentity(bundle.identity)),
      signedPreKey: decodeSignedPreKey(encodeSignedPreKey(bundle.signedPreKey)),
      kemPreKey: decodeKemPreKey(encodeKemPreKey(bundle.kemPreKey)),
    });
    expect(() => verifyPreKeyBundle(crypto, parts)).not.toThrow();
  });

  it('refuses truncated or extended encodings with INVALID_ARGUMENT', () => {
    const bytes = encodePreKeyBundle(bundle);
    expect(code(() => decodePreKeyBundle(bytes.subarray(0, bytes.length - 1)))).toBe(
      'INVALID_ARGUMENT',
    );
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    expect(code(() => decodePreKeyBundle(longer))).toBe('INVALID_ARGUMENT');
    expect(code(() => decodeSignedPreKey(new Uint8Array(99)))).toBe('INVALID_ARGUMENT');
    expect(code(() => decodePreKeyBundle(flip(bytes, 0)))).toBe('UNSUPPORTED_VERSION');
  });

  it('refuses a bad signature on any signed part (INVALID_SIGNATURE)', () => {
    const bad: PreKeyBundle[] = [
      {
        ...bundle,
        signedPreKey: {
          ...bundle.signedPreKey,
          signature: flip(bundle.signedPreKey.signature) as never,
        },
      },
      { ...bundle, signedPreKey: { ...bundle.signedPreKey, id: bundle.signedPreKey.id + 1 } },
      {
        ...bundle,
        kemPreKey: { ...bundle.kemPreKey, signature: flip(bundle.kemPreKey.signature, 5) as never },
      },
      {
        ...bundle,
        kemPreKey: { ...bundle.kemPreKey, publicKey: flip(bundle.kemPreKey.publicKey, 9) as never },
      },
      {
        ...bundle,
        identity: { ...bundle.identity, dhSignature: flip(bundle.identity.dhSignature) as never },
      },
      { ...bundle, identity: { ...bundle.identity, dhKey: flip(bundle.identity.dhKey) as never } },
    ];
    for (const b of bad)
      expect(code(() => verifyPreKeyBundle(crypto, b))).toBe('INVALID_SIGNATURE');
  });

  it('refuses validly signed but unusable keys at initiation (INVALID_KEY)', () => {
    const owner = makeDevice(crypto);
    const alice = makeDevice(crypto);
    // Signatures built from the layout in protocol.md §4.1: label ‖ kind ‖ u32 id ‖ key.
    const signed = (label: string, kind: number, id: number, key: Uint8Array) =>
      owner.identity.sign(
        crypto,
        new Uint8Array([...new TextEncoder().encode(label), kind, 0, 0, 0, id, ...key]),
      );
    const zeroPoint = new Uint8Array(32) as X25519PublicKey; // low-order X25519 point
    const spkBundle = {
      ...bundleOf(owner),
      signedPreKey: {
        id: 5,
        publicKey: zeroPoint,
        signature: signed('Parley v1 signed prekey', 2, 5, zeroPoint),
      },
    };
    const badKem = new Uint8Array(1184).fill(0xff) as MlKem768PublicKey; // coefficients >= q
    const kemBundle = {
      ...bundleOf(owner),
      kemPreKey: {
        id: 9,
        publicKey: badKem,
        signature: signed('Parley v1 kem prekey', 3, 9, badKem),
      },
    };
    for (const b of [spkBundle, kemBundle]) {
      const verified = verifyPreKeyBundle(crypto, b); // the signatures are valid
      expect(
        code(() =>
          initiateSession(
            ctx,
            { identity: alice.identity, bundle: verified },
            text('x'),
            meta(ALICE, BOB),
          ),
        ),
      ).toBe('INVALID_KEY');
    }
  });

  it('refuses a bundle whose identity key was swapped for another (wrong identity)', () => {
    const mallory = IdentityKeyPair.generate(crypto);
    const swapped = { ...bundle, identity: mallory.publicIdentity };
    expect(code(() => verifyPreKeyBundle(crypto, swapped))).toBe('INVALID_SIGNATURE');
  });
});

describe('rotation and replenishment rules', () => {
  it('applies the named constants at their boundaries', () => {
    const t0 = 1_000_000;
    expect(isRotationDue(t0, t0 + SIGNED_PREKEY_ROTATION_MS - 1)).toBe(false);
    expect(isRotationDue(t0, t0 + SIGNED_PREKEY_ROTATION_MS)).toBe(true);
    expect(isGraceOver(t0, t0 + SIGNED_PREKEY_GRACE_MS - 1)).toBe(false);
    expect(isGraceOver(t0, t0 + SIGNED_PREKEY_GRACE_MS)).toBe(true);
    expect(needsReplenishment(PREKEY_REPLENISH_BELOW)).toBe(false);
    expect(needsReplenishment(PREKEY_REPLENISH_BELOW - 1)).toBe(true);
  });
});

describe('responding to initial messages', () => {
  it('refuses an initiator whose identity differs from the trusted one (UNTRUSTED_IDENTITY)', async () => {
    const alice = makeDevice(crypto);
    const impostor = makeDevice(crypto);
    const bob = makeDevice(crypto);
    const identities = new MemoryIdentityStore(bob.identity);
    identities.saveTrustedIdentity(ALICE, alice.identity.publicIdentity.signingKey);
    const stores = { identity: identities, preKeys: bob.store, seen: new MemorySeenStore() };
    const bundle = verifyPreKeyBundle(crypto, bundleOf(bob));
    const fake = initiateSession(
      ctx,
      { identity: impostor.identity, bundle },
      text('hi'),
      meta(ALICE, BOB),
    );
    expect(
      await codeAsync(() => respondWithStores(ctx, stores, fake.envelope, meta(ALICE, BOB))),
    ).toBe('UNTRUSTED_IDENTITY');
    const real = initiateSession(
      ctx,
      { identity: alice.identity, bundle },
      text('hi'),
      meta(ALICE, BOB),
    );
    const r = await respondWithStores(ctx, stores, real.envelope, meta(ALICE, BOB));
    expect(untext(r.plaintext)).toBe('hi');
    expect(r.session.remoteIdentityKey).toEqual(alice.identity.publicIdentity.signingKey);
  });

  it('falls back to the last-resort keys when one-time prekeys are exhausted', async () => {
    const bob = makeDevice(crypto, { oneTime: 1, oneTimeKem: 1 });
    const stores = {
      identity: new MemoryIdentityStore(bob.identity),
      preKeys: bob.store,
      seen: new MemorySeenStore(),
    };
    const firstBundle = bundleOf(bob);
    expect(firstBundle.oneTimePreKey).toBeDefined();
    const first = makeDevice(crypto);
    const e1 = initiateSession(
      ctx,
      { identity: first.identity, bundle: verifyPreKeyBundle(crypto, firstBundle) },
      text('one'),
      meta(ALICE, BOB),
    );
    await respondWithStores(ctx, stores, e1.envelope, meta(ALICE, BOB));
    // The one-time keys are consumed; what is left is the last-resort pair.
    expect(bob.store.oneTime.size).toBe(0);
    expect([...bob.store.kem.values()].map((k) => k.kind)).toEqual(['last-resort']);
    const exhausted = bundleOf(bob);
    expect(exhausted.oneTimePreKey).toBeUndefined();
    const carol = { userId: 'carol', deviceId: 3 };
    const second = makeDevice(crypto);
    const e2 = initiateSession(
      ctx,
      { identity: second.identity, bundle: verifyPreKeyBundle(crypto, exhausted) },
      text('two'),
      meta(carol, BOB),
    );
    const r2 = await respondWithStores(ctx, stores, e2.envelope, meta(carol, BOB));
    expect(untext(r2.plaintext)).toBe('two');
    // A third party replaying the stale bundle names keys that are gone.
    const dave = { userId: 'dave', deviceId: 1 };
    const e3 = initiateSession(
      ctx,
      { identity: makeDevice(crypto).identity, bundle: verifyPreKeyBundle(crypto, firstBundle) },
      text('three'),
      meta(dave, BOB),
    );
    expect(
      await codeAsync(() => respondWithStores(ctx, stores, e3.envelope, meta(dave, BOB))),
    ).toBe('UNKNOWN_PREKEY');
  });

  it('refuses a replayed initial message, even after the session was terminated', async () => {
    const alice = makeDevice(crypto);
    const bob = makeDevice(crypto);
    const stores = {
      identity: new MemoryIdentityStore(bob.identity),
      preKeys: bob.store,
      seen: new MemorySeenStore(),
    };
    const e = initiateSession(
      ctx,
      { identity: alice.identity, bundle: verifyPreKeyBundle(crypto, bundleOf(bob)) },
      text('once'),
      meta(ALICE, BOB),
    );
    const r = await respondWithStores(ctx, stores, e.envelope, meta(ALICE, BOB));
    // Within the session the replay is a ratchet duplicate…
    expect(code(() => decrypt(ctx, r.session, e.envelope, meta(ALICE, BOB)))).toBe(
      'DUPLICATE_MESSAGE',
    );
    terminateSession(r.session);
    // …and without it the seen-set refuses it (last-resort keys would accept it again).
    expect(
      await codeAsync(() => respondWithStores(ctx, stores, e.envelope, meta(ALICE, BOB))),
    ).toBe('DUPLICATE_MESSAGE');
  });

  it('refuses prekey ids that do not match the keys given (UNKNOWN_PREKEY) and consumes nothing on failure', () => {
    const alice = makeDevice(crypto);
    const bob = makeDevice(crypto, { oneTime: 2 });
    const bundle = verifyPreKeyBundle(crypto, bundleOf(bob));
    const e = initiateSession(
      ctx,
      { identity: alice.identity, bundle },
      text('x'),
      meta(ALICE, BOB),
    );
    const spk = bob.store.signed.get(1)!;
    const kem = bob.store.kem.get(1)!;
    const otks = [...bob.store.oneTime.values()];
    expect(
      code(() =>
        respondToPreKeyMessage(
          ctx,
          {
            identity: bob.identity,
            keys: { signedPreKey: spk, kemPreKey: kem, oneTimePreKey: otks[1] },
          },
          e.envelope,
          meta(ALICE, BOB),
        ),
      ),
    ).toBe('UNKNOWN_PREKEY');
    expect(
      code(() =>
        respondToPreKeyMessage(
          ctx,
          { identity: bob.identity, keys: { signedPreKey: spk, kemPreKey: kem } },
          e.envelope,
          meta(ALICE, BOB),
        ),
      ),
    ).toBe('UNKNOWN_PREKEY');
    // A responder with the wrong identity derives other keys and cannot read it.
    const other = IdentityKeyPair.generate(crypto);
    expect(
      code(() =>
        respondToPreKeyMessage(
          ctx,
          { identity: other, keys: { signedPreKey: spk, kemPreKey: kem, oneTimePreKey: otks[0] } },
          e.envelope,
          meta(ALICE, BOB),
        ),
      ),
    ).toBe('INVALID_MESSAGE');
    const ok = respondToPreKeyMessage(
      ctx,
      {
        identity: bob.identity,
        keys: { signedPreKey: spk, kemPreKey: kem, oneTimePreKey: otks[0] },
      },
      e.envelope,
      meta(ALICE, BOB),
    );
    expect(untext(ok.plaintext)).toBe('x');
  });

  it('keeps sending the handshake until the first reply, so any early message can start the session', () => {
    const alice = makeDevice(crypto);
    const bob = makeDevice(crypto);
    const bundle = verifyPreKeyBundle(crypto, bundleOf(bob));
    const i = initiateSession(
      ctx,
      { identity: alice.identity, bundle },
      text('m0'),
      meta(ALICE, BOB),
    );
    const e1 = encrypt(ctx, i.session, text('m1'), meta(ALICE, BOB));
    expect(e1.session.awaitingReply).toBe(true);
    expect(e1.envelope[0]).toBe(1);
    // m0 is lost; m1 alone establishes the session.
    const keys = { signedPreKey: bob.store.signed.get(1)!, kemPreKey: bob.store.kem.get(1)! };
    const r = respondToPreKeyMessage(
      ctx,
      { identity: bob.identity, keys },
      e1.envelope,
      meta(ALICE, BOB),
    );
    expect(untext(r.plaintext)).toBe('m1');
    const reply = encrypt(ctx, r.session, text('r'), meta(BOB, ALICE));
    const a = decrypt(ctx, e1.session, reply.envelope, meta(BOB, ALICE));
    expect(a.session.awaitingReply).toBe(false);
    const e2 = encrypt(ctx, a.session, text('m2'), meta(ALICE, BOB));
    expect(e2.envelope[0]).toBe(2);
    expect(untext(decrypt(ctx, reply.session, e2.envelope, meta(ALICE, BOB)).plaintext)).toBe('m2');
  });
});
