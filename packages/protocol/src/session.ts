/**
 * Sessions: the envelope layout, the body AEAD, and the public session API
 * (initiate, respond, encrypt, decrypt, terminate) over the ratchet and handshake.
 *
 * Envelope layout (protocol.md §Envelope):
 *   type u8 (1 = prekey, 2 = message) ‖ version u8
 *   [prekey part, PREKEY_PART_BYTES, type 1 only]
 *   nonce 12 ‖ header length u16 ‖ encrypted header ‖ encrypted body
 * Header:  AES-256-GCM(HK, nonce, header,  AAD = envelope bytes before the header)
 * Body:    AES-256-GCM(MK, nonce, padded body,
 *                      AAD = meta AD ‖ session AD ‖ envelope bytes before the body)
 * MK is used for exactly one message, so sharing the random nonce with the header
 * (under a different key) is safe; the nonce is random rather than fixed so that
 * even a rolled-back state never encrypts twice under one (key, nonce).
 *
 * Owns: envelopes, Session objects and committing/wiping state. Knows nothing of
 * stores (see stores.ts) or transport.
 */
import {
  CryptoError,
  concatBytes,
  constantTimeEqual,
  toHex,
  zeroize,
  type AeadKey,
  type CryptoProvider,
  type Ed25519PublicKey,
} from '@parley/crypto';
import {
  ENVELOPE_TYPE_MESSAGE,
  ENVELOPE_TYPE_PREKEY,
  ENVELOPE_UNIT_BYTES,
  NONCE_BYTES,
  PROTOCOL_VERSION,
} from './constants.js';
import {
  ByteReader,
  encodeMetaAd,
  sameAddress,
  type Address,
  type MessageMeta,
} from './encoding.js';
import { invalidMessage, ProtocolError } from './errors.js';
import {
  initiatorState,
  PREKEY_PART_BYTES,
  readPreKeyPart,
  responderState,
  type PreKeyMessageInfo,
  type ResponderKeys,
} from './handshake.js';
import type { IdentityKeyPair } from './identity.js';
import {
  BODY_HEADER_BYTES,
  decodeBody,
  encodeBody,
  padBody,
  paddedEnvelopeBytes,
} from './padding.js';
import type { VerifiedPreKeyBundle } from './prekeys.js';
import {
  HEADER_BASE_BYTES,
  nextHeaderBytes,
  ratchetReceive,
  ratchetSend,
  secretBuffers,
  type SessionState,
} from './ratchet.js';

/** What every operation needs from its environment: primitives, randomness, a clock. */
export interface ProtocolContext {
  /** All cryptography and randomness (a seeded provider makes runs reproducible). */
  readonly crypto: CryptoProvider;
  /** Milliseconds since the epoch; only used to expire skipped message keys. */
  readonly now: () => number;
}

const TAG_BYTES = 16;
const INSPECT = Symbol.for('nodejs.util.inspect.custom');
const states = new WeakMap<Session, SessionState>();

/**
 * An established (or half-established) session with one peer device. Immutable:
 * every operation returns a new `Session`. A successful operation consumes its input
 * session (its superseded keys are wiped and it can no longer be used); a failed one
 * leaves it exactly as it was. Prints no secrets.
 */
export class Session {
  /** @internal Use initiateSession / respondToPreKeyMessage / deserializeSession. */
  constructor(state: SessionState) {
    states.set(this, state);
  }
  /** The peer device. */
  get remoteAddress(): Address {
    return stateOf(this).remoteAddress;
  }
  /** This device. */
  get localAddress(): Address {
    return stateOf(this).localAddress;
  }
  /** The peer's Ed25519 identity key (compare with safety numbers). */
  get remoteIdentityKey(): Ed25519PublicKey {
    const s = stateOf(this);
    return s.sessionAd.slice(s.isInitiator ? 64 : 0, s.isInitiator ? 96 : 32) as Ed25519PublicKey;
  }
  /** True until the initiator has read a first reply (its envelopes are prekey messages). */
  get awaitingReply(): boolean {
    return stateOf(this).pendingPreKey !== undefined;
  }
  /** False once terminated or superseded by a newer Session. */
  get usable(): boolean {
    return states.has(this);
  }
  toString(): string {
    const s = states.get(this);
    if (!s) return 'Session(closed)';
    return `Session(${s.localAddress.userId}.${s.localAddress.deviceId} -> ${s.remoteAddress.userId}.${s.remoteAddress.deviceId}, base ${toHex(s.baseKey).slice(0, 16)})`;
  }
  toJSON(): { session: string } {
    return { session: this.toString() };
  }
  [INSPECT](): string {
    return this.toString();
  }
}

/** @internal */
export function stateOf(session: Session): SessionState {
  const s = states.get(session);
  if (!s) {
    throw new ProtocolError('SESSION_TERMINATED', 'session was terminated or superseded');
  }
  return s;
}

/** Commits `next` as a new Session and wipes every secret only `old` still holds. */
function commit(
  oldSession: Session | undefined,
  old: SessionState | undefined,
  next: SessionState,
): Session {
  if (old) {
    const keep = new Set(secretBuffers(next));
    for (const b of secretBuffers(old)) if (!keep.has(b)) zeroize(b);
  }
  if (oldSession) states.delete(oldSession);
  return new Session(next);
}

/** @internal Builds a session around a deserialized state. */
export function sessionFromState(state: SessionState): Session {
  return new Session(state);
}

/**
 * Wipes every key of the session (M31). The session and any copy of its object
 * become unusable; serialized copies elsewhere are the caller's to delete.
 */
export function terminateSession(session: Session): void {
  const s = states.get(session);
  if (!s) return;
  zeroize(...secretBuffers(s));
  if (s.pendingPreKey) zeroize(s.pendingPreKey);
  states.delete(session);
}

/** Whether an envelope is an initial (prekey) message or an ordinary one. */
export function envelopeKind(envelope: Uint8Array): 'prekey' | 'message' {
  const t = envelope[0];
  if (t === ENVELOPE_TYPE_PREKEY) return 'prekey';
  if (t === ENVELOPE_TYPE_MESSAGE) return 'message';
  throw invalidMessage();
}

function checkVersion(envelope: Uint8Array): void {
  if (envelope.length < 2) throw invalidMessage();
  if (envelope[1] !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      'UNSUPPORTED_VERSION',
      `envelope: protocol version ${String(envelope[1])}`,
    );
  }
}

/**
 * Reads the handshake fields of a prekey envelope, so the responder can fetch the
 * named private keys (from any store, sync or async) before {@link respondToPreKeyMessage}.
 */
export function parsePreKeyMessage(envelope: Uint8Array): PreKeyMessageInfo {
  checkVersion(envelope);
  if (envelope[0] !== ENVELOPE_TYPE_PREKEY) throw invalidMessage();
  return readPreKeyPart(new ByteReader(envelope.subarray(2, 2 + PREKEY_PART_BYTES)));
}

/**
 * True when a prekey envelope belongs to this session (same handshake base key):
 * the initiator resends its handshake until it reads a reply, so such envelopes
 * must go to `decrypt`, not start a new session.
 */
export function sessionMatchesPreKeyMessage(session: Session, envelope: Uint8Array): boolean {
  const info = parsePreKeyMessage(envelope);
  return constantTimeEqual(info.baseKey, stateOf(session).baseKey);
}

/**
 * Envelope size for a plaintext of `plaintextLength` bytes sent from an ordinary
 * state (no KEM material in the header, not a prekey message), ignoring compression:
 * always a multiple of `ENVELOPE_UNIT_BYTES`. For the exact size from a given state use
 * {@link sessionEnvelopeBytes}.
 */
export function envelopeBytes(plaintextLength: number): number {
  return paddedEnvelopeBytes(
    messageOverheadBytes(HEADER_BASE_BYTES, false),
    BODY_HEADER_BYTES + plaintextLength,
  );
}

/** Largest plaintext that fits one `ENVELOPE_UNIT_BYTES` envelope in an ordinary state. */
export const MAX_SINGLE_UNIT_PLAINTEXT_BYTES =
  ENVELOPE_UNIT_BYTES - BODY_HEADER_BYTES - messageOverheadBytes(HEADER_BASE_BYTES, false);

/** Exact envelope size `encrypt` would produce next from this session (uncompressed). */
export function sessionEnvelopeBytes(session: Session, plaintextLength: number): number {
  const s = stateOf(session);
  return paddedEnvelopeBytes(
    messageOverheadBytes(nextHeaderBytes(s), s.pendingPreKey !== undefined),
    BODY_HEADER_BYTES + plaintextLength,
  );
}

function messageOverheadBytes(headerBytes: number, prekey: boolean): number {
  return (
    2 + (prekey ? PREKEY_PART_BYTES : 0) + NONCE_BYTES + 2 + headerBytes + TAG_BYTES + TAG_BYTES
  );
}

function encryptState(
  crypto: CryptoProvider,
  s: SessionState,
  plaintext: Uint8Array,
  meta: MessageMeta,
): { state: SessionState; envelope: Uint8Array } {
  if (!sameAddress(meta.sender, s.localAddress) || !sameAddress(meta.recipient, s.remoteAddress)) {
    throw new ProtocolError('INVALID_ARGUMENT', 'meta: sender/recipient do not match the session');
  }
  const type = s.pendingPreKey ? ENVELOPE_TYPE_PREKEY : ENVELOPE_TYPE_MESSAGE;
  const metaAd = encodeMetaAd(type, meta);
  const framed = encodeBody(plaintext);
  const step = ratchetSend(crypto, s);
  const prefixBytes = 2 + (s.pendingPreKey ? PREKEY_PART_BYTES : 0) + NONCE_BYTES + 2;
  const encHeaderBytes = step.header.length + TAG_BYTES;
  const bodyStart = prefixBytes + encHeaderBytes;
  const total = paddedEnvelopeBytes(bodyStart + TAG_BYTES, framed.length);
  const envelope = new Uint8Array(total);
  envelope[0] = type;
  envelope[1] = PROTOCOL_VERSION;
  let off = 2;
  if (s.pendingPreKey) {
    envelope.set(s.pendingPreKey, off);
    off += PREKEY_PART_BYTES;
  }
  const nonce = crypto.randomBytes(NONCE_BYTES);
  envelope.set(nonce, off);
  off += NONCE_BYTES;
  envelope[off] = encHeaderBytes >>> 8;
  envelope[off + 1] = encHeaderBytes & 0xff;
  const aes = crypto.aes256gcm;
  envelope.set(
    aes.encrypt(step.headerKey as AeadKey, nonce, step.header, envelope.subarray(0, prefixBytes)),
    prefixBytes,
  );
  const ad = concatBytes(metaAd, s.sessionAd, envelope.subarray(0, bodyStart));
  const padded = padBody(framed, total - bodyStart - TAG_BYTES);
  envelope.set(aes.encrypt(step.messageKey as AeadKey, nonce, padded, ad), bodyStart);
  zeroize(step.messageKey, padded, framed);
  return { state: step.state, envelope };
}

function decryptState(
  ctx: ProtocolContext,
  s: SessionState,
  envelope: Uint8Array,
  meta: MessageMeta,
): { state: SessionState; plaintext: Uint8Array } {
  checkVersion(envelope);
  const type = envelope[0];
  let off = 2;
  if (type === ENVELOPE_TYPE_PREKEY) {
    const info = parsePreKeyMessage(envelope);
    if (!constantTimeEqual(info.baseKey, s.baseKey)) throw invalidMessage();
    off += PREKEY_PART_BYTES;
  } else if (type !== ENVELOPE_TYPE_MESSAGE) {
    throw invalidMessage();
  }
  if (envelope.length < off + NONCE_BYTES + 2) throw invalidMessage();
  const nonce = envelope.subarray(off, off + NONCE_BYTES);
  off += NONCE_BYTES;
  const encHeaderBytes = ((envelope[off] as number) << 8) | (envelope[off + 1] as number);
  off += 2;
  const headerAad = envelope.subarray(0, off);
  const bodyStart = off + encHeaderBytes;
  if (
    encHeaderBytes < HEADER_BASE_BYTES + TAG_BYTES ||
    envelope.length < bodyStart + BODY_HEADER_BYTES + TAG_BYTES
  ) {
    throw invalidMessage();
  }
  const encHeader = envelope.subarray(off, bodyStart);
  const crypto = ctx.crypto;
  const aes = crypto.aes256gcm;
  const open = (hk: Uint8Array): Uint8Array | undefined => {
    try {
      return aes.decrypt(hk as AeadKey, nonce, encHeader, headerAad);
    } catch {
      return undefined;
    }
  };
  const metaAd = encodeMetaAd(type, meta);
  let step;
  try {
    step = ratchetReceive(crypto, s, open, ctx.now());
  } catch (e) {
    // A header that authenticated but names an unusable KEM/DH key is still just an
    // invalid message to the caller.
    if (e instanceof CryptoError) throw invalidMessage();
    throw e;
  }
  const ad = concatBytes(metaAd, s.sessionAd, envelope.subarray(0, bodyStart));
  let padded: Uint8Array;
  try {
    padded = aes.decrypt(step.messageKey as AeadKey, nonce, envelope.subarray(bodyStart), ad);
  } catch {
    throw invalidMessage();
  }
  const plaintext = decodeBody(padded);
  zeroize(padded);
  let state = step.state;
  if (state.pendingPreKey) state = { ...state, pendingPreKey: undefined };
  return { state, plaintext };
}

/**
 * Starts a session from a peer's verified bundle (PQXDH) and encrypts the first
 * message. Until the initiator reads a reply, every envelope it sends is a prekey
 * message carrying the handshake, so any one of them can establish the session.
 * @throws ProtocolError `INVALID_KEY` when a signed key of the bundle is unusable.
 * @example
 * ```ts
 * const bundle = verifyPreKeyBundle(crypto, fetched);
 * const { session, envelope } = initiateSession(ctx, { identity, bundle }, text, meta);
 * ```
 */
export function initiateSession(
  ctx: ProtocolContext,
  params: { readonly identity: IdentityKeyPair; readonly bundle: VerifiedPreKeyBundle },
  plaintext: Uint8Array,
  meta: MessageMeta,
): { session: Session; envelope: Uint8Array } {
  let initial: SessionState;
  try {
    initial = initiatorState(
      ctx.crypto,
      params.identity,
      meta.sender,
      meta.recipient,
      params.bundle,
    );
  } catch (e) {
    if (e instanceof CryptoError && (e.code === 'LOW_ORDER_POINT' || e.code === 'INVALID_KEY')) {
      throw new ProtocolError('INVALID_KEY', 'bundle: a prekey or identity key is unusable');
    }
    throw e;
  }
  const { state, envelope } = encryptState(ctx.crypto, initial, plaintext, meta);
  return { session: commit(undefined, initial, state), envelope };
}

/**
 * Answers an initial message: runs the responder side of PQXDH with the private keys
 * the envelope names (see {@link parsePreKeyMessage}) and decrypts the first message.
 * Nothing is consumed here: on success the caller deletes the one-time keys listed in
 * `info` from its store. Trust (is this the identity we expect for `meta.sender`?)
 * and replay (have we seen this base key?) are the caller's or `respondWithStores`'.
 * @throws ProtocolError `INVALID_SIGNATURE`, `UNKNOWN_PREKEY`, `INVALID_MESSAGE`.
 */
export function respondToPreKeyMessage(
  ctx: ProtocolContext,
  params: { readonly identity: IdentityKeyPair; readonly keys: ResponderKeys },
  envelope: Uint8Array,
  meta: MessageMeta,
): { session: Session; plaintext: Uint8Array; info: PreKeyMessageInfo } {
  const info = parsePreKeyMessage(envelope);
  let initial: SessionState;
  try {
    initial = responderState(
      ctx.crypto,
      params.identity,
      meta.recipient,
      meta.sender,
      info,
      params.keys,
    );
  } catch (e) {
    if (e instanceof CryptoError) throw invalidMessage();
    throw e;
  }
  const { state, plaintext } = decryptState(ctx, initial, envelope, meta);
  return { session: commit(undefined, initial, state), plaintext, info };
}

/**
 * Encrypts one message. The returned session replaces the input one.
 * @throws ProtocolError `MESSAGE_TOO_LARGE`, `INVALID_ARGUMENT`, `SESSION_TERMINATED`.
 */
export function encrypt(
  ctx: ProtocolContext,
  session: Session,
  plaintext: Uint8Array,
  meta: MessageMeta,
): { session: Session; envelope: Uint8Array } {
  const s = stateOf(session);
  const { state, envelope } = encryptState(ctx.crypto, s, plaintext, meta);
  return { session: commit(session, s, state), envelope };
}

/**
 * Decrypts one envelope on a copy of the state; the returned session replaces the
 * input one only on success. On any error the input session is unchanged and usable.
 * @throws ProtocolError `DUPLICATE_MESSAGE` (already read: duplicate or replay),
 * `TOO_MANY_SKIPPED`, `INVALID_MESSAGE` (anything else, deliberately vague).
 */
export function decrypt(
  ctx: ProtocolContext,
  session: Session,
  envelope: Uint8Array,
  meta: MessageMeta,
): { session: Session; plaintext: Uint8Array } {
  const s = stateOf(session);
  const { state, plaintext } = decryptState(ctx, s, envelope, meta);
  return { session: commit(session, s, state), plaintext };
}

/** @internal Decrypts against a bare state (tests sweep the responder path with it). */
export function decryptForTest(
  ctx: ProtocolContext,
  s: SessionState,
  envelope: Uint8Array,
  meta: MessageMeta,
): Uint8Array {
  return decryptState(ctx, s, envelope, meta).plaintext;
}
