/**
 * Branded byte types. A brand costs nothing at run time but makes the compiler refuse
 * an X25519 public key where a secret key, an Ed25519 key or a KEM key belongs.
 * Values are made by the provider (keygen, dh, …) or by the `as*` constructors below,
 * which check the length and are the only sanctioned casts from raw bytes.
 */
import { checkLength } from './errors.js';

declare const brand: unique symbol;
export type Brand<T, B extends string> = T & { readonly [brand]: B };

/** Byte lengths, named so that layouts in the protocol spec can cite them. */
export const ED25519_PUBLIC_KEY_BYTES = 32;
export const ED25519_SECRET_KEY_BYTES = 32; // RFC 8032 seed, not the expanded key
export const ED25519_SIGNATURE_BYTES = 64;
export const X25519_KEY_BYTES = 32;
export const MLKEM768_PUBLIC_KEY_BYTES = 1184;
export const MLKEM768_SECRET_KEY_BYTES = 2400; // FIPS 203 expanded decapsulation key
export const MLKEM768_SEED_BYTES = 64; // d ‖ z
export const MLKEM768_CIPHERTEXT_BYTES = 1088;
export const MLKEM768_SHARED_SECRET_BYTES = 32;
export const AEAD_KEY_BYTES = 32;
export const AES_GCM_NONCE_BYTES = 12;
export const XCHACHA_NONCE_BYTES = 24;
export const AEAD_TAG_BYTES = 16;
export const SHA256_BYTES = 32;
/** RFC 5869 §2.3: L <= 255 * HashLen. */
export const HKDF_SHA256_MAX_BYTES = 255 * SHA256_BYTES;

export type Ed25519PublicKey = Brand<Uint8Array, 'Ed25519PublicKey'>;
export type Ed25519SecretKey = Brand<Uint8Array, 'Ed25519SecretKey'>;
export type Ed25519Signature = Brand<Uint8Array, 'Ed25519Signature'>;
export type X25519PublicKey = Brand<Uint8Array, 'X25519PublicKey'>;
export type X25519SecretKey = Brand<Uint8Array, 'X25519SecretKey'>;
export type MlKem768PublicKey = Brand<Uint8Array, 'MlKem768PublicKey'>;
export type MlKem768SecretKey = Brand<Uint8Array, 'MlKem768SecretKey'>;
export type MlKem768Ciphertext = Brand<Uint8Array, 'MlKem768Ciphertext'>;
/** Output of DH or KEM: secret input keying material, never a key by itself. */
export type SharedSecret = Brand<Uint8Array, 'SharedSecret'>;
/** A 32-byte symmetric AEAD key (AES-256-GCM or XChaCha20-Poly1305). */
export type AeadKey = Brand<Uint8Array, 'AeadKey'>;

export interface Ed25519KeyPair {
  readonly publicKey: Ed25519PublicKey;
  readonly secretKey: Ed25519SecretKey;
}
export interface X25519KeyPair {
  readonly publicKey: X25519PublicKey;
  readonly secretKey: X25519SecretKey;
}
export interface MlKem768KeyPair {
  readonly publicKey: MlKem768PublicKey;
  readonly secretKey: MlKem768SecretKey;
}
export interface MlKem768Encapsulation {
  readonly ciphertext: MlKem768Ciphertext;
  readonly sharedSecret: SharedSecret;
}

function brandAs<T extends Uint8Array>(arg: string, bytes: Uint8Array, len: number): T {
  checkLength(arg, bytes, len);
  return bytes as T;
}

export const asEd25519PublicKey = (b: Uint8Array, arg = 'publicKey'): Ed25519PublicKey =>
  brandAs(arg, b, ED25519_PUBLIC_KEY_BYTES);
export const asEd25519SecretKey = (b: Uint8Array, arg = 'secretKey'): Ed25519SecretKey =>
  brandAs(arg, b, ED25519_SECRET_KEY_BYTES);
export const asEd25519Signature = (b: Uint8Array, arg = 'signature'): Ed25519Signature =>
  brandAs(arg, b, ED25519_SIGNATURE_BYTES);
export const asX25519PublicKey = (b: Uint8Array, arg = 'publicKey'): X25519PublicKey =>
  brandAs(arg, b, X25519_KEY_BYTES);
export const asX25519SecretKey = (b: Uint8Array, arg = 'secretKey'): X25519SecretKey =>
  brandAs(arg, b, X25519_KEY_BYTES);
export const asMlKem768PublicKey = (b: Uint8Array, arg = 'publicKey'): MlKem768PublicKey =>
  brandAs(arg, b, MLKEM768_PUBLIC_KEY_BYTES);
export const asMlKem768SecretKey = (b: Uint8Array, arg = 'secretKey'): MlKem768SecretKey =>
  brandAs(arg, b, MLKEM768_SECRET_KEY_BYTES);
export const asMlKem768Ciphertext = (b: Uint8Array, arg = 'ciphertext'): MlKem768Ciphertext =>
  brandAs(arg, b, MLKEM768_CIPHERTEXT_BYTES);
export const asAeadKey = (b: Uint8Array, arg = 'key'): AeadKey => brandAs(arg, b, AEAD_KEY_BYTES);
/** Only for secrets that came out of a KDF or a protocol store, never from the wire. */
export const asSharedSecret = (b: Uint8Array, arg = 'sharedSecret'): SharedSecret =>
  brandAs(arg, b, 32);
