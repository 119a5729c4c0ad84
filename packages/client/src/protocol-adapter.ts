/**
 * `E2ee` implemented with `@parley/protocol` (PQXDH-style handshake, Double Ratchet
 * with a post-quantum layer and header encryption). This module translates between the
 * wire's frames and the protocol's records, and stores the private prekey records in
 * the client store under these secret kinds:
 *   spk (signed X25519 prekey), kem (ML-KEM prekey, last-resort or one-time),
 *   otk (one-time X25519 prekey).
 * Record layouts (big-endian) are private to this client:
 *   spk: id u32 ‖ secret 32 ‖ public 32 ‖ signature 64 ‖ createdAt u64
 *   kem: id u32 ‖ kind u8 (1 last-resort, 2 one-time) ‖ secret 2400 ‖ public 1184 ‖ signature 64 ‖ createdAt u64
 *   otk: id u32 ‖ secret 32 ‖ public 32
 */
import {
  asEd25519Signature,
  asMlKem768PublicKey,
  asMlKem768SecretKey,
  asX25519PublicKey,
  asX25519SecretKey,
  type CryptoProvider,
  type Ed25519PublicKey,
} from '@parley/crypto';
import {
  ByteReader,
  ByteWriter,
  IdentityKeyPair,
  ProtocolError,
  decrypt as protocolDecrypt,
  deserializeSession,
  encrypt as protocolEncrypt,
  envelopeKind,
  generateKemPreKey,
  generateOneTimePreKeys,
  generateSignedPreKey,
  initiateSession,
  parsePreKeyMessage,
  publicKemPreKey,
  publicSignedPreKey,
  respondWithStores,
  safetyNumber,
  serializeSession,
  sessionMatchesPreKeyMessage,
  terminateSession,
  verifyPreKeyBundle,
  type KemPreKey,
  type KemPreKeyKind,
  type KemPreKeyRecord,
  type MessageMeta,
  type OneTimePreKeyRecord,
  type PreKeyBundle,
  type SignedPreKeyRecord,
} from '@parley/protocol';
import type { KeysBundleFrame } from '@parley/wire';
import { ClientError } from './errors.js';
import { systemClock } from './timers.js';
import type { Clock } from './timers.js';
import type {
  DecryptResult,
  E2ee,
  EncryptResult,
  Identity,
  PayloadMeta,
  PrekeyBatch,
  PrekeyRequest,
} from './e2ee.js';
import type { StoreWrite } from './store/types.js';

export const SECRET_SIGNED_PREKEY = 'spk';
export const SECRET_KEM_PREKEY = 'kem';
export const SECRET_ONE_TIME_PREKEY = 'otk';

/** Application message types bound into the protocol's associated data. */
const MESSAGE_TYPE = { message: 1, 'session.terminate': 2 } as const;

/** Prekey records are read with the protocol's reader; any defect is a corrupt profile. */
function readRecord<T>(bytes: Uint8Array, read: (r: ByteReader) => T): T {
  try {
    return read(new ByteReader(bytes, 'INVALID_STATE'));
  } catch (err) {
    if (err instanceof ProtocolError && err.code === 'INVALID_STATE') {
      throw new ClientError('PROFILE_CORRUPT', 'stored prekey record is truncated');
    }
    throw err;
  }
}

const KIND_BYTE: Record<KemPreKeyKind, number> = { 'last-resort': 1, 'one-time': 2 };

// Exact sizes: the writer never grows, so no stray copy of a secret is left behind.
const SIGNED_RECORD_BYTES = 4 + 32 + 32 + 64 + 8;
const KEM_RECORD_BYTES = 4 + 1 + 2400 + 1184 + 64 + 8;
const ONE_TIME_RECORD_BYTES = 4 + 32 + 32;

export function encodeSignedRecord(r: SignedPreKeyRecord): Uint8Array {
  return new ByteWriter(SIGNED_RECORD_BYTES)
    .u32(r.id)
    .bytes(r.keyPair.secretKey)
    .bytes(r.keyPair.publicKey)
    .bytes(r.signature)
    .u64(r.createdAtMs)
    .finish();
}
export function decodeSignedRecord(b: Uint8Array): SignedPreKeyRecord {
  return readRecord(b, (r) => {
    const id = r.u32();
    const secretKey = asX25519SecretKey(r.bytes(32));
    const publicKey = asX25519PublicKey(r.bytes(32));
    return {
      id,
      keyPair: { secretKey, publicKey },
      signature: asEd25519Signature(r.bytes(64)),
      createdAtMs: r.u64(),
    };
  });
}
export function encodeKemRecord(r: KemPreKeyRecord): Uint8Array {
  return new ByteWriter(KEM_RECORD_BYTES)
    .u32(r.id)
    .u8(KIND_BYTE[r.kind])
    .bytes(r.keyPair.secretKey)
    .bytes(r.keyPair.publicKey)
    .bytes(r.signature)
    .u64(r.createdAtMs)
    .finish();
}
export function decodeKemRecord(b: Uint8Array): KemPreKeyRecord {
  return readRecord(b, (r) => {
    const id = r.u32();
    const kind: KemPreKeyKind = r.u8() === 1 ? 'last-resort' : 'one-time';
    const secretKey = asMlKem768SecretKey(r.bytes(2400));
    const publicKey = asMlKem768PublicKey(r.bytes(1184));
    return {
      id,
      kind,
      keyPair: { secretKey, publicKey },
      signature: asEd25519Signature(r.bytes(64)),
      createdAtMs: r.u64(),
    };
  });
}
export function encodeOneTimeRecord(r: OneTimePreKeyRecord): Uint8Array {
  return new ByteWriter(ONE_TIME_RECORD_BYTES)
    .u32(r.id)
    .bytes(r.keyPair.secretKey)
    .bytes(r.keyPair.publicKey)
    .finish();
}
export function decodeOneTimeRecord(b: Uint8Array): OneTimePreKeyRecord {
  return readRecord(b, (r) => ({
    id: r.u32(),
    keyPair: {
      secretKey: asX25519SecretKey(r.bytes(32)),
      publicKey: asX25519PublicKey(r.bytes(32)),
    },
  }));
}

function translate(err: unknown): never {
  if (err instanceof ClientError) throw err;
  if (err instanceof ProtocolError && err.code === 'DUPLICATE_MESSAGE') {
    throw new ClientError('DUPLICATE', 'message already received', { cause: err });
  }
  if (err instanceof ProtocolError && err.code === 'UNKNOWN_PREKEY') {
    throw new ClientError('UNKNOWN_PREKEY', 'initial message names a prekey we do not hold', {
      cause: err,
    });
  }
  if (err instanceof ProtocolError) {
    throw new ClientError('PROTOCOL', `protocol: ${err.code}`, { cause: err });
  }
  throw new ClientError('PROTOCOL', 'protocol failure', { cause: err });
}

/** Builds and verifies the protocol's bundle from a wire `keys.bundle`. */
function bundleFromFrame(crypto: CryptoProvider, frame: KeysBundleFrame) {
  const identity = {
    signingKey: frame.identityKey as Ed25519PublicKey,
    dhKey: asX25519PublicKey(frame.identityDh.publicKey),
    dhSignature: asEd25519Signature(frame.identityDh.signature),
  };
  const signedPreKey = {
    id: frame.signedPrekey.id,
    publicKey: asX25519PublicKey(frame.signedPrekey.publicKey),
    signature: asEd25519Signature(frame.signedPrekey.signature),
  };
  const kemPreKey: KemPreKey = {
    id: frame.pqPrekey.id,
    publicKey: asMlKem768PublicKey(frame.pqPrekey.publicKey),
    signature: asEd25519Signature(frame.pqPrekey.signature),
  };
  const bundle: PreKeyBundle = {
    identity,
    signedPreKey,
    kemPreKey,
    ...(frame.oneTimePrekey
      ? {
          oneTimePreKey: {
            id: frame.oneTimePrekey.id,
            publicKey: asX25519PublicKey(frame.oneTimePrekey.publicKey),
          },
        }
      : {}),
  };
  try {
    return verifyPreKeyBundle(crypto, bundle);
  } catch (err) {
    throw new ClientError('PROTOCOL', `${frame.name}: prekey bundle signatures do not verify`, {
      cause: err,
    });
  }
}

export function createProtocolE2ee(
  crypto: CryptoProvider,
  options: { readonly clock?: Clock } = {},
): E2ee {
  const clock = options.clock ?? systemClock;
  const identities = new WeakMap<Identity, IdentityKeyPair>();
  const idOf = (identity: Identity): IdentityKeyPair => {
    let id = identities.get(identity);
    if (!id) {
      id = IdentityKeyPair.fromSeed(crypto, identity.keyPair.secretKey);
      identities.set(identity, id);
    }
    return id;
  };
  const ctx = (now: number) => ({ crypto, now: () => now });
  const metaOf = (
    from: { name: string; deviceId: number },
    to: { name: string; deviceId: number },
    m: PayloadMeta,
  ): MessageMeta => ({
    sender: { userId: from.name, deviceId: from.deviceId },
    recipient: { userId: to.name, deviceId: to.deviceId },
    messageType: MESSAGE_TYPE[m.kind],
    // The relay's timestamp is its own; the sender's clock travels inside the ciphertext.
    timestampMs: 0,
  });

  return {
    generatePrekeys(identity: Identity, req: PrekeyRequest): PrekeyBatch {
      const id = idOf(identity);
      const now = clock();
      const writes: StoreWrite[] = [];
      let signedPrekey;
      let pqLastResort;
      if (req.signedPrekeyId !== undefined) {
        const r = generateSignedPreKey(crypto, id, req.signedPrekeyId, now);
        writes.push({
          op: 'secret.put',
          kind: SECRET_SIGNED_PREKEY,
          id: r.id,
          value: encodeSignedRecord(r),
        });
        signedPrekey = publicSignedPreKey(r);
      }
      if (req.lastResortId !== undefined) {
        const r = generateKemPreKey(crypto, id, req.lastResortId, 'last-resort', now);
        writes.push({
          op: 'secret.put',
          kind: SECRET_KEM_PREKEY,
          id: r.id,
          value: encodeKemRecord(r),
        });
        const p = publicKemPreKey(r);
        pqLastResort = { id: p.id, publicKey: p.publicKey, signature: p.signature };
      }
      const oneTime = req.oneTimeIds.map((otkId) => {
        const [r] = generateOneTimePreKeys(crypto, otkId, 1);
        const rec = r as OneTimePreKeyRecord;
        writes.push({
          op: 'secret.put',
          kind: SECRET_ONE_TIME_PREKEY,
          id: rec.id,
          value: encodeOneTimeRecord(rec),
        });
        return { id: rec.id, publicKey: rec.keyPair.publicKey };
      });
      const oneTimePq = req.oneTimePqIds.map((kemId) => {
        const r = generateKemPreKey(crypto, id, kemId, 'one-time', now);
        writes.push({
          op: 'secret.put',
          kind: SECRET_KEM_PREKEY,
          id: r.id,
          value: encodeKemRecord(r),
        });
        return { id: r.id, publicKey: r.keyPair.publicKey, signature: r.signature };
      });
      const pub = id.publicIdentity;
      const upload = {
        ...(signedPrekey ? { signedPrekey } : {}),
        ...(pqLastResort ? { pqLastResort } : {}),
        oneTime,
        oneTimePq,
        // Every upload carries it; the relay keeps the first and serves it in bundles.
        identityDh: { publicKey: pub.dhKey, signature: pub.dhSignature },
      };
      return { upload, writes };
    },

    initiate(
      identity: Identity,
      fetched: KeysBundleFrame,
      plaintext: Uint8Array,
      m: PayloadMeta,
      options?: { readonly oneTimePrekey?: boolean },
    ): EncryptResult {
      try {
        // Without DH4 the handshake is still PQXDH (protocol.md §5.1: the OPK is optional).
        const { oneTimePrekey: _unused, ...withoutOneTime } = fetched;
        const frame = options?.oneTimePrekey === false ? withoutOneTime : fetched;
        const bundle = bundleFromFrame(crypto, frame);
        const meta = metaOf(identity, { name: frame.name, deviceId: frame.deviceId }, m);
        const { session, envelope } = initiateSession(
          ctx(clock()),
          { identity: idOf(identity), bundle },
          plaintext,
          meta,
        );
        const state = serializeSession(session);
        terminateSession(session);
        return { state, payload: envelope };
      } catch (err) {
        return translate(err);
      }
    },

    encrypt(
      identity: Identity,
      stateBytes: Uint8Array,
      plaintext: Uint8Array,
      m: PayloadMeta,
    ): EncryptResult {
      try {
        const session = deserializeSession(stateBytes);
        const peer = session.remoteAddress;
        const meta = metaOf(identity, { name: peer.userId, deviceId: peer.deviceId }, m);
        const { session: next, envelope } = protocolEncrypt(ctx(clock()), session, plaintext, meta);
        const state = serializeSession(next);
        terminateSession(next);
        return { state, payload: envelope };
      } catch (err) {
        return translate(err);
      }
    },

    async decrypt(identity, peer, stateBytes, payload, m, store, now): Promise<DecryptResult> {
      try {
        const meta = metaOf(peer, identity, m);
        const session = stateBytes ? deserializeSession(stateBytes) : undefined;
        const kind = envelopeKind(payload);
        if (kind === 'message' || (session && sessionMatchesPreKeyMessage(session, payload))) {
          if (!session) throw new ClientError('NO_SESSION', `no session with ${peer.name}`);
          const { session: next, plaintext } = protocolDecrypt(ctx(now), session, payload, meta);
          const state = serializeSession(next);
          const peerIdentityKey = next.remoteIdentityKey.slice();
          terminateSession(next);
          return { state, plaintext, peerIdentityKey, writes: [], newSession: false };
        }
        // An initial message starting a new session: the protocol's rule (replay check,
        // prekey lookup, handshake, then consumption) with our store behind it. Its
        // consumption becomes writes committed with the message; trust is the client's
        // own (trust.ts: a changed key is shown, not refused), so the protocol's TOFU
        // store is left empty.
        const writes: StoreWrite[] = [];
        const secret = async <T>(kind: string, id: number, decode: (b: Uint8Array) => T) => {
          const bytes = await store.getSecret(kind, id);
          return bytes ? decode(bytes) : undefined;
        };
        const { session: next, plaintext } = await respondWithStores(
          ctx(now),
          {
            identity: {
              getLocalIdentity: () => idOf(identity),
              getTrustedIdentity: () => undefined,
              saveTrustedIdentity: () => undefined,
            },
            preKeys: {
              getSignedPreKey: (id) => secret(SECRET_SIGNED_PREKEY, id, decodeSignedRecord),
              getKemPreKey: (id) => secret(SECRET_KEM_PREKEY, id, decodeKemRecord),
              getOneTimePreKey: (id) => secret(SECRET_ONE_TIME_PREKEY, id, decodeOneTimeRecord),
              removeOneTimePreKey: (id) => {
                writes.push({ op: 'secret.delete', kind: SECRET_ONE_TIME_PREKEY, id });
              },
              removeKemPreKey: (id) => {
                writes.push({ op: 'secret.delete', kind: SECRET_KEM_PREKEY, id });
              },
            },
            seen: {
              has: (id) => store.hasSeen(`pk:${id}`),
              add: (id) => {
                writes.push({ op: 'seen.add', key: `pk:${id}` });
              },
            },
          },
          payload,
          meta,
        );
        const info = parsePreKeyMessage(payload);
        const state = serializeSession(next);
        terminateSession(next);
        if (session) terminateSession(session);
        return {
          state,
          plaintext,
          peerIdentityKey: info.initiatorIdentity.signingKey.slice(),
          writes,
          newSession: true,
        };
      } catch (err) {
        return translate(err);
      }
    },

    dispose(identity: Identity): void {
      identities.get(identity)?.destroy();
      identities.delete(identity);
    },

    safetyNumber(ours, theirs) {
      const sn = safetyNumber(
        crypto,
        { userId: ours.name, identityKey: ours.identityKey as Ed25519PublicKey },
        { userId: theirs.name, identityKey: theirs.identityKey as Ed25519PublicKey },
      );
      return { digits: sn.digits, qrPayload: sn.qrPayload };
    },
  };
}
