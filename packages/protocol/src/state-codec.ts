/**
 * Versioned session state bytes (protocol.md §State). The format is ours alone (it
 * never crosses the wire) but is versioned so that saved sessions survive upgrades.
 * Skipped keys, earlier chains and the KEM ratchet are all included, so duplicate
 * detection works the same after a save and restore.
 *
 * Owns: state (de)serialization. Knows nothing of the ratchet's rules.
 */
import {
  asMlKem768Ciphertext,
  asMlKem768PublicKey,
  asMlKem768SecretKey,
  asX25519PublicKey,
  asX25519SecretKey,
} from '@parley/crypto';
import { MAX_PREVIOUS_RECEIVE_CHAINS, MAX_SKIPPED_KEYS } from './constants.js';
import { ByteReader, ByteWriter, readAddress, writeAddress } from './encoding.js';
import { ProtocolError } from './errors.js';
import { PREKEY_PART_BYTES } from './handshake.js';
import type { SessionState, SkippedKey } from './ratchet.js';
import { sessionFromState, stateOf, type Session } from './session.js';

/** First byte of serialized state. */
export const STATE_FORMAT_VERSION = 1;

function writeSkipped(w: ByteWriter, m: ReadonlyMap<number, SkippedKey>): void {
  w.u32(m.size);
  for (const [n, k] of m) w.u32(n).bytes(k.messageKey).u64(k.storedAtMs);
}
function readSkipped(r: ByteReader): Map<number, SkippedKey> {
  const count = r.u32();
  if (count > MAX_SKIPPED_KEYS)
    throw new ProtocolError('INVALID_STATE', 'state: too many skipped keys');
  const m = new Map<number, SkippedKey>();
  for (let i = 0; i < count; i++) {
    const n = r.u32();
    m.set(n, { messageKey: r.bytes(32), storedAtMs: r.u64() });
  }
  return m;
}

/** Serializes a session (it stays usable). The bytes hold secrets: store them encrypted. */
export function serializeSession(session: Session): Uint8Array {
  const s = stateOf(session);
  const w = new ByteWriter(4096);
  w.u8(STATE_FORMAT_VERSION);
  writeAddress(w, s.localAddress);
  writeAddress(w, s.remoteAddress);
  w.bytes(s.sessionAd)
    .u8(s.isInitiator ? 1 : 0)
    .bytes(s.baseKey);
  w.u8(s.pendingPreKey ? 1 : 0);
  if (s.pendingPreKey) w.bytes(s.pendingPreKey);
  w.bytes(s.rootKey).bytes(s.dhSelf.publicKey).bytes(s.dhSelf.secretKey);
  w.u8(s.dhRemote ? 1 : 0);
  if (s.dhRemote) w.bytes(s.dhRemote);
  w.u8(s.send ? 1 : 0);
  if (s.send) w.bytes(s.send.chainKey).bytes(s.send.headerKey).u32(s.send.n);
  w.bytes(s.nextSendHeaderKey);
  w.u8(s.recv ? 1 : 0);
  if (s.recv) {
    w.bytes(s.recv.chainKey).bytes(s.recv.headerKey).u32(s.recv.n);
    writeSkipped(w, s.recv.skipped);
  }
  w.bytes(s.nextRecvHeaderKey).u32(s.previousCounter);
  w.u8(s.oldChains.length);
  for (const c of s.oldChains) {
    w.bytes(c.headerKey).u32(c.endN);
    writeSkipped(w, c.skipped);
  }
  w.u8((s.pqLocal ? 1 : 0) | (s.pqRemote ? 2 : 0) | (s.pqSendCiphertext ? 4 : 0));
  if (s.pqLocal) {
    w.u32(s.pqLocal.id).bytes(s.pqLocal.keyPair.publicKey).bytes(s.pqLocal.keyPair.secretKey);
  }
  if (s.pqRemote) w.u32(s.pqRemote.id).bytes(s.pqRemote.publicKey);
  if (s.pqSendCiphertext) w.u32(s.pqSendCiphertext.id).bytes(s.pqSendCiphertext.ciphertext);
  w.u32(s.pqRemoteSeenId).u32(s.pqNextLocalId).u32(s.pqChainsSinceAdvert);
  return w.finish();
}

/**
 * Restores a session from {@link serializeSession} output.
 * @throws ProtocolError `UNSUPPORTED_VERSION` or `INVALID_STATE`.
 */
export function deserializeSession(bytes: Uint8Array): Session {
  const r = new ByteReader(bytes, 'INVALID_STATE');
  const version = r.u8();
  if (version !== STATE_FORMAT_VERSION) {
    throw new ProtocolError('UNSUPPORTED_VERSION', `state: format ${version}`);
  }
  try {
    const localAddress = readAddress(r);
    const remoteAddress = readAddress(r);
    const sessionAd = r.bytes(128);
    const isInitiator = r.u8() === 1;
    const baseKey = asX25519PublicKey(r.bytes(32));
    const pendingPreKey = r.u8() === 1 ? r.bytes(PREKEY_PART_BYTES) : undefined;
    const rootKey = r.bytes(32);
    const dhSelf = {
      publicKey: asX25519PublicKey(r.bytes(32)),
      secretKey: asX25519SecretKey(r.bytes(32)),
    };
    const dhRemote = r.u8() === 1 ? asX25519PublicKey(r.bytes(32)) : undefined;
    const send =
      r.u8() === 1 ? { chainKey: r.bytes(32), headerKey: r.bytes(32), n: r.u32() } : undefined;
    const nextSendHeaderKey = r.bytes(32);
    const recv =
      r.u8() === 1
        ? { chainKey: r.bytes(32), headerKey: r.bytes(32), n: r.u32(), skipped: readSkipped(r) }
        : undefined;
    const nextRecvHeaderKey = r.bytes(32);
    const previousCounter = r.u32();
    const oldCount = r.u8();
    if (oldCount > MAX_PREVIOUS_RECEIVE_CHAINS) {
      throw new ProtocolError('INVALID_STATE', 'state: too many earlier chains');
    }
    const oldChains = [];
    for (let i = 0; i < oldCount; i++) {
      oldChains.push({ headerKey: r.bytes(32), endN: r.u32(), skipped: readSkipped(r) });
    }
    const pqFlags = r.u8();
    const pqLocal =
      pqFlags & 1
        ? {
            id: r.u32(),
            keyPair: {
              publicKey: asMlKem768PublicKey(r.bytes(1184)),
              secretKey: asMlKem768SecretKey(r.bytes(2400)),
            },
          }
        : undefined;
    const pqRemote =
      pqFlags & 2 ? { id: r.u32(), publicKey: asMlKem768PublicKey(r.bytes(1184)) } : undefined;
    const pqSendCiphertext =
      pqFlags & 4 ? { id: r.u32(), ciphertext: asMlKem768Ciphertext(r.bytes(1088)) } : undefined;
    const state: SessionState = {
      localAddress,
      remoteAddress,
      sessionAd,
      isInitiator,
      baseKey,
      pendingPreKey,
      rootKey,
      dhSelf,
      dhRemote,
      send,
      nextSendHeaderKey,
      recv,
      nextRecvHeaderKey,
      previousCounter,
      oldChains,
      pqLocal,
      pqRemote,
      pqSendCiphertext,
      pqRemoteSeenId: r.u32(),
      pqNextLocalId: r.u32(),
      pqChainsSinceAdvert: r.u32(),
    };
    r.end();
    return sessionFromState(state);
  } catch (e) {
    if (e instanceof ProtocolError) throw e;
    throw new ProtocolError('INVALID_STATE', 'state: malformed');
  }
}
