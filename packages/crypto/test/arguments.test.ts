/**
 * Input errors name the argument and the expected length, identically on both
 * providers; branded key types keep public keys out of secret-key parameters (checked
 * by the type checker through the `@ts-expect-error` lines below, which fail
 * `tsc -p tsconfig.test.json` if they ever stop being errors).
 */
import {
  asAeadKey,
  asEd25519PublicKey,
  asX25519PublicKey,
  createPortableCrypto,
  CryptoError,
  type CryptoProvider,
  type SharedSecret,
} from '@parley/crypto';
import { createNodeCrypto } from '@parley/crypto/node';
import { describe, expect, it } from 'vitest';

const providers: readonly CryptoProvider[] = [createNodeCrypto(), createPortableCrypto()];

const b = (n: number) => new Uint8Array(n);

/** [description, call, code, exact message] */
const CASES: ReadonlyArray<
  readonly [string, (c: CryptoProvider) => unknown, CryptoError['code'], string]
> = [
  [
    'ed25519.sign short key',
    (c) => c.ed25519.sign(b(31) as never, b(1)),
    'INVALID_LENGTH',
    'secretKey: expected 32 bytes, got 31',
  ],
  [
    'ed25519.keyPairFromSecret long key',
    (c) => c.ed25519.keyPairFromSecret(b(33) as never),
    'INVALID_LENGTH',
    'secretKey: expected 32 bytes, got 33',
  ],
  [
    'ed25519.verify short public key',
    (c) => c.ed25519.verify(b(31) as never, b(0), b(64) as never),
    'INVALID_LENGTH',
    'publicKey: expected 32 bytes, got 31',
  ],
  [
    'ed25519.verify long signature',
    (c) => c.ed25519.verify(b(32) as never, b(0), b(65) as never),
    'INVALID_LENGTH',
    'signature: expected 64 bytes, got 65',
  ],
  [
    'x25519.dh short secret',
    (c) => c.x25519.dh(b(16) as never, b(32) as never),
    'INVALID_LENGTH',
    'secretKey: expected 32 bytes, got 16',
  ],
  [
    'x25519.dh long public',
    (c) => c.x25519.dh(b(32) as never, b(64) as never),
    'INVALID_LENGTH',
    'publicKey: expected 32 bytes, got 64',
  ],
  [
    'mlkem768.keyPairFromSeed short seed',
    (c) => c.mlkem768.keyPairFromSeed(b(32)),
    'INVALID_LENGTH',
    'seed: expected 64 bytes, got 32',
  ],
  [
    'mlkem768.encapsulate short key',
    (c) => c.mlkem768.encapsulate(b(1183) as never),
    'INVALID_LENGTH',
    'publicKey: expected 1184 bytes, got 1183',
  ],
  [
    'mlkem768.decapsulate long ciphertext',
    (c) => c.mlkem768.decapsulate(b(1089) as never, b(2400) as never),
    'INVALID_LENGTH',
    'ciphertext: expected 1088 bytes, got 1089',
  ],
  [
    'mlkem768.decapsulate short secret',
    (c) => c.mlkem768.decapsulate(b(1088) as never, b(2399) as never),
    'INVALID_LENGTH',
    'secretKey: expected 2400 bytes, got 2399',
  ],
  [
    'aes256gcm.encrypt AES-128 key',
    (c) => c.aes256gcm.encrypt(b(16) as never, b(12), b(0)),
    'INVALID_LENGTH',
    'key: expected 32 bytes, got 16',
  ],
  [
    'aes256gcm.decrypt long nonce',
    (c) => c.aes256gcm.decrypt(b(32) as never, b(16), b(16)),
    'INVALID_LENGTH',
    'nonce: expected 12 bytes, got 16',
  ],
  [
    'chacha20poly1305.encrypt 8-byte nonce',
    (c) => c.chacha20poly1305.encrypt(b(32) as never, b(8), b(0)),
    'INVALID_LENGTH',
    'nonce: expected 12 bytes, got 8',
  ],
  [
    'xchacha20poly1305.encrypt 12-byte nonce',
    (c) => c.xchacha20poly1305.encrypt(b(32) as never, b(12), b(0)),
    'INVALID_LENGTH',
    'nonce: expected 24 bytes, got 12',
  ],
  [
    'hkdfSha256 too long',
    (c) => c.hkdfSha256(b(32), b(0), b(0), 8161),
    'INVALID_ARGUMENT',
    'length: HKDF-SHA256 output must be 0..8160 bytes, got 8161',
  ],
  [
    'hkdfSha256 fractional',
    (c) => c.hkdfSha256(b(32), b(0), b(0), 1.5),
    'INVALID_ARGUMENT',
    'length: HKDF-SHA256 output must be 0..8160 bytes, got 1.5',
  ],
];

describe.each(providers)('$name provider: argument errors', (c) => {
  it.each(CASES)('%s', (_, call, code, message) => {
    let caught: unknown;
    try {
      call(c);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(CryptoError);
    expect((caught as CryptoError).code).toBe(code);
    expect((caught as CryptoError).message).toBe(message);
  });

  it('draws from the platform CSPRNG by default', () => {
    const a = c.randomBytes(32);
    const b2 = c.randomBytes(32);
    expect(a).toBeInstanceOf(Uint8Array);
    expect(a.length).toBe(32);
    // 2^-256 chance of a false failure; a constant or zero source fails at once.
    expect(Buffer.from(a).equals(Buffer.from(b2))).toBe(false);
    expect(c.randomBytes(0).length).toBe(0);
    expect(c.randomBytes(70_000).length).toBe(70_000);
  });

  it('an AEAD failure says only that authentication failed', () => {
    const key = asAeadKey(c.randomBytes(32));
    const sealed = c.aes256gcm.encrypt(key, b(12), b(10));
    sealed[0] = (sealed[0] as number) ^ 1;
    expect(() => c.aes256gcm.decrypt(key, b(12), sealed)).toThrow(
      new CryptoError('AUTH_FAILED', 'authentication failed'),
    );
    // Shorter than a tag: still only "authentication failed", never a length detail.
    expect(() => c.aes256gcm.decrypt(key, b(12), b(5))).toThrow(/^authentication failed$/);
  });
});

describe('branded key types', () => {
  it('the as* constructors check length and name the argument', () => {
    expect(() => asX25519PublicKey(b(31), 'peerKey')).toThrow('peerKey: expected 32 bytes, got 31');
    expect(() => asEd25519PublicKey(b(33))).toThrow('publicKey: expected 32 bytes, got 33');
  });

  it('public keys cannot be passed where secret keys belong (type-level)', () => {
    const c = createPortableCrypto();
    const x = c.x25519.generateKeyPair();
    const ed = c.ed25519.generateKeyPair();
    const mismatches = [
      // @ts-expect-error an X25519 public key is not an X25519 secret key
      () => c.x25519.dh(x.publicKey, x.publicKey),
      // @ts-expect-error an Ed25519 secret key is not an X25519 secret key
      () => c.x25519.dh(ed.secretKey, x.publicKey),
      // @ts-expect-error an Ed25519 public key is not a signing key
      () => c.ed25519.sign(ed.publicKey, b(1)),
      // @ts-expect-error raw bytes are not a key until an as* constructor checks them
      () => c.aes256gcm.encrypt(b(32), b(12), b(0)),
      // @ts-expect-error a DH shared secret is key material, not an AEAD key
      () => c.aes256gcm.encrypt(c.x25519.dh(x.secretKey, x.publicKey) as SharedSecret, b(12), b(0)),
    ];
    // At run time all of these are just bytes of the right size; only the compiler
    // stands between them and misuse, which is the point of the brand.
    for (const m of mismatches) expect(m).not.toThrow();
  });
});
