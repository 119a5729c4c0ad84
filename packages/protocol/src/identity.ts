/**
 * Device identity: an Ed25519 key pair (the RFC 8032 seed is the secret; in `mtls`
 * deployments it is the key of the device's X.509 certificate) and an X25519 identity
 * DH key derived from that seed and certified by an Ed25519 signature.
 *
 * Why a derived, signed X25519 key rather than the Edwards→Montgomery map: the map
 * would reuse one scalar for signatures and DH, which needs a joint-security argument
 * and a primitive our crypto interface does not offer. HKDF of the seed under its own
 * label yields an independent-looking X25519 secret (HKDF is a PRF keyed by the seed),
 * so the device still stores only the 32-byte seed, the Ed25519 key is only ever used
 * to sign, and peers accept the X25519 key only with a valid signature by the Ed25519
 * key (the one compared in safety numbers). The signature is deterministic (RFC 8032),
 * so the published identity is a pure function of the seed.
 *
 * Owns: identity keys and their public encoding. Knows nothing of sessions.
 */
import {
  asEd25519PublicKey,
  asEd25519SecretKey,
  asEd25519Signature,
  asX25519PublicKey,
  asX25519SecretKey,
  concatBytes,
  toHex,
  utf8Encode,
  zeroize,
  type CryptoProvider,
  type Ed25519PublicKey,
  type Ed25519SecretKey,
  type Ed25519Signature,
  type X25519KeyPair,
  type X25519PublicKey,
} from '@parley/crypto';
import { LABEL } from './constants.js';
import { ByteReader, ByteWriter } from './encoding.js';
import { ProtocolError } from './errors.js';

/** Public half of a device identity, as published in bundles and initial messages. */
export interface PublicIdentity {
  /** Ed25519: signs prekeys and the DH key; the key compared in safety numbers. */
  readonly signingKey: Ed25519PublicKey;
  /** X25519 identity DH key used in the handshake. */
  readonly dhKey: X25519PublicKey;
  /** Ed25519 signature over `LABEL.identityDhSignature ‖ dhKey`. */
  readonly dhSignature: Ed25519Signature;
}

/** Encoded size of a {@link PublicIdentity}: 32 + 32 + 64. */
export const PUBLIC_IDENTITY_BYTES = 128;

const INSPECT = Symbol.for('nodejs.util.inspect.custom');

/**
 * A device's identity key pair. Holds secrets, so it never prints them: `toString`,
 * `toJSON` and Node's `inspect` show the public signing key only.
 */
export class IdentityKeyPair {
  readonly #signingSecret: Ed25519SecretKey;
  readonly #dh: X25519KeyPair;
  /** Public parts, safe to publish. */
  readonly publicIdentity: PublicIdentity;

  private constructor(signingSecret: Ed25519SecretKey, dh: X25519KeyPair, pub: PublicIdentity) {
    this.#signingSecret = signingSecret;
    this.#dh = dh;
    this.publicIdentity = pub;
  }

  /**
   * Rebuilds the identity from its 32-byte Ed25519 seed (copied; the caller may wipe its own).
   * @example
   * ```ts
   * const id = IdentityKeyPair.fromSeed(crypto, seed);
   * id.publicIdentity.signingKey; // 32-byte Ed25519 public key
   * ```
   */
  static fromSeed(crypto: CryptoProvider, seed: Uint8Array): IdentityKeyPair {
    const secret = asEd25519SecretKey(seed.slice(), 'seed');
    const signing = crypto.ed25519.keyPairFromSecret(secret);
    const dhSecret = asX25519SecretKey(
      crypto.hkdfSha256(secret, new Uint8Array(0), utf8Encode(LABEL.identityDh), 32),
    );
    const dh = crypto.x25519.keyPairFromSecret(dhSecret);
    const dhSignature = crypto.ed25519.sign(secret, identityDhSigned(dh.publicKey));
    return new IdentityKeyPair(secret, dh, {
      signingKey: signing.publicKey,
      dhKey: dh.publicKey,
      dhSignature,
    });
  }

  /** A fresh identity from the provider's random source. */
  static generate(crypto: CryptoProvider): IdentityKeyPair {
    const seed = crypto.randomBytes(32);
    const id = IdentityKeyPair.fromSeed(crypto, seed);
    zeroize(seed);
    return id;
  }

  /** The 32-byte seed, for the caller's encrypted key store. A copy. */
  exportSeed(): Uint8Array {
    return this.#signingSecret.slice();
  }

  /** @internal Signs with the identity key. */
  sign(crypto: CryptoProvider, message: Uint8Array): Ed25519Signature {
    return crypto.ed25519.sign(this.#signingSecret, message);
  }

  /** @internal The X25519 identity DH key pair (handshake only). */
  dhKeyPair(): X25519KeyPair {
    return this.#dh;
  }

  /** Wipes the secrets; the object is unusable afterwards. */
  destroy(): void {
    zeroize(this.#signingSecret, this.#dh.secretKey);
  }

  toString(): string {
    return `IdentityKeyPair(${toHex(this.publicIdentity.signingKey)})`;
  }
  toJSON(): { signingKey: string } {
    return { signingKey: toHex(this.publicIdentity.signingKey) };
  }
  [INSPECT](): string {
    return this.toString();
  }
}

/** The message the identity signs to certify its X25519 key. */
export function identityDhSigned(dhKey: X25519PublicKey): Uint8Array {
  return concatBytes(utf8Encode(LABEL.identityDhSignature), dhKey);
}

/** Checks the Ed25519 certification of the X25519 identity key. */
export function verifyPublicIdentity(crypto: CryptoProvider, id: PublicIdentity): void {
  if (!crypto.ed25519.verify(id.signingKey, identityDhSigned(id.dhKey), id.dhSignature)) {
    throw new ProtocolError('INVALID_SIGNATURE', 'identity: DH key signature does not verify');
  }
}

export function writePublicIdentity(w: ByteWriter, id: PublicIdentity): void {
  w.bytes(id.signingKey).bytes(id.dhKey).bytes(id.dhSignature);
}

export function readPublicIdentity(r: ByteReader): PublicIdentity {
  return {
    signingKey: asEd25519PublicKey(r.bytes(32)),
    dhKey: asX25519PublicKey(r.bytes(32)),
    dhSignature: asEd25519Signature(r.bytes(64)),
  };
}

/** Canonical bytes of a public identity (128 bytes: signingKey ‖ dhKey ‖ dhSignature). */
export function encodePublicIdentity(id: PublicIdentity): Uint8Array {
  const w = new ByteWriter(PUBLIC_IDENTITY_BYTES);
  writePublicIdentity(w, id);
  return w.finish();
}

/** Parses {@link encodePublicIdentity} output (does not verify; see {@link verifyPublicIdentity}). */
export function decodePublicIdentity(bytes: Uint8Array): PublicIdentity {
  const r = new ByteReader(bytes, 'INVALID_ARGUMENT');
  const id = readPublicIdentity(r);
  r.end();
  return id;
}
