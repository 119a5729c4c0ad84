/**
 * Double Ratchet with header encryption (Signal spec §3 and §4) plus the sparse
 * post-quantum KEM ratchet (protocol.md §PQ ratchet).
 *
 * Every function here is pure on its input state: it builds a new state object and
 * never writes into the old one, so a caller can try a decryption and simply drop
 * the result when the body fails to authenticate ("decrypt on a copy"). Superseded
 * secrets are wiped by the session layer once the new state is committed.
 *
 * Owns: ratchet state, header layout, skipped keys, the KEM schedule. Knows nothing
 * of envelopes, bodies, padding or the handshake.
 */
import {
  asMlKem768Ciphertext,
  asMlKem768PublicKey,
  asX25519PublicKey,
  constantTimeEqual,
  type CryptoProvider,
  type MlKem768Ciphertext,
  type MlKem768KeyPair,
  type MlKem768PublicKey,
  type X25519KeyPair,
  type X25519PublicKey,
} from '@parley/crypto';
import {
  MAX_PREVIOUS_RECEIVE_CHAINS,
  MAX_SKIP_PER_CHAIN,
  MAX_SKIPPED_KEYS,
  PQ_RATCHET_INTERVAL_CHAINS,
  SKIPPED_KEY_LIFETIME_MS,
} from './constants.js';
import { ByteReader, ByteWriter, type Address } from './encoding.js';
import { invalidMessage, ProtocolError } from './errors.js';
import { kdfChain, kdfRoot } from './kdf.js';

/** A message key kept for a message that has not arrived yet. */
export interface SkippedKey {
  readonly messageKey: Uint8Array;
  readonly storedAtMs: number;
}

/** Sending chain: chain key, header key, number of the next message. */
export interface SendChain {
  readonly chainKey: Uint8Array;
  readonly headerKey: Uint8Array;
  readonly n: number;
}

/** Receiving chain: as a sending chain plus the keys skipped within it. */
export interface RecvChain {
  readonly chainKey: Uint8Array;
  readonly headerKey: Uint8Array;
  readonly n: number;
  readonly skipped: ReadonlyMap<number, SkippedKey>;
}

/** An earlier receiving chain: only its header key, its end and leftover keys remain. */
export interface OldChain {
  readonly headerKey: Uint8Array;
  /** Messages below this number were either read or are in `skipped`. */
  readonly endN: number;
  readonly skipped: ReadonlyMap<number, SkippedKey>;
}

/** Whole session state. Treated as immutable. */
export interface SessionState {
  readonly localAddress: Address;
  readonly remoteAddress: Address;
  /** Initiator identity ‖ responder identity (signing key ‖ DH key each), 128 bytes. */
  readonly sessionAd: Uint8Array;
  readonly isInitiator: boolean;
  /** The initiator's handshake ephemeral key: names the session for prekey messages. */
  readonly baseKey: X25519PublicKey;
  /** Initiator only: the handshake fields resent until the first reply arrives. */
  readonly pendingPreKey: Uint8Array | undefined;
  readonly rootKey: Uint8Array;
  readonly dhSelf: X25519KeyPair;
  readonly dhRemote: X25519PublicKey | undefined;
  readonly send: SendChain | undefined;
  readonly nextSendHeaderKey: Uint8Array;
  readonly recv: RecvChain | undefined;
  readonly nextRecvHeaderKey: Uint8Array;
  /** Length of our previous sending chain (PN in the header). */
  readonly previousCounter: number;
  readonly oldChains: readonly OldChain[];
  /** Our advertised ML-KEM key, waiting for the peer's ciphertext. */
  readonly pqLocal: { readonly id: number; readonly keyPair: MlKem768KeyPair } | undefined;
  /** The peer's advertised ML-KEM key, to encapsulate to at our next sending chain. */
  readonly pqRemote: { readonly id: number; readonly publicKey: MlKem768PublicKey } | undefined;
  /** Ciphertext carried by every header of the current sending chain. */
  readonly pqSendCiphertext:
    { readonly id: number; readonly ciphertext: MlKem768Ciphertext } | undefined;
  /** Highest peer KEM key id already taken into `pqRemote` (0 = none). */
  readonly pqRemoteSeenId: number;
  /** Id for our next advertised KEM key. */
  readonly pqNextLocalId: number;
  /** Our sending chains since we last advertised a KEM key. */
  readonly pqChainsSinceAdvert: number;
  /**
   * Performance hint, not serialized: the last message started a new chain, so the
   * next one probably does too (the direction alternates) and the next header key is
   * tried first. Only the order of trial decryptions depends on it.
   */
  readonly expectStep?: boolean;
}

/** Decrypted header fields (protocol.md §Header). */
export interface Header {
  readonly ratchetKey: X25519PublicKey;
  readonly previousCounter: number;
  readonly n: number;
  readonly kemCiphertext:
    { readonly id: number; readonly ciphertext: MlKem768Ciphertext } | undefined;
  readonly kemPublicKey: { readonly id: number; readonly publicKey: MlKem768PublicKey } | undefined;
}

const FLAG_KEM_CIPHERTEXT = 1;
const FLAG_KEM_PUBLIC_KEY = 2;
/** Header plaintext without KEM material: ratchet key ‖ PN ‖ N ‖ flags. */
export const HEADER_BASE_BYTES = 41;

export function encodeHeader(h: Header): Uint8Array {
  const w = new ByteWriter(
    HEADER_BASE_BYTES + (h.kemCiphertext ? 1092 : 0) + (h.kemPublicKey ? 1188 : 0),
  );
  w.bytes(h.ratchetKey).u32(h.previousCounter).u32(h.n);
  w.u8((h.kemCiphertext ? FLAG_KEM_CIPHERTEXT : 0) | (h.kemPublicKey ? FLAG_KEM_PUBLIC_KEY : 0));
  if (h.kemCiphertext) w.u32(h.kemCiphertext.id).bytes(h.kemCiphertext.ciphertext);
  if (h.kemPublicKey) w.u32(h.kemPublicKey.id).bytes(h.kemPublicKey.publicKey);
  return w.finish();
}

export function decodeHeader(bytes: Uint8Array): Header {
  const r = new ByteReader(bytes);
  const ratchetKey = asX25519PublicKey(r.bytes(32));
  const previousCounter = r.u32();
  const n = r.u32();
  const flags = r.u8();
  if (flags > 3) throw invalidMessage();
  const kemCiphertext =
    flags & FLAG_KEM_CIPHERTEXT
      ? { id: r.u32(), ciphertext: asMlKem768Ciphertext(r.bytes(1088)) }
      : undefined;
  const kemPublicKey =
    flags & FLAG_KEM_PUBLIC_KEY
      ? { id: r.u32(), publicKey: asMlKem768PublicKey(r.bytes(1184)) }
      : undefined;
  r.end();
  return { ratchetKey, previousCounter, n, kemCiphertext, kemPublicKey };
}

/** Header plaintext size for the next message sent from `s`. */
export function nextHeaderBytes(s: SessionState): number {
  return HEADER_BASE_BYTES + (s.pqSendCiphertext ? 1092 : 0) + (s.pqLocal ? 1188 : 0);
}

/** Keys and header for one outgoing message. */
export interface SendStep {
  readonly state: SessionState;
  readonly header: Uint8Array;
  readonly headerKey: Uint8Array;
  readonly messageKey: Uint8Array;
}

/** RATCHET_ENCRYPT_HE minus the AEAD: advances the sending chain. */
export function ratchetSend(crypto: CryptoProvider, s: SessionState): SendStep {
  const send = s.send;
  if (!send) {
    throw new ProtocolError('INVALID_ARGUMENT', 'session: no sending chain yet');
  }
  const { messageKey, chainKey } = kdfChain(crypto, send.chainKey);
  const header = encodeHeader({
    ratchetKey: s.dhSelf.publicKey,
    previousCounter: s.previousCounter,
    n: send.n,
    kemCiphertext: s.pqSendCiphertext,
    kemPublicKey: s.pqLocal
      ? { id: s.pqLocal.id, publicKey: s.pqLocal.keyPair.publicKey }
      : undefined,
  });
  return {
    state: { ...s, send: { chainKey, headerKey: send.headerKey, n: send.n + 1 } },
    header,
    headerKey: send.headerKey,
    messageKey,
  };
}

/** Tries one header key; undefined when the header does not authenticate under it. */
export type HeaderOpener = (headerKey: Uint8Array) => Uint8Array | undefined;

/** Result of processing a header: the state to commit if the body authenticates. */
export interface RecvStep {
  readonly state: SessionState;
  readonly header: Header;
  readonly messageKey: Uint8Array;
}

/**
 * RATCHET_DECRYPT_HE minus the body AEAD (Signal §4.3), on a copy of the state.
 * Header keys are tried in order: current receiving chain (the common case), next
 * header key (a DH ratchet step), then recent earlier chains (late or replayed).
 * @throws ProtocolError `DUPLICATE_MESSAGE`, `TOO_MANY_SKIPPED` or `INVALID_MESSAGE`.
 */
export function ratchetReceive(
  crypto: CryptoProvider,
  s: SessionState,
  open: HeaderOpener,
  nowMs: number,
): RecvStep {
  s = pruneExpired(s, nowMs);
  const tryCurrent = (): RecvStep | undefined => {
    const plain = s.recv ? open(s.recv.headerKey) : undefined;
    if (!plain) return undefined;
    const step = receiveInCurrent(crypto, s, decodeHeader(plain), nowMs);
    return { ...step, state: { ...step.state, expectStep: false } };
  };
  const tryNext = (): RecvStep | undefined => {
    const plain = open(s.nextRecvHeaderKey);
    if (!plain) return undefined;
    const header = decodeHeader(plain);
    const step = receiveInCurrent(crypto, dhRatchet(crypto, s, header, nowMs), header, nowMs);
    return { ...step, state: { ...step.state, expectStep: true } };
  };
  const found = s.expectStep ? (tryNext() ?? tryCurrent()) : (tryCurrent() ?? tryNext());
  if (found) return found;
  for (let i = s.oldChains.length - 1; i >= 0; i--) {
    const chain = s.oldChains[i] as OldChain;
    const p = open(chain.headerKey);
    if (!p) continue;
    const header = decodeHeader(p);
    const key = chain.skipped.get(header.n);
    if (!key) {
      if (header.n < chain.endN) {
        throw new ProtocolError('DUPLICATE_MESSAGE', 'message already received');
      }
      throw invalidMessage();
    }
    const skipped = new Map(chain.skipped);
    skipped.delete(header.n);
    const oldChains = s.oldChains.slice();
    oldChains[i] = { ...chain, skipped };
    return { state: { ...s, oldChains }, header, messageKey: key.messageKey };
  }
  throw invalidMessage();
}

function receiveInCurrent(
  crypto: CryptoProvider,
  s: SessionState,
  header: Header,
  nowMs: number,
): RecvStep {
  const recv = s.recv;
  if (!recv || !s.dhRemote || !constantTimeEqual(header.ratchetKey, s.dhRemote)) {
    throw invalidMessage();
  }
  s = takeRemoteKemKey(s, header);
  if (header.n < recv.n) {
    const key = recv.skipped.get(header.n);
    if (!key) throw new ProtocolError('DUPLICATE_MESSAGE', 'message already received');
    const skipped = new Map(recv.skipped);
    skipped.delete(header.n);
    return { state: { ...s, recv: { ...recv, skipped } }, header, messageKey: key.messageKey };
  }
  const advanced = skipTo(crypto, s, header.n, nowMs);
  const r = advanced.recv as RecvChain;
  const { messageKey, chainKey } = kdfChain(crypto, r.chainKey);
  return {
    state: { ...advanced, recv: { ...r, chainKey, n: r.n + 1 } },
    header,
    messageKey,
  };
}

/** Stores the keys of messages `recv.n .. until-1` as skipped. */
function skipTo(
  crypto: CryptoProvider,
  s: SessionState,
  until: number,
  nowMs: number,
): SessionState {
  const recv = s.recv;
  if (!recv || until <= recv.n) return s;
  if (until - recv.n > MAX_SKIP_PER_CHAIN) {
    throw new ProtocolError('TOO_MANY_SKIPPED', `more than ${MAX_SKIP_PER_CHAIN} messages skipped`);
  }
  const skipped = new Map(recv.skipped);
  let ck = recv.chainKey;
  for (let n = recv.n; n < until; n++) {
    const step = kdfChain(crypto, ck);
    skipped.set(n, { messageKey: step.messageKey, storedAtMs: nowMs });
    ck = step.chainKey;
  }
  return enforceSkippedLimit({ ...s, recv: { ...recv, chainKey: ck, n: until, skipped } });
}

/** Drops the oldest skipped keys beyond `MAX_SKIPPED_KEYS` (oldest chain first). */
function enforceSkippedLimit(s: SessionState): SessionState {
  let total = s.recv ? s.recv.skipped.size : 0;
  for (const c of s.oldChains) total += c.skipped.size;
  if (total <= MAX_SKIPPED_KEYS) return s;
  let excess = total - MAX_SKIPPED_KEYS;
  const oldChains = s.oldChains.map((c) => {
    if (excess === 0 || c.skipped.size === 0) return c;
    const skipped = new Map(c.skipped);
    for (const n of c.skipped.keys()) {
      if (excess === 0) break;
      skipped.delete(n);
      excess--;
    }
    return { ...c, skipped };
  });
  let recv = s.recv;
  if (excess > 0 && recv) {
    const skipped = new Map(recv.skipped);
    for (const n of recv.skipped.keys()) {
      if (excess === 0) break;
      skipped.delete(n);
      excess--;
    }
    recv = { ...recv, skipped };
  }
  return { ...s, oldChains, recv };
}

function pruneExpired(s: SessionState, nowMs: number): SessionState {
  const expired = (m: ReadonlyMap<number, SkippedKey>): boolean => {
    for (const k of m.values()) if (nowMs - k.storedAtMs > SKIPPED_KEY_LIFETIME_MS) return true;
    return false;
  };
  const prune = (m: ReadonlyMap<number, SkippedKey>): Map<number, SkippedKey> => {
    const out = new Map<number, SkippedKey>();
    for (const [n, k] of m) if (nowMs - k.storedAtMs <= SKIPPED_KEY_LIFETIME_MS) out.set(n, k);
    return out;
  };
  let changed = false;
  let recv = s.recv;
  if (recv && recv.skipped.size > 0 && expired(recv.skipped)) {
    recv = { ...recv, skipped: prune(recv.skipped) };
    changed = true;
  }
  const oldChains = s.oldChains.map((c) => {
    if (c.skipped.size === 0 || !expired(c.skipped)) return c;
    changed = true;
    return { ...c, skipped: prune(c.skipped) };
  });
  return changed ? { ...s, recv, oldChains } : s;
}

/** Remembers a KEM key the peer advertised (once per key id). */
function takeRemoteKemKey(s: SessionState, header: Header): SessionState {
  const pk = header.kemPublicKey;
  if (!pk || pk.id <= s.pqRemoteSeenId) return s;
  return { ...s, pqRemote: { id: pk.id, publicKey: pk.publicKey }, pqRemoteSeenId: pk.id };
}

/**
 * DHRatchetHE (Signal §4.3) with the KEM steps of the PQ ratchet:
 * the receiving chain's root step mixes in the decapsulated secret when the header
 * carries a ciphertext for our advertised key; the new sending chain's root step mixes
 * in a fresh encapsulation to the peer's advertised key, if any.
 */
function dhRatchet(
  crypto: CryptoProvider,
  s0: SessionState,
  header: Header,
  nowMs: number,
): SessionState {
  let s = skipTo(crypto, s0, header.previousCounter, nowMs);
  s = takeRemoteKemKey(s, header);
  const oldChains = s.recv
    ? [...s.oldChains, { headerKey: s.recv.headerKey, endN: s.recv.n, skipped: s.recv.skipped }]
    : s.oldChains.slice();
  while (oldChains.length > MAX_PREVIOUS_RECEIVE_CHAINS) oldChains.shift();

  let kemIn: Uint8Array | undefined;
  let pqLocal = s.pqLocal;
  if (header.kemCiphertext) {
    if (!pqLocal || header.kemCiphertext.id !== pqLocal.id) throw invalidMessage();
    kemIn = crypto.mlkem768.decapsulate(header.kemCiphertext.ciphertext, pqLocal.keyPair.secretKey);
    pqLocal = undefined;
  }
  const recvStep = kdfRoot(
    crypto,
    s.rootKey,
    crypto.x25519.dh(s.dhSelf.secretKey, header.ratchetKey),
    kemIn,
  );

  const dhSelf = crypto.x25519.generateKeyPair();
  let kemOut: Uint8Array | undefined;
  let pqSendCiphertext: SessionState['pqSendCiphertext'];
  let pqRemote = s.pqRemote;
  if (pqRemote) {
    const enc = crypto.mlkem768.encapsulate(pqRemote.publicKey);
    kemOut = enc.sharedSecret;
    pqSendCiphertext = { id: pqRemote.id, ciphertext: enc.ciphertext };
    pqRemote = undefined;
  }
  let pqChainsSinceAdvert = s.pqChainsSinceAdvert + 1;
  let pqNextLocalId = s.pqNextLocalId;
  if (!pqLocal && pqChainsSinceAdvert >= PQ_RATCHET_INTERVAL_CHAINS) {
    pqLocal = { id: pqNextLocalId, keyPair: crypto.mlkem768.generateKeyPair() };
    pqNextLocalId++;
    pqChainsSinceAdvert = 0;
  }
  const sendStep = kdfRoot(
    crypto,
    recvStep.rootKey,
    crypto.x25519.dh(dhSelf.secretKey, header.ratchetKey),
    kemOut,
  );
  return {
    ...s,
    oldChains,
    previousCounter: s.send ? s.send.n : 0,
    dhRemote: header.ratchetKey,
    recv: {
      chainKey: recvStep.chainKey,
      headerKey: s.nextRecvHeaderKey,
      n: 0,
      skipped: new Map(),
    },
    nextRecvHeaderKey: recvStep.nextHeaderKey,
    dhSelf,
    send: { chainKey: sendStep.chainKey, headerKey: s.nextSendHeaderKey, n: 0 },
    nextSendHeaderKey: sendStep.nextHeaderKey,
    rootKey: sendStep.rootKey,
    pqLocal,
    pqRemote,
    pqSendCiphertext,
    pqNextLocalId,
    pqChainsSinceAdvert,
  };
}

/**
 * Every secret buffer the state references, for wiping what a new state no longer
 * uses (and everything on termination).
 */
export function secretBuffers(s: SessionState): Uint8Array[] {
  const out: Uint8Array[] = [
    s.rootKey,
    s.dhSelf.secretKey,
    s.nextSendHeaderKey,
    s.nextRecvHeaderKey,
  ];
  if (s.send) out.push(s.send.chainKey, s.send.headerKey);
  if (s.recv) {
    out.push(s.recv.chainKey, s.recv.headerKey);
    for (const k of s.recv.skipped.values()) out.push(k.messageKey);
  }
  for (const c of s.oldChains) {
    out.push(c.headerKey);
    for (const k of c.skipped.values()) out.push(k.messageKey);
  }
  if (s.pqLocal) out.push(s.pqLocal.keyPair.secretKey);
  return out;
}
