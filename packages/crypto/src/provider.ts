/**
 * The interface every primitive is reached through. Two implementations exist with
 * identical behaviour, proven by the same known-answer tests and a cross-check
 * property test:
 *  - `createPortableCrypto()` (`@parley/crypto`): @noble/* and liboqs's ML-KEM in
 *    WebAssembly, runs in browsers and Node;
 *  - `createNodeCrypto()` (`@parley/crypto/node`): node:crypto (OpenSSL) where Node 20
 *    has the primitive, the portable modules where it does not (ML-KEM, XChaCha20).
 *
 * When a random source is given, all randomness, including key generation and KEM
 * encapsulation, is drawn from it, so a provider built with a seeded generator is fully
 * deterministic (simulators, fuzzers and published protocol vectors depend on that).
 * Without one, the platform CSPRNG is used, and key pairs and encapsulations may be
 * made inside OpenSSL (the Node provider's curve keys) or liboqs (ML-KEM, both
 * providers) from that same CSPRNG, which is faster than importing a seed.
 */
import type {
  AeadKey,
  Ed25519KeyPair,
  Ed25519PublicKey,
  Ed25519SecretKey,
  Ed25519Signature,
  MlKem768Ciphertext,
  MlKem768Encapsulation,
  MlKem768KeyPair,
  MlKem768PublicKey,
  MlKem768SecretKey,
  SharedSecret,
  X25519KeyPair,
  X25519PublicKey,
  X25519SecretKey,
} from './keys.js';

/** Source of cryptographically secure random bytes (or a seeded one in tests). */
export type RandomSource = (length: number) => Uint8Array;

export interface Ed25519 {
  /** New key pair; the 32-byte seed comes from the provider's random source. */
  generateKeyPair(): Ed25519KeyPair;
  /** Deterministic: RFC 8032 public key of a 32-byte seed. */
  keyPairFromSecret(secretKey: Ed25519SecretKey): Ed25519KeyPair;
  sign(secretKey: Ed25519SecretKey, message: Uint8Array): Ed25519Signature;
  /**
   * RFC 8032 strict verification (canonical S, canonical point encodings, cofactorless
   * equation as OpenSSL does). Returns false for any invalid input of correct length;
   * throws only on wrong argument lengths.
   */
  verify(publicKey: Ed25519PublicKey, message: Uint8Array, signature: Ed25519Signature): boolean;
}

export interface X25519 {
  generateKeyPair(): X25519KeyPair;
  keyPairFromSecret(secretKey: X25519SecretKey): X25519KeyPair;
  /**
   * RFC 7748 X25519. Throws `LOW_ORDER_POINT` when the result is all zeros (the peer's
   * key is of low order), as RFC 7748 §6.1 permits and Signal-class protocols require.
   */
  dh(secretKey: X25519SecretKey, publicKey: X25519PublicKey): SharedSecret;
}

export interface MlKem768 {
  /** New key pair from a 64-byte seed drawn from the random source. */
  generateKeyPair(): MlKem768KeyPair;
  /** FIPS 203 ML-KEM.KeyGen_internal(d, z) with seed = d ‖ z (64 bytes). */
  keyPairFromSeed(seed: Uint8Array): MlKem768KeyPair;
  /**
   * FIPS 203 ML-KEM.Encaps, including the encapsulation-key modulus check
   * (throws `INVALID_KEY` for a key with a coefficient >= q).
   */
  encapsulate(publicKey: MlKem768PublicKey): MlKem768Encapsulation;
  /** FIPS 203 ML-KEM.Decaps (implicit rejection: a bad ciphertext yields a pseudo-random key). */
  decapsulate(ciphertext: MlKem768Ciphertext, secretKey: MlKem768SecretKey): SharedSecret;
}

/** An AEAD with a fixed 32-byte key and a 16-byte tag appended to the ciphertext. */
export interface Aead {
  readonly nonceBytes: number;
  /** Returns ciphertext ‖ tag. */
  encrypt(key: AeadKey, nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Uint8Array;
  /** Takes ciphertext ‖ tag; throws `AUTH_FAILED` (and nothing more specific) on any mismatch. */
  decrypt(key: AeadKey, nonce: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Uint8Array;
}

export interface CryptoProvider {
  /** 'node' or 'portable', for benchmarks and test names. */
  readonly name: string;
  randomBytes(length: number): Uint8Array;
  sha256(data: Uint8Array): Uint8Array;
  sha512(data: Uint8Array): Uint8Array;
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
  /** RFC 5869 HKDF-SHA256 (extract + expand). An empty salt means HashLen zero bytes. */
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;
  readonly ed25519: Ed25519;
  readonly x25519: X25519;
  readonly mlkem768: MlKem768;
  /** AES-256-GCM, 12-byte nonce: per-message keys, where nonces may be derived. */
  readonly aes256gcm: Aead;
  /** ChaCha20-Poly1305 (RFC 8439), 12-byte nonce. */
  readonly chacha20poly1305: Aead;
  /** XChaCha20-Poly1305, 24-byte nonce: data at rest and anything with random nonces. */
  readonly xchacha20poly1305: Aead;
}

export interface ProviderOptions {
  /**
   * Source of every random draw, key generation included. Defaults to the platform
   * CSPRNG (`crypto.getRandomValues` in the portable provider, OpenSSL's in the Node one).
   */
  readonly random?: RandomSource;
}
