/**
 * Cross-check: the Node and portable providers agree on random inputs for every
 * primitive, including the rejections (tampered AEAD input, low-order X25519 keys,
 * invalid signatures), and seeded providers generate the same keys.
 */
import {
  asAeadKey,
  asEd25519PublicKey,
  asEd25519SecretKey,
  asEd25519Signature,
  asMlKem768Ciphertext,
  asX25519PublicKey,
  asX25519SecretKey,
  createPortableCrypto,
  createSeededRandom,
  CryptoError,
  HKDF_SHA256_MAX_BYTES,
  toHex,
  type Aead,
} from '@parley/crypto';
import { createNodeCrypto } from '@parley/crypto/node';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

const node = createNodeCrypto();
const portable = createPortableCrypto();

/** Runs per property: enough to cover odd lengths, small enough for ~1 s per primitive. */
const RUNS = 150;
/** ML-KEM is the same noble code on both sides; fewer runs still catch wiring errors. */
const KEM_RUNS = 25;

const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });
const exact = (n: number) => bytes(n, n);

/** What a call returned or threw, in a form two providers can be compared on. */
function outcome(f: () => Uint8Array | boolean): string {
  try {
    const r = f();
    return typeof r === 'boolean' ? String(r) : toHex(r);
  } catch (e) {
    return e instanceof CryptoError ? `${e.code}: ${e.message}` : `foreign error: ${String(e)}`;
  }
}

function flipBit(b: Uint8Array, bit: number): Uint8Array {
  const out = b.slice();
  const i = bit % (out.length * 8);
  out[i >> 3] = (out[i >> 3] as number) ^ (1 << (i & 7));
  return out;
}

describe('node and portable agree', () => {
  it('SHA-256, SHA-512, HMAC-SHA256', () => {
    fc.assert(
      fc.property(bytes(0, 300), bytes(0, 2000), (key, data) => {
        expect(toHex(node.sha256(data))).toBe(toHex(portable.sha256(data)));
        expect(toHex(node.sha512(data))).toBe(toHex(portable.sha512(data)));
        expect(toHex(node.hmacSha256(key, data))).toBe(toHex(portable.hmacSha256(key, data)));
      }),
      { numRuns: RUNS },
    );
  });

  it('HKDF-SHA256, including out-of-range lengths', () => {
    fc.assert(
      fc.property(
        bytes(0, 100),
        bytes(0, 100),
        bytes(0, 100),
        fc.integer({ min: -2, max: HKDF_SHA256_MAX_BYTES + 2 }),
        (ikm, salt, info, length) => {
          const a = outcome(() => node.hkdfSha256(ikm, salt, info, length));
          expect(a).toBe(outcome(() => portable.hkdfSha256(ikm, salt, info, length)));
          const inRange = length >= 0 && length <= HKDF_SHA256_MAX_BYTES;
          expect(a.startsWith('INVALID_ARGUMENT: length:')).toBe(!inRange);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('Ed25519 keys, signatures, and verification of genuine and tampered signatures', () => {
    fc.assert(
      fc.property(exact(32), bytes(0, 500), fc.nat(), (seed, msg, bit) => {
        const sk = asEd25519SecretKey(seed);
        const a = node.ed25519.keyPairFromSecret(sk);
        const b = portable.ed25519.keyPairFromSecret(sk);
        expect(toHex(a.publicKey)).toBe(toHex(b.publicKey));
        const sig = node.ed25519.sign(sk, msg);
        expect(toHex(sig)).toBe(toHex(portable.ed25519.sign(sk, msg)));
        expect(node.ed25519.verify(a.publicKey, msg, sig)).toBe(true);
        expect(portable.ed25519.verify(a.publicKey, msg, sig)).toBe(true);
        const badSig = asEd25519Signature(flipBit(sig, bit));
        const badKey = asEd25519PublicKey(flipBit(a.publicKey, bit));
        for (const [pk, s] of [
          [a.publicKey, badSig],
          [badKey, sig],
        ] as const) {
          const verdict = node.ed25519.verify(pk, msg, s);
          expect(verdict).toBe(portable.ed25519.verify(pk, msg, s));
          expect(verdict).toBe(false);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('Ed25519 verification of arbitrary bytes (non-points, non-canonical S)', () => {
    fc.assert(
      fc.property(exact(32), bytes(0, 64), exact(64), (pk, msg, sig) => {
        const p = asEd25519PublicKey(pk);
        const s = asEd25519Signature(sig);
        expect(node.ed25519.verify(p, msg, s)).toBe(portable.ed25519.verify(p, msg, s));
      }),
      { numRuns: RUNS },
    );
  });

  it('X25519 keys and DH, also against arbitrary u-coordinates', () => {
    fc.assert(
      fc.property(exact(32), exact(32), exact(32), (s1, s2, u) => {
        const a = node.x25519.keyPairFromSecret(asX25519SecretKey(s1));
        const b = portable.x25519.keyPairFromSecret(asX25519SecretKey(s2));
        expect(toHex(a.publicKey)).toBe(
          toHex(portable.x25519.keyPairFromSecret(a.secretKey).publicKey),
        );
        const ab = node.x25519.dh(a.secretKey, b.publicKey);
        expect(toHex(ab)).toBe(toHex(portable.x25519.dh(b.secretKey, a.publicKey)));
        const pu = asX25519PublicKey(u);
        expect(outcome(() => node.x25519.dh(a.secretKey, pu))).toBe(
          outcome(() => portable.x25519.dh(a.secretKey, pu)),
        );
      }),
      { numRuns: RUNS },
    );
  });

  it('X25519 low-order points are LOW_ORDER_POINT on both', () => {
    // u = 0 and u = 1 have order dividing 8 on every scalar (RFC 7748 §6.1 rationale).
    const lowOrder = [new Uint8Array(32), Uint8Array.from({ length: 32 }, (_, i) => +(i === 0))];
    fc.assert(
      fc.property(exact(32), fc.constantFrom(...lowOrder), (s, u) => {
        const sk = asX25519SecretKey(s);
        const pk = asX25519PublicKey(u);
        const expected = 'LOW_ORDER_POINT: publicKey: low-order X25519 point';
        expect(outcome(() => node.x25519.dh(sk, pk))).toBe(expected);
        expect(outcome(() => portable.x25519.dh(sk, pk))).toBe(expected);
      }),
      { numRuns: 20 },
    );
  });

  it('ML-KEM-768 keygen from seed, encapsulation with seeded randomness, decapsulation', () => {
    fc.assert(
      fc.property(exact(64), exact(32), fc.nat(), (seed, rngSeed, bit) => {
        const a = node.mlkem768.keyPairFromSeed(seed);
        const b = portable.mlkem768.keyPairFromSeed(seed);
        expect(toHex(a.publicKey)).toBe(toHex(b.publicKey));
        expect(toHex(a.secretKey)).toBe(toHex(b.secretKey));
        const ea = createNodeCrypto({ random: createSeededRandom(rngSeed) }).mlkem768.encapsulate(
          a.publicKey,
        );
        const eb = createPortableCrypto({
          random: createSeededRandom(rngSeed),
        }).mlkem768.encapsulate(b.publicKey);
        expect(toHex(ea.ciphertext)).toBe(toHex(eb.ciphertext));
        expect(toHex(ea.sharedSecret)).toBe(toHex(eb.sharedSecret));
        expect(toHex(portable.mlkem768.decapsulate(ea.ciphertext, a.secretKey))).toBe(
          toHex(ea.sharedSecret),
        );
        // Implicit rejection: a tampered ciphertext yields the same pseudo-random key
        // on both, and not the real one.
        const bad = asMlKem768Ciphertext(flipBit(ea.ciphertext, bit));
        const ka = node.mlkem768.decapsulate(bad, a.secretKey);
        expect(toHex(ka)).toBe(toHex(portable.mlkem768.decapsulate(bad, a.secretKey)));
        expect(toHex(ka)).not.toBe(toHex(ea.sharedSecret));
      }),
      { numRuns: KEM_RUNS },
    );
  });

  const aeads: ReadonlyArray<[string, Aead, Aead]> = [
    ['AES-256-GCM', node.aes256gcm, portable.aes256gcm],
    ['ChaCha20-Poly1305', node.chacha20poly1305, portable.chacha20poly1305],
    ['XChaCha20-Poly1305', node.xchacha20poly1305, portable.xchacha20poly1305],
  ];

  it.each(aeads)('%s: same ciphertext, cross decryption, tamper -> AUTH_FAILED', (_, n, p) => {
    expect(n.nonceBytes).toBe(p.nonceBytes);
    fc.assert(
      fc.property(
        exact(32),
        exact(n.nonceBytes),
        bytes(0, 1500),
        bytes(0, 64),
        fc.nat(),
        fc.constantFrom('ciphertext', 'aad', 'truncate', 'nonce'),
        (k, nonce, pt, aad, bit, how) => {
          const key = asAeadKey(k);
          const sealed = n.encrypt(key, nonce, pt, aad);
          expect(toHex(sealed)).toBe(toHex(p.encrypt(key, nonce, pt, aad)));
          expect(toHex(p.decrypt(key, nonce, sealed, aad))).toBe(toHex(pt));
          expect(toHex(n.decrypt(key, nonce, sealed, aad))).toBe(toHex(pt));
          let args: [Uint8Array, Uint8Array, Uint8Array] = [nonce, sealed, aad];
          if (how === 'ciphertext') args = [nonce, flipBit(sealed, bit), aad];
          if (how === 'aad')
            args = [nonce, sealed, aad.length ? flipBit(aad, bit) : Uint8Array.of(0)];
          if (how === 'truncate') args = [nonce, sealed.subarray(0, bit % sealed.length), aad];
          if (how === 'nonce') args = [flipBit(nonce, bit), sealed, aad];
          const expected = 'AUTH_FAILED: authentication failed';
          expect(outcome(() => n.decrypt(key, ...args))).toBe(expected);
          expect(outcome(() => p.decrypt(key, ...args))).toBe(expected);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('seeded providers generate identical key pairs and draws', () => {
    fc.assert(
      fc.property(exact(32), (seed) => {
        const a = createNodeCrypto({ random: createSeededRandom(seed) });
        const b = createPortableCrypto({ random: createSeededRandom(seed) });
        expect(toHex(a.ed25519.generateKeyPair().publicKey)).toBe(
          toHex(b.ed25519.generateKeyPair().publicKey),
        );
        expect(toHex(a.x25519.generateKeyPair().secretKey)).toBe(
          toHex(b.x25519.generateKeyPair().secretKey),
        );
        expect(toHex(a.mlkem768.generateKeyPair().publicKey)).toBe(
          toHex(b.mlkem768.generateKeyPair().publicKey),
        );
        expect(toHex(a.randomBytes(48))).toBe(toHex(b.randomBytes(48)));
      }),
      { numRuns: 10 },
    );
  });
});
