/**
 * PQXDH-style handshake (Signal PQXDH §3, with the identity DH key described in
 * identity.ts) and the initial ratchet states of both parties (Double Ratchet §4.2).
 *
 *   DH1 = DH(IKdh_A, SPK_B)   DH2 = DH(EK_A, IKdh_B)   DH3 = DH(EK_A, SPK_B)
 *   DH4 = DH(EK_A, OPK_B)     (only when a one-time prekey was available)
 *   (CT, SS) = ML-KEM-768.Encaps(PQPK_B)   (one-time KEM prekey, else last resort)
 *   SK ‖ HKa ‖ NHKb = HKDF-SHA256(salt = 32 zero bytes,
 *                                 ikm  = 32×0xFF ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4] ‖ SS,
 *                                 info = label ‖ AD, 96 bytes)
 *   AD = IK_A.signing ‖ IK_A.dh ‖ IK_B.signing ‖ IK_B.dh  (both identities bound)
 *
 * Owns: the prekey part of an initial envelope and the handshake secrets. Knows
 * nothing of envelopes beyond that part, nor of stores.
 */
import {
  asMlKem768Ciphertext,
  asX25519PublicKey,
  concatBytes,
  constantTimeEqual,
  copyKey,
  utf8Encode,
  zeroize,
  type CryptoProvider,
  type MlKem768Ciphertext,
  type X25519KeyPair,
  type X25519PublicKey,
} from '@parley/crypto';
import { LABEL } from './constants.js';
import type { ByteReader } from './encoding.js';
import { ByteWriter, type Address } from './encoding.js';
import { invalidMessage, ProtocolError } from './errors.js';
import {
  readPublicIdentity,
  verifyPublicIdentity,
  writePublicIdentity,
  type IdentityKeyPair,
  type PublicIdentity,
} from './identity.js';
import { kdfRoot } from './kdf.js';
import type {
  KemPreKeyRecord,
  OneTimePreKeyRecord,
  SignedPreKeyRecord,
  VerifiedPreKeyBundle,
} from './prekeys.js';
import type { SessionState } from './ratchet.js';

/** Size of the handshake fields of an initial envelope (after type and version). */
export const PREKEY_PART_BYTES = 128 + 32 + 4 + 1 + 4 + 4 + 1088;

/** Parsed handshake fields of an initial (prekey) envelope. */
export interface PreKeyMessageInfo {
  readonly initiatorIdentity: PublicIdentity;
  /** The initiator's ephemeral key EK_A (names the session). */
  readonly baseKey: X25519PublicKey;
  readonly signedPreKeyId: number;
  /** Absent when the bundle had no one-time prekey left. */
  readonly oneTimePreKeyId: number | undefined;
  readonly kemPreKeyId: number;
  readonly kemCiphertext: MlKem768Ciphertext;
}

export function encodePreKeyPart(info: PreKeyMessageInfo): Uint8Array {
  const w = new ByteWriter(PREKEY_PART_BYTES);
  writePublicIdentity(w, info.initiatorIdentity);
  w.bytes(info.baseKey).u32(info.signedPreKeyId);
  w.u8(info.oneTimePreKeyId !== undefined ? 1 : 0);
  w.u32(info.oneTimePreKeyId ?? 0)
    .u32(info.kemPreKeyId)
    .bytes(info.kemCiphertext);
  return w.finish();
}

export function readPreKeyPart(r: ByteReader): PreKeyMessageInfo {
  const initiatorIdentity = readPublicIdentity(r);
  const baseKey = asX25519PublicKey(r.bytes(32));
  const signedPreKeyId = r.u32();
  const flags = r.u8();
  if (flags > 1) throw invalidMessage();
  const otk = r.u32();
  const kemPreKeyId = r.u32();
  const kemCiphertext = asMlKem768Ciphertext(r.bytes(1088));
  return {
    initiatorIdentity,
    baseKey,
    signedPreKeyId,
    oneTimePreKeyId: flags & 1 ? otk : undefined,
    kemPreKeyId,
    kemCiphertext,
  };
}

/** Initiator identity ‖ responder identity, the session's part of every AD. */
export function sessionAd(initiator: PublicIdentity, responder: PublicIdentity): Uint8Array {
  return concatBytes(initiator.signingKey, initiator.dhKey, responder.signingKey, responder.dhKey);
}

function deriveHandshake(
  crypto: CryptoProvider,
  dhs: Uint8Array[],
  kemSecret: Uint8Array,
  ad: Uint8Array,
): { sk: Uint8Array; hka: Uint8Array; nhkb: Uint8Array } {
  // 32 × 0xFF first, as X3DH §2.2 / PQXDH: domain-separates from XEdDSA-style inputs.
  const ikm = concatBytes(new Uint8Array(32).fill(0xff), ...dhs, kemSecret);
  const out = crypto.hkdfSha256(
    ikm,
    new Uint8Array(32),
    concatBytes(utf8Encode(LABEL.handshake), ad),
    96,
  );
  zeroize(ikm, kemSecret, ...dhs);
  const keys = { sk: out.slice(0, 32), hka: out.slice(32, 64), nhkb: out.slice(64, 96) };
  zeroize(out);
  return keys;
}

const EMPTY_PQ = {
  pqLocal: undefined,
  pqRemote: undefined,
  pqSendCiphertext: undefined,
  pqRemoteSeenId: 0,
  pqNextLocalId: 1,
  pqChainsSinceAdvert: 0,
} as const;

/**
 * Initiator side: PQXDH against a verified bundle, then RatchetInitAlice.
 * Returns the initial state (with `pendingPreKey` set) for the session layer.
 */
export function initiatorState(
  crypto: CryptoProvider,
  identity: IdentityKeyPair,
  localAddress: Address,
  remoteAddress: Address,
  bundle: VerifiedPreKeyBundle,
): SessionState {
  const ek = crypto.x25519.generateKeyPair();
  const idDh = identity.dhKeyPair();
  const spk = bundle.signedPreKey.publicKey;
  const dhs = [
    crypto.x25519.dh(idDh.secretKey, spk),
    crypto.x25519.dh(ek.secretKey, bundle.identity.dhKey),
    crypto.x25519.dh(ek.secretKey, spk),
  ];
  if (bundle.oneTimePreKey)
    dhs.push(crypto.x25519.dh(ek.secretKey, bundle.oneTimePreKey.publicKey));
  const kemKey = bundle.kemPreKey;
  const enc = crypto.mlkem768.encapsulate(kemKey.publicKey);
  const ad = sessionAd(identity.publicIdentity, bundle.identity);
  const { sk, hka, nhkb } = deriveHandshake(crypto, dhs, enc.sharedSecret, ad);
  const pendingPreKey = encodePreKeyPart({
    initiatorIdentity: identity.publicIdentity,
    baseKey: ek.publicKey,
    signedPreKeyId: bundle.signedPreKey.id,
    oneTimePreKeyId: bundle.oneTimePreKey?.id,
    kemPreKeyId: kemKey.id,
    kemCiphertext: enc.ciphertext,
  });
  zeroize(ek.secretKey);
  const dhSelf = crypto.x25519.generateKeyPair();
  const step = kdfRoot(crypto, sk, crypto.x25519.dh(dhSelf.secretKey, spk));
  zeroize(sk);
  return {
    localAddress,
    remoteAddress,
    sessionAd: ad,
    isInitiator: true,
    baseKey: ek.publicKey,
    pendingPreKey,
    rootKey: step.rootKey,
    dhSelf,
    dhRemote: spk,
    send: { chainKey: step.chainKey, headerKey: hka, n: 0 },
    nextSendHeaderKey: step.nextHeaderKey,
    recv: undefined,
    nextRecvHeaderKey: nhkb,
    previousCounter: 0,
    oldChains: [],
    ...EMPTY_PQ,
  };
}

/** The responder's private keys named by an initial message. */
export interface ResponderKeys {
  readonly signedPreKey: SignedPreKeyRecord;
  readonly kemPreKey: KemPreKeyRecord;
  readonly oneTimePreKey?: OneTimePreKeyRecord | undefined;
}

/**
 * Responder side: checks the initiator's identity certification and the key ids,
 * runs PQXDH, then RatchetInitBob. The first ratchet message is decrypted by the
 * session layer from this state.
 */
export function responderState(
  crypto: CryptoProvider,
  identity: IdentityKeyPair,
  localAddress: Address,
  remoteAddress: Address,
  info: PreKeyMessageInfo,
  keys: ResponderKeys,
): SessionState {
  verifyPublicIdentity(crypto, info.initiatorIdentity);
  if (
    keys.signedPreKey.id !== info.signedPreKeyId ||
    keys.kemPreKey.id !== info.kemPreKeyId ||
    (info.oneTimePreKeyId !== undefined) !== (keys.oneTimePreKey !== undefined) ||
    (keys.oneTimePreKey !== undefined && keys.oneTimePreKey.id !== info.oneTimePreKeyId)
  ) {
    throw new ProtocolError(
      'UNKNOWN_PREKEY',
      'initial message: prekey ids do not match the keys given',
    );
  }
  if (constantTimeEqual(info.initiatorIdentity.signingKey, identity.publicIdentity.signingKey)) {
    // A message "from ourselves" would make both DH roles collapse; refuse it.
    throw invalidMessage();
  }
  const spk: X25519KeyPair = keys.signedPreKey.keyPair;
  const dhs = [
    crypto.x25519.dh(spk.secretKey, info.initiatorIdentity.dhKey),
    crypto.x25519.dh(identity.dhKeyPair().secretKey, info.baseKey),
    crypto.x25519.dh(spk.secretKey, info.baseKey),
  ];
  if (keys.oneTimePreKey)
    dhs.push(crypto.x25519.dh(keys.oneTimePreKey.keyPair.secretKey, info.baseKey));
  const ss = crypto.mlkem768.decapsulate(info.kemCiphertext, keys.kemPreKey.keyPair.secretKey);
  const ad = sessionAd(info.initiatorIdentity, identity.publicIdentity);
  const { sk, hka, nhkb } = deriveHandshake(crypto, dhs, ss, ad);
  return {
    localAddress,
    remoteAddress,
    sessionAd: ad,
    isInitiator: false,
    baseKey: info.baseKey,
    pendingPreKey: undefined,
    rootKey: sk,
    // Own copy: the session wipes its keys independently of the prekey store; copyKey
    // keeps the provider's parsed key, which the first ratchet step uses at once.
    dhSelf: { publicKey: spk.publicKey, secretKey: copyKey(spk.secretKey) },
    dhRemote: undefined,
    send: undefined,
    nextSendHeaderKey: nhkb,
    recv: undefined,
    nextRecvHeaderKey: hka,
    previousCounter: 0,
    oldChains: [],
    ...EMPTY_PQ,
  };
}
