/**
 * `@parley/protocol`: client-to-client end-to-end encryption. PQXDH-style handshake
 * (X25519 + ML-KEM-768), Double Ratchet with header encryption and a sparse
 * post-quantum KEM ratchet, AES-256-GCM per-message keys, compression and padding,
 * safety numbers. Pure: state in, state out; randomness comes from the
 * `CryptoProvider`, time from `ProtocolContext.now`; stores are interfaces.
 * The byte-level specification is docs/protocol.md.
 *
 * @example
 * ```ts
 * import { createPortableCrypto } from '@parley/crypto';
 * import * as p from '@parley/protocol';
 * const ctx = { crypto: createPortableCrypto(), now: () => Date.now() };
 * const bundle = p.verifyPreKeyBundle(ctx.crypto, p.decodePreKeyBundle(bytesFromRelay));
 * const meta = { sender: me, recipient: peer, messageType: 1, timestampMs: ctx.now() };
 * const { session, envelope } = p.initiateSession(ctx, { identity, bundle }, text, meta);
 * ```
 */
export * from './constants.js';
export { ProtocolError, type ProtocolErrorCode } from './errors.js';
export type { Address, MessageMeta } from './encoding.js';
/** The big-endian record reader and writer every protocol layout uses (for callers' own records). */
export { ByteReader, ByteWriter } from './encoding.js';
export {
  IdentityKeyPair,
  PUBLIC_IDENTITY_BYTES,
  decodePublicIdentity,
  encodePublicIdentity,
  verifyPublicIdentity,
  type PublicIdentity,
} from './identity.js';
export {
  assemblePreKeyBundle,
  decodeKemPreKey,
  decodeOneTimePreKey,
  decodePreKeyBundle,
  decodeSignedPreKey,
  encodeKemPreKey,
  encodeOneTimePreKey,
  encodePreKeyBundle,
  encodeSignedPreKey,
  generateKemPreKey,
  generateOneTimeKemPreKeys,
  generateOneTimePreKeys,
  generateSignedPreKey,
  isGraceOver,
  isRotationDue,
  needsReplenishment,
  publicKemPreKey,
  publicOneTimePreKey,
  publicSignedPreKey,
  verifyKemPreKey,
  verifyPreKeyBundle,
  verifySignedPreKey,
  type KemPreKey,
  type KemPreKeyKind,
  type KemPreKeyRecord,
  type OneTimePreKey,
  type OneTimePreKeyRecord,
  type PreKeyBundle,
  type SignedPreKey,
  type SignedPreKeyRecord,
  type VerifiedPreKeyBundle,
} from './prekeys.js';
export { PREKEY_PART_BYTES, type PreKeyMessageInfo, type ResponderKeys } from './handshake.js';
export {
  MAX_SINGLE_UNIT_PLAINTEXT_BYTES,
  Session,
  decrypt,
  encrypt,
  envelopeBytes,
  envelopeKind,
  initiateSession,
  parsePreKeyMessage,
  respondToPreKeyMessage,
  sessionEnvelopeBytes,
  sessionMatchesPreKeyMessage,
  terminateSession,
  type ProtocolContext,
} from './session.js';
export { STATE_FORMAT_VERSION, deserializeSession, serializeSession } from './state-codec.js';
export {
  MemoryIdentityStore,
  MemoryPreKeyStore,
  MemorySeenStore,
  MemorySessionStore,
  loadSession,
  preKeyMessageId,
  respondWithStores,
  type IdentityStore,
  type PreKeyStore,
  type SeenStore,
  type SessionStore,
} from './stores.js';
export {
  SAFETY_QR_PREFIX,
  matchesScannedSafetyNumber,
  safetyNumber,
  type SafetyNumber,
} from './safety-number.js';
export * from './group/index.js';
