/**
 * ML-KEM-768 has two implementations behind the providers: liboqs in WebAssembly for
 * speed and @noble for seeded use. These tests prove that the fast one really is in
 * use where it should be (so a failed WebAssembly load cannot hide behind the noble
 * fallback, which passes the same vectors), that seeded providers never reach it for
 * key generation or encapsulation (so published protocol vectors stay reproducible),
 * and that the two agree on random and tampered inputs.
 */
import {
  asMlKem768Ciphertext,
  asMlKem768SecretKey,
  createPortableCrypto,
  createSeededRandom,
  CryptoError,
  mlkem768Implementation,
  toHex,
  type CryptoProvider,
  type ProviderOptions,
} from '@parley/crypto';
import { createNodeCrypto } from '@parley/crypto/node';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { liboqsMlKem768 } from '../src/portable/mlkem-liboqs.js';
import { createNobleMlKem768 } from '../src/portable/mlkem.js';

const oqs = liboqsMlKem768 ?? expect.fail('liboqs ML-KEM-768 did not load under Node');
const noble = createNobleMlKem768(createSeededRandom(new Uint8Array(32).fill(7)));

const PROVIDERS: ReadonlyArray<{
  name: string;
  make: (o?: ProviderOptions) => CryptoProvider;
}> = [
  { name: 'node', make: (o) => createNodeCrypto(o) },
  { name: 'portable', make: (o) => createPortableCrypto(o) },
];

function spyOnLiboqs() {
  return {
    keypair: vi.spyOn(oqs, 'generateKeyPair'),
    encaps: vi.spyOn(oqs, 'encapsulate'),
    decaps: vi.spyOn(oqs, 'decapsulate'),
  };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('which ML-KEM-768 implementation serves which call', () => {
  it('liboqs (WebAssembly) loaded and is the reported implementation', () => {
    expect(mlkem768Implementation).toBe('liboqs');
  });

  it.each(PROVIDERS)(
    '$name, unseeded: keygen, encapsulation and decapsulation run in liboqs',
    ({ make }) => {
      const spy = spyOnLiboqs();
      const c = make();
      const kp = c.mlkem768.generateKeyPair();
      const enc = c.mlkem768.encapsulate(kp.publicKey);
      const k = c.mlkem768.decapsulate(enc.ciphertext, kp.secretKey);
      expect(toHex(k)).toBe(toHex(enc.sharedSecret));
      expect([spy.keypair, spy.encaps, spy.decaps].map((s) => s.mock.calls.length)).toEqual([
        1, 1, 1,
      ]);
      // A derivation from a seed has no liboqs-js entry point: it stays on noble.
      c.mlkem768.keyPairFromSeed(new Uint8Array(64));
      expect(spy.keypair).toHaveBeenCalledTimes(1);
    },
  );

  it.each(PROVIDERS)(
    '$name, seeded: keygen and encapsulation draw from the source (noble); decapsulation runs in liboqs',
    ({ make }) => {
      const spy = spyOnLiboqs();
      const draws: number[] = [];
      const seeded = createSeededRandom(new Uint8Array(32).fill(1));
      const c = make({
        random: (n) => {
          draws.push(n);
          return seeded(n);
        },
      });
      const kp = c.mlkem768.generateKeyPair();
      const enc = c.mlkem768.encapsulate(kp.publicKey);
      expect(draws).toEqual([64, 32]);
      expect(spy.keypair).not.toHaveBeenCalled();
      expect(spy.encaps).not.toHaveBeenCalled();
      // Same seed, same keys and ciphertext as noble alone: seeded output is unchanged.
      const again = createNobleMlKem768(createSeededRandom(new Uint8Array(32).fill(1)));
      const kp2 = again.generateKeyPair();
      expect(toHex(kp2.secretKey)).toBe(toHex(kp.secretKey));
      expect(toHex(again.encapsulate(kp2.publicKey).ciphertext)).toBe(toHex(enc.ciphertext));
      expect(toHex(c.mlkem768.decapsulate(enc.ciphertext, kp.secretKey))).toBe(
        toHex(enc.sharedSecret),
      );
      expect(spy.decaps).toHaveBeenCalledTimes(1);
    },
  );
});

describe('liboqs and noble agree', () => {
  it('on keys, encapsulations, tampered ciphertexts and corrupted decapsulation keys', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 64, maxLength: 64 }),
        fc.nat({ max: 1087 }),
        fc.integer({ min: 1, max: 255 }),
        fc.nat({ max: 2399 }),
        (seed, at, flip, dkAt) => {
          // A liboqs key pair works with noble and the other way round.
          const ours = oqs.generateKeyPair();
          const theirs = noble.keyPairFromSeed(seed);
          for (const kp of [ours, theirs]) {
            const fromOqs = oqs.encapsulate(kp.publicKey);
            const fromNoble = noble.encapsulate(kp.publicKey as never);
            for (const e of [
              { c: fromOqs.ciphertext, k: fromOqs.sharedSecret },
              { c: fromNoble.ciphertext, k: fromNoble.sharedSecret },
            ]) {
              const ct = asMlKem768Ciphertext(e.c);
              const dk = asMlKem768SecretKey(kp.secretKey);
              expect(toHex(oqs.decapsulate(ct, dk))).toBe(toHex(e.k));
              expect(toHex(noble.decapsulate(ct, dk))).toBe(toHex(e.k));
              // Implicit rejection: the same pseudo-random key from both.
              const bad = ct.slice();
              bad[at] = (bad[at] as number) ^ flip;
              const rejected = toHex(oqs.decapsulate(bad, dk));
              expect(rejected).not.toBe(toHex(e.k));
              expect(toHex(noble.decapsulate(asMlKem768Ciphertext(bad), dk))).toBe(rejected);
            }
          }
          // A corrupted dk: both refuse it, or both accept it with the same result
          // (bytes outside ek and H(ek) are not covered by the FIPS 203 §7.3 check).
          const dk = ours.secretKey.slice();
          dk[dkAt] = (dk[dkAt] as number) ^ flip;
          const ct = asMlKem768Ciphertext(oqs.encapsulate(ours.publicKey).ciphertext);
          const viaProvider = createPortableCrypto().mlkem768;
          const outcome = (f: () => Uint8Array) => {
            try {
              return toHex(f());
            } catch (e) {
              return e instanceof CryptoError ? e.code : String(e);
            }
          };
          expect(outcome(() => viaProvider.decapsulate(ct, asMlKem768SecretKey(dk)))).toBe(
            outcome(() => noble.decapsulate(ct, asMlKem768SecretKey(dk))),
          );
        },
      ),
      { numRuns: 15 },
    );
  });
});
