/**
 * Prekeys and bundles: what a device publishes to the relay so that others can start
 * sessions while it is offline, and what a peer fetches back.
 *
 * The relay stores and hands out the parts individually (each one-time key at most
 * once), so every part has its own canonical encoding; a fetched bundle is assembled
 * from parts and verified before use. Signatures are Ed25519 by the identity key over
 * `label ‖ kind ‖ id ‖ publicKey`, so a key cannot be replayed under another id or as
 * another kind.
 *
 * Owns: prekey records, bundle encoding and verification. Knows nothing of sessions.
 */
import {
  asEd25519Signature,
  asMlKem768PublicKey,
  asX25519PublicKey,
  concatBytes,
  utf8Encode,
  type CryptoProvider,
  type Ed25519PublicKey,
  type Ed25519Signature,
  type MlKem768KeyPair,
  type MlKem768PublicKey,
  type X25519KeyPair,
  type X25519PublicKey,
} from '@parley/crypto';
import {
  LABEL,
  PREKEY_REPLENISH_BELOW,
  SIGNED_PREKEY_GRACE_MS,
  SIGNED_PREKEY_ROTATION_MS,
} from './constants.js';
import { ByteReader, ByteWriter, checkU32 } from './encoding.js';
import { ProtocolError } from './errors.js';
import {
  readPublicIdentity,
  verifyPublicIdentity,
  writePublicIdentity,
  type IdentityKeyPair,
  type PublicIdentity,
} from './identity.js';

/** Signed X25519 prekey as published. */
export interface SignedPreKey {
  readonly id: number;
  readonly publicKey: X25519PublicKey;
  readonly signature: Ed25519Signature;
}
/** One-time X25519 prekey as published (unsigned, as in X3DH). */
export interface OneTimePreKey {
  readonly id: number;
  readonly publicKey: X25519PublicKey;
}
/** Kind of a signed ML-KEM prekey. */
export type KemPreKeyKind = 'last-resort' | 'one-time';
/**
 * Signed ML-KEM-768 prekey as published. Whether it is a one-time or the last-resort
 * key is the owner's private knowledge (by id) and is not signed: the initiator uses
 * whichever key the relay hands out, and either kind gives it the same guarantees.
 */
export interface KemPreKey {
  readonly id: number;
  readonly publicKey: MlKem768PublicKey;
  readonly signature: Ed25519Signature;
}

/**
 * A peer's bundle, as assembled from the relay's parts: the relay hands out a one-time
 * KEM prekey while any is left, else the last-resort one, and a one-time X25519 prekey
 * while any is left. Verify before use.
 */
export interface PreKeyBundle {
  readonly identity: PublicIdentity;
  readonly signedPreKey: SignedPreKey;
  readonly kemPreKey: KemPreKey;
  readonly oneTimePreKey?: OneTimePreKey;
}

declare const verifiedBrand: unique symbol;
/** A bundle whose signatures were checked by {@link verifyPreKeyBundle}. */
export type VerifiedPreKeyBundle = PreKeyBundle & { readonly [verifiedBrand]: true };

/** Private record of a signed X25519 prekey (kept by the owner). */
export interface SignedPreKeyRecord {
  readonly id: number;
  readonly keyPair: X25519KeyPair;
  readonly signature: Ed25519Signature;
  readonly createdAtMs: number;
}
/** Private record of a one-time X25519 prekey. */
export interface OneTimePreKeyRecord {
  readonly id: number;
  readonly keyPair: X25519KeyPair;
}
/** Private record of a signed ML-KEM prekey. */
export interface KemPreKeyRecord {
  readonly id: number;
  readonly kind: KemPreKeyKind;
  readonly keyPair: MlKem768KeyPair;
  readonly signature: Ed25519Signature;
  readonly createdAtMs: number;
}

const SIGNED_PREKEY_KIND = 2;
const KEM_PREKEY_KIND = 3;

function signedPreKeyMessage(id: number, pk: X25519PublicKey): Uint8Array {
  return concatBytes(
    utf8Encode(LABEL.signedPreKeySignature),
    new ByteWriter(5).u8(SIGNED_PREKEY_KIND).u32(id).finish(),
    pk,
  );
}
function kemPreKeyMessage(id: number, pk: MlKem768PublicKey): Uint8Array {
  return concatBytes(
    utf8Encode(LABEL.kemPreKeySignature),
    new ByteWriter(5).u8(KEM_PREKEY_KIND).u32(id).finish(),
    pk,
  );
}

/** Makes a new signed X25519 prekey (rotate every `SIGNED_PREKEY_ROTATION_MS`). */
export function generateSignedPreKey(
  crypto: CryptoProvider,
  identity: IdentityKeyPair,
  id: number,
  nowMs: number,
): SignedPreKeyRecord {
  checkU32('id', id);
  const keyPair = crypto.x25519.generateKeyPair();
  const signature = identity.sign(crypto, signedPreKeyMessage(id, keyPair.publicKey));
  return { id, keyPair, signature, createdAtMs: nowMs };
}

/** Makes a new signed ML-KEM-768 prekey of the given kind. */
export function generateKemPreKey(
  crypto: CryptoProvider,
  identity: IdentityKeyPair,
  id: number,
  kind: KemPreKeyKind,
  nowMs: number,
): KemPreKeyRecord {
  checkU32('id', id);
  const keyPair = crypto.mlkem768.generateKeyPair();
  const signature = identity.sign(crypto, kemPreKeyMessage(id, keyPair.publicKey));
  return { id, kind, keyPair, signature, createdAtMs: nowMs };
}

/** A replenishment batch of one-time X25519 prekeys with ids `firstId, firstId+1, …`. */
export function generateOneTimePreKeys(
  crypto: CryptoProvider,
  firstId: number,
  count: number,
): OneTimePreKeyRecord[] {
  checkU32('firstId', firstId);
  checkU32('firstId + count', firstId + count);
  const out: OneTimePreKeyRecord[] = [];
  for (let i = 0; i < count; i++) {
    out.push({ id: firstId + i, keyPair: crypto.x25519.generateKeyPair() });
  }
  return out;
}

/** A replenishment batch of one-time ML-KEM prekeys. */
export function generateOneTimeKemPreKeys(
  crypto: CryptoProvider,
  identity: IdentityKeyPair,
  firstId: number,
  count: number,
  nowMs: number,
): KemPreKeyRecord[] {
  checkU32('firstId + count', firstId + count);
  const out: KemPreKeyRecord[] = [];
  for (let i = 0; i < count; i++) {
    out.push(generateKemPreKey(crypto, identity, firstId + i, 'one-time', nowMs));
  }
  return out;
}

/** Public part of a signed prekey record. */
export function publicSignedPreKey(r: SignedPreKeyRecord): SignedPreKey {
  return { id: r.id, publicKey: r.keyPair.publicKey, signature: r.signature };
}
/** Public part of a one-time prekey record. */
export function publicOneTimePreKey(r: OneTimePreKeyRecord): OneTimePreKey {
  return { id: r.id, publicKey: r.keyPair.publicKey };
}
/** Public part of a KEM prekey record. */
export function publicKemPreKey(r: KemPreKeyRecord): KemPreKey {
  return { id: r.id, publicKey: r.keyPair.publicKey, signature: r.signature };
}

/**
 * Checks a signed X25519 prekey's signature by the identity key `signingKey` (as a
 * relay does for uploads; peers use {@link verifyPreKeyBundle}).
 * @throws ProtocolError `INVALID_SIGNATURE` if it does not verify.
 */
export function verifySignedPreKey(
  crypto: CryptoProvider,
  signingKey: Ed25519PublicKey,
  spk: SignedPreKey,
): void {
  if (
    !crypto.ed25519.verify(signingKey, signedPreKeyMessage(spk.id, spk.publicKey), spk.signature)
  ) {
    throw new ProtocolError('INVALID_SIGNATURE', 'signedPreKey: signature does not verify');
  }
}

/**
 * Checks an ML-KEM prekey's signature (last-resort or one-time: signed alike) by the
 * identity key `signingKey`.
 * @throws ProtocolError `INVALID_SIGNATURE` if it does not verify.
 */
export function verifyKemPreKey(
  crypto: CryptoProvider,
  signingKey: Ed25519PublicKey,
  kem: KemPreKey,
): void {
  if (!crypto.ed25519.verify(signingKey, kemPreKeyMessage(kem.id, kem.publicKey), kem.signature)) {
    throw new ProtocolError('INVALID_SIGNATURE', 'kemPreKey: signature does not verify');
  }
}

/**
 * Checks every signature in a fetched bundle and the kinds of its KEM keys.
 * @throws ProtocolError `INVALID_SIGNATURE` for any bad signature.
 */
export function verifyPreKeyBundle(
  crypto: CryptoProvider,
  bundle: PreKeyBundle,
): VerifiedPreKeyBundle {
  verifyPublicIdentity(crypto, bundle.identity);
  verifySignedPreKey(crypto, bundle.identity.signingKey, bundle.signedPreKey);
  verifyKemPreKey(crypto, bundle.identity.signingKey, bundle.kemPreKey);
  return bundle as VerifiedPreKeyBundle;
}

/** Assembles a bundle from the parts the relay returned (no verification yet). */
export function assemblePreKeyBundle(parts: {
  identity: PublicIdentity;
  signedPreKey: SignedPreKey;
  kemPreKey: KemPreKey;
  oneTimePreKey?: OneTimePreKey | undefined;
}): PreKeyBundle {
  return {
    identity: parts.identity,
    signedPreKey: parts.signedPreKey,
    kemPreKey: parts.kemPreKey,
    ...(parts.oneTimePreKey ? { oneTimePreKey: parts.oneTimePreKey } : {}),
  };
}

// ---- canonical encodings (protocol.md §Bundle) ----

function writeSigned(w: ByteWriter, k: SignedPreKey): void {
  w.u32(k.id).bytes(k.publicKey).bytes(k.signature);
}
function readSigned(r: ByteReader): SignedPreKey {
  return {
    id: r.u32(),
    publicKey: asX25519PublicKey(r.bytes(32)),
    signature: asEd25519Signature(r.bytes(64)),
  };
}
function writeKem(w: ByteWriter, k: KemPreKey): void {
  w.u32(k.id).bytes(k.publicKey).bytes(k.signature);
}
function readKem(r: ByteReader): KemPreKey {
  return {
    id: r.u32(),
    publicKey: asMlKem768PublicKey(r.bytes(1184)),
    signature: asEd25519Signature(r.bytes(64)),
  };
}
function writeOneTime(w: ByteWriter, k: OneTimePreKey): void {
  w.u32(k.id).bytes(k.publicKey);
}
function readOneTime(r: ByteReader): OneTimePreKey {
  return { id: r.u32(), publicKey: asX25519PublicKey(r.bytes(32)) };
}

function codec<T>(write: (w: ByteWriter, v: T) => void, read: (r: ByteReader) => T) {
  return {
    encode(v: T): Uint8Array {
      const w = new ByteWriter(1400);
      write(w, v);
      return w.finish();
    },
    decode(bytes: Uint8Array): T {
      const r = new ByteReader(bytes, 'INVALID_ARGUMENT');
      const v = read(r);
      r.end();
      return v;
    },
  };
}

const signedCodec = codec(writeSigned, readSigned);
const kemCodec = codec(writeKem, readKem);
const oneTimeCodec = codec(writeOneTime, readOneTime);

/** Signed prekey: id u32 ‖ publicKey 32 ‖ signature 64 (100 bytes). */
export const encodeSignedPreKey = signedCodec.encode;
/** Inverse of {@link encodeSignedPreKey}; `INVALID_ARGUMENT` on malformed input. */
export const decodeSignedPreKey = signedCodec.decode;
/** KEM prekey: id u32 ‖ publicKey 1184 ‖ signature 64 (1252 bytes). */
export const encodeKemPreKey = kemCodec.encode;
/** Inverse of {@link encodeKemPreKey}. */
export const decodeKemPreKey = kemCodec.decode;
/** One-time prekey: id u32 ‖ publicKey 32 (36 bytes). */
export const encodeOneTimePreKey = oneTimeCodec.encode;
/** Inverse of {@link encodeOneTimePreKey}. */
export const decodeOneTimePreKey = oneTimeCodec.decode;

const BUNDLE_FORMAT = 1;

/**
 * Whole bundle: format u8 (1) ‖ flags u8 (bit0: one-time prekey present) ‖
 * identity (128) ‖ signed prekey (100) ‖ KEM prekey (1252) ‖ [one-time prekey (36)].
 */
export function encodePreKeyBundle(b: PreKeyBundle): Uint8Array {
  const w = new ByteWriter(3000);
  w.u8(BUNDLE_FORMAT).u8(b.oneTimePreKey ? 1 : 0);
  writePublicIdentity(w, b.identity);
  writeSigned(w, b.signedPreKey);
  writeKem(w, b.kemPreKey);
  if (b.oneTimePreKey) writeOneTime(w, b.oneTimePreKey);
  return w.finish();
}

/** Inverse of {@link encodePreKeyBundle} (does not verify signatures). */
export function decodePreKeyBundle(bytes: Uint8Array): PreKeyBundle {
  const r = new ByteReader(bytes, 'INVALID_ARGUMENT');
  if (r.u8() !== BUNDLE_FORMAT) {
    throw new ProtocolError('UNSUPPORTED_VERSION', 'bundle: unknown format');
  }
  const flags = r.u8();
  if (flags > 1) throw new ProtocolError('INVALID_ARGUMENT', 'bundle: unknown flags');
  const identity = readPublicIdentity(r);
  const signedPreKey = readSigned(r);
  const kemPreKey = readKem(r);
  const oneTimePreKey = flags & 1 ? readOneTime(r) : undefined;
  r.end();
  return assemblePreKeyBundle({ identity, signedPreKey, kemPreKey, oneTimePreKey });
}

/**
 * Rotation rule for the signed prekey and the last-resort KEM prekey: due once the
 * current one is `SIGNED_PREKEY_ROTATION_MS` old.
 */
export function isRotationDue(createdAtMs: number, nowMs: number): boolean {
  return nowMs - createdAtMs >= SIGNED_PREKEY_ROTATION_MS;
}

/**
 * Deletion rule for a rotated-out signed or last-resort prekey: keep it until
 * `SIGNED_PREKEY_GRACE_MS` after it was replaced, then delete it.
 */
export function isGraceOver(replacedAtMs: number, nowMs: number): boolean {
  return nowMs - replacedAtMs >= SIGNED_PREKEY_GRACE_MS;
}

/** Replenishment rule: upload a new batch when the relay holds fewer than `PREKEY_REPLENISH_BELOW`. */
export function needsReplenishment(remainingOnRelay: number): boolean {
  return remainingOnRelay < PREKEY_REPLENISH_BELOW;
}
