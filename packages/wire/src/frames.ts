/**
 * The frame catalogue: every frame type, its one-byte type code, the direction it
 * travels in, and its field schema. The TypeScript frame types are derived from this
 * table, so the schema and the types cannot disagree. Byte layouts: docs/wire.md §4.
 *
 * Codes 0x01-0x3f travel client -> server, 0x40-0x6f server -> client, 0x70-0x7f both
 * ways. Codes and field order are frozen once released: a new field means a new
 * frame type or a new protocol version, never a silent change.
 */
import type { InferStruct, StructShape } from './schema.js';
import { t } from './schema.js';
import {
  BLOB_ID_BYTES,
  CHALLENGE_NONCE_BYTES,
  CLIENT_MESSAGE_ID_BYTES,
  IDENTITY_KEY_BYTES,
  MAX_BLOB_CHUNK_BYTES,
  MAX_CERTIFICATE_BYTES,
  MAX_CRL_BYTES,
  MAX_ONE_TIME_PQ_PREKEYS_PER_UPLOAD,
  MAX_ONE_TIME_PREKEYS_PER_UPLOAD,
  MAX_PAYLOAD_BYTES,
  MAX_GROUP_SEND_RECIPIENTS,
  MAX_PRESENCE_NAMES,
  MAX_PROTOCOL_VERSIONS,
  MAX_SERVER_ID_BYTES,
  MAX_SESSION_TOKEN_BYTES,
  MLKEM768_PUBLIC_KEY_BYTES,
  SIGNATURE_BYTES,
  X25519_PUBLIC_KEY_BYTES,
} from './limits.js';

/** Which way a frame travels. */
export type Direction = 'toServer' | 'toClient';

/* ---------- shared structs ---------- */

/** A device address: identity name plus device id (one device per name for now: 1). */
const address = t.struct({ name: t.name(), deviceId: t.u32() });

/** Medium-term X25519 prekey, signed by the identity key. */
const signedPrekey = t.struct({
  id: t.u32(),
  publicKey: t.bytes(X25519_PUBLIC_KEY_BYTES),
  signature: t.bytes(SIGNATURE_BYTES),
});

/** ML-KEM-768 prekey (last-resort or one-time), signed by the identity key. */
const pqPrekey = t.struct({
  id: t.u32(),
  publicKey: t.bytes(MLKEM768_PUBLIC_KEY_BYTES),
  signature: t.bytes(SIGNATURE_BYTES),
});

/**
 * The device's X25519 identity DH key, signed by its Ed25519 identity key. It is
 * derived from the identity seed, so it never changes for a device; the relay stores
 * it from the first upload and serves it in every bundle (docs/protocol.md).
 */
const identityDh = t.struct({
  publicKey: t.bytes(X25519_PUBLIC_KEY_BYTES),
  signature: t.bytes(SIGNATURE_BYTES),
});

/** One-time X25519 prekey (unsigned, as in X3DH). */
const oneTimePrekey = t.struct({ id: t.u32(), publicKey: t.bytes(X25519_PUBLIC_KEY_BYTES) });

/** Fields shared by `send` and `session.terminate`, relayed alike. */
const relayed = {
  clientMessageId: t.bytes(CLIENT_MESSAGE_ID_BYTES),
  from: address,
  to: address,
  payload: t.varbytes(MAX_PAYLOAD_BYTES),
} as const;

/**
 * What a relayed frame was, so the recipient can tell a session's end from a message.
 * Indices 1 and 2 belonged to the retired `session.request`/`session.accept` frames: the
 * relay never sends them, and they keep their places so `session.terminate` stays 3.
 */
export const DELIVER_KINDS = [
  'message',
  'session.request',
  'session.accept',
  'session.terminate',
  'group',
] as const;

/** Receipt states: stored durably for the recipient (M11), or acknowledged by it (M12). */
export const RECEIPT_STATUSES = ['queued', 'delivered'] as const;

/** Fields of `receipt` and `receipt.stored`. */
const receiptFields = {
  clientMessageId: t.bytes(CLIENT_MESSAGE_ID_BYTES),
  status: t.enum(RECEIPT_STATUSES),
  serverMessageId: t.u64(),
  timestamp: t.u64(),
} as const;

/**
 * Error codes the server may send. Deliberately coarse (M13): `failed` is the uniform
 * answer whenever the requester is not entitled to know why (unknown name, no keys,
 * not allowed). Index order is the wire encoding: append only.
 */
export const ERROR_CODES = [
  'failed',
  'bad_request',
  'auth_failed',
  'rate_limited',
  'unsupported_version',
  'too_large',
  'server_error',
] as const;

/**
 * Why the relay refused a `cert.login` (the device's own certificate, so no secret of
 * anyone else's). Index order is the wire encoding: append only.
 */
export const CERT_REFUSAL_REASONS = [
  /** Not from the organisation CA, malformed, or not an Ed25519 `CN=<name>` device certificate. */
  'untrusted',
  /** On the relay's current CRL. */
  'revoked',
  /** Outside its validity period on the relay's clock. */
  'expired',
  /** The certificate names someone else, or the signature is not by its key. */
  'mismatch',
] as const;

/** Reason carried by a `cert.refused` frame. */
export type CertRefusalReason = (typeof CERT_REFUSAL_REASONS)[number];

/** Server error code carried by an `error` frame. */
export type ErrorFrameCode = (typeof ERROR_CODES)[number];

/** One row of the catalogue. */
export interface FrameSpec {
  readonly code: number;
  readonly direction: Direction | 'both';
  readonly fields: StructShape;
}

/**
 * The catalogue. Read each entry as "type: code, direction, fields in wire order".
 */
export const FRAME_SPECS = {
  /* ----- client -> server ----- */

  /** First frame on a connection. Live-only. Its layout is frozen across versions. */
  hello: {
    code: 0x01,
    direction: 'toServer',
    fields: {
      protocolVersions: t.list(MAX_PROTOCOL_VERSIONS, t.u16()),
      timestamp: t.u64(),
    },
  },
  /** Open mode: claim a name with an identity key, signing the challenge (`authSignedData`). Live-only. */
  register: {
    code: 0x02,
    direction: 'toServer',
    fields: {
      name: t.name(),
      deviceId: t.u32(),
      identityKey: t.bytes(IDENTITY_KEY_BYTES),
      timestamp: t.u64(),
      signature: t.bytes(SIGNATURE_BYTES),
    },
  },
  /** Open mode: prove possession of a registered identity key (also re-authentication). Live-only. */
  login: {
    code: 0x03,
    direction: 'toServer',
    fields: {
      name: t.name(),
      deviceId: t.u32(),
      timestamp: t.u64(),
      signature: t.bytes(SIGNATURE_BYTES),
    },
  },
  /**
   * mtls relay, browser listener: answer a `challenge` with a CA-signed device
   * certificate (DER) and its key's signature over `authSignedData` (purpose login), for
   * a client that cannot present the certificate in the TLS handshake. Live-only.
   */
  'cert.login': {
    code: 0x14,
    direction: 'toServer',
    fields: {
      name: t.name(),
      deviceId: t.u32(),
      certificate: t.varbytes(MAX_CERTIFICATE_BYTES),
      timestamp: t.u64(),
      signature: t.bytes(SIGNATURE_BYTES),
    },
  },
  /**
   * Open mode: answer a `challenge` with the single-use session token of an earlier
   * `welcome` instead of a signature (reconnect within the session's lifetime). The
   * token is a bearer secret: never logged (`summarizeFrame` drops it). Live-only.
   */
  resume: {
    code: 0x0d,
    direction: 'toServer',
    fields: {
      name: t.name(),
      deviceId: t.u32(),
      sessionToken: t.varbytes(MAX_SESSION_TOKEN_BYTES),
      timestamp: t.u64(),
    },
  },
  /**
   * Publish or replenish prekeys. Omitted identityDh/signed/last-resort keys keep the
   * stored ones (the first upload must carry all three).
   */
  'prekeys.upload': {
    code: 0x04,
    direction: 'toServer',
    fields: {
      identityDh: t.optional(identityDh),
      signedPrekey: t.optional(signedPrekey),
      pqLastResort: t.optional(pqPrekey),
      oneTime: t.list(MAX_ONE_TIME_PREKEYS_PER_UPLOAD, oneTimePrekey),
      oneTimePq: t.list(MAX_ONE_TIME_PQ_PREKEYS_PER_UPLOAD, pqPrekey),
    },
  },
  /** Ask for a device's prekey bundle; answered by `keys.bundle` or `error` with the same id. */
  'keys.lookup': {
    code: 0x05,
    direction: 'toServer',
    fields: { requestId: t.u32(), name: t.name(), deviceId: t.optional(t.u32()) },
  },
  /** Relay an opaque E2EE payload. Answered by `receipt` (queued, later delivered). */
  send: { code: 0x06, direction: 'toServer', fields: relayed },
  /** Relayed like `send` (payload may be empty); delivered with kind `session.terminate`. */
  'session.terminate': { code: 0x09, direction: 'toServer', fields: relayed },
  /**
   * One upload of one opaque group payload for several recipients: the relay stores one
   * copy in each recipient's mailbox (delivered with kind `group`) and answers one
   * `receipt` queued once every copy is durable. Counted as one frame by rate limits.
   */
  'group.send': {
    code: 0x10,
    direction: 'toServer',
    fields: {
      clientMessageId: t.bytes(CLIENT_MESSAGE_ID_BYTES),
      from: address,
      to: t.list(MAX_GROUP_SEND_RECIPIENTS, address),
      payload: t.varbytes(MAX_PAYLOAD_BYTES),
    },
  },
  /**
   * The client has durably processed what the relay told it about `serverMessageId`: a
   * `deliver` (the relay may delete the mail) or a `receipt.stored` (the relay may delete
   * the kept receipt). Server ids are unique relay-wide, so one frame serves both.
   */
  ack: { code: 0x0a, direction: 'toServer', fields: { serverMessageId: t.u64() } },
  /**
   * A sync point: answered by `mailbox.empty` once every `ack` sent before it has taken
   * effect and all mail pending so far has been sent. It re-sends nothing: the relay
   * pushes the stored backlog by itself after `welcome` (docs/wire.md §4.3).
   */
  'mailbox.fetch': { code: 0x0b, direction: 'toServer', fields: {} },
  /** Ask who is online; answered by `presence.list.result` with the same id. */
  'presence.list': { code: 0x0c, direction: 'toServer', fields: { requestId: t.u32() } },
  /**
   * Ask for a device's identity (key, signed DH key, certificate) without taking any of
   * its prekeys; answered by `identity.result` or `error` with the same id.
   */
  'identity.lookup': {
    code: 0x0e,
    direction: 'toServer',
    fields: { requestId: t.u32(), name: t.name(), deviceId: t.optional(t.u32()) },
  },
  /** Ask for the CRL the relay enforces (mtls); answered by `crl` with the same id. */
  'crl.fetch': { code: 0x0f, direction: 'toServer', fields: { requestId: t.u32() } },

  /**
   * Start or resume the upload of an attachment blob: `chunkCount` ciphertext chunks of
   * exactly `chunkBytes` each. Answered by `blob.status` (how many chunks the relay holds)
   * or `error` (`too_large`: above the size limit; `rate_limited`: over quota; `failed`:
   * the id belongs to another uploader or the parameters differ).
   */
  'blob.begin': {
    code: 0x11,
    direction: 'toServer',
    fields: {
      requestId: t.u32(),
      blobId: t.bytes(BLOB_ID_BYTES),
      chunkCount: t.u32(),
      chunkBytes: t.u16(),
    },
  },
  /**
   * One ciphertext chunk, in index order after a `blob.begin`. Always exactly one block.
   * Acknowledged in batches by `blob.status` once written durably.
   */
  'blob.chunk': {
    code: 0x12,
    direction: 'toServer',
    fields: {
      blobId: t.bytes(BLOB_ID_BYTES),
      index: t.u32(),
      data: t.varbytes(MAX_BLOB_CHUNK_BYTES),
    },
  },
  /**
   * Ask for the chunks of a complete blob from `fromIndex` on; answered by `blob.status`
   * then one `blob.data` per chunk, or `error` (`failed`: unknown, incomplete or expired).
   */
  'blob.fetch': {
    code: 0x13,
    direction: 'toServer',
    fields: { requestId: t.u32(), blobId: t.bytes(BLOB_ID_BYTES), fromIndex: t.u32() },
  },

  /* ----- server -> client ----- */

  /** Sent after `hello` in open mode, and again to demand re-authentication. Live-only. */
  challenge: {
    code: 0x41,
    direction: 'toClient',
    fields: {
      version: t.u16(),
      nonce: t.bytes(CHALLENGE_NONCE_BYTES),
      timestamp: t.u64(),
      serverId: t.utf8(MAX_SERVER_ID_BYTES),
    },
  },
  /**
   * Authentication succeeded (mtls: directly after hello). Carries the limits the client
   * must respect and, in open mode, a fresh single-use `sessionToken` for `resume` valid
   * until `expiresAt` (empty in mtls mode, where the certificate authenticates every
   * handshake).
   */
  welcome: {
    code: 0x42,
    direction: 'toClient',
    fields: {
      version: t.u16(),
      name: t.name(),
      deviceId: t.u32(),
      sessionToken: t.varbytes(MAX_SESSION_TOKEN_BYTES),
      expiresAt: t.u64(),
      limits: t.struct({
        blockBytes: t.u32(),
        maxFrameBytes: t.u32(),
        maxPayloadBytes: t.u32(),
        rateLimitMessages: t.u32(),
        rateLimitWindowMs: t.u32(),
      }),
    },
  },
  /** The owner's stock of one-time prekeys is running low: upload more. */
  'prekeys.low': {
    code: 0x43,
    direction: 'toClient',
    fields: { remainingOneTime: t.u32(), remainingOneTimePq: t.u32() },
  },
  /**
   * Answer to `keys.lookup`. `pqPrekey` is a one-time key if any is left, else the
   * last-resort key; `certificate` (DER) lets the client check the identity key against
   * the CA in mtls mode, so the relay cannot substitute keys.
   */
  'keys.bundle': {
    code: 0x44,
    direction: 'toClient',
    fields: {
      requestId: t.u32(),
      name: t.name(),
      deviceId: t.u32(),
      identityKey: t.bytes(IDENTITY_KEY_BYTES),
      identityDh,
      certificate: t.optional(t.varbytes(MAX_CERTIFICATE_BYTES)),
      signedPrekey,
      pqPrekey,
      oneTimePrekey: t.optional(oneTimePrekey),
    },
  },
  /** Delivery state of a frame this client sent, told live (nothing to acknowledge). */
  receipt: { code: 0x45, direction: 'toClient', fields: receiptFields },
  /**
   * A receipt the relay kept because the sender was offline, sent after `welcome`. Same
   * fields as `receipt`; the relay keeps it until the client answers `ack` with its
   * `serverMessageId` (at-least-once: a repeat after a lost connection is harmless).
   */
  'receipt.stored': { code: 0x4b, direction: 'toClient', fields: receiptFields },
  /** A relayed frame for this client. Not live-only: stored frames keep their timestamp. */
  deliver: {
    code: 0x46,
    direction: 'toClient',
    fields: {
      serverMessageId: t.u64(),
      kind: t.enum(DELIVER_KINDS),
      from: address,
      timestamp: t.u64(),
      payload: t.varbytes(MAX_PAYLOAD_BYTES),
    },
  },
  /** The stored backlog has been sent in full (Signal-Desktop's "queue empty"). */
  'mailbox.empty': { code: 0x47, direction: 'toClient', fields: {} },
  /** Someone came online or went offline. */
  presence: {
    code: 0x48,
    direction: 'toClient',
    fields: { event: t.enum(['join', 'leave']), name: t.name() },
  },
  /** Answer to `presence.list`; `truncated` when more than `MAX_PRESENCE_NAMES` are online. */
  'presence.list.result': {
    code: 0x49,
    direction: 'toClient',
    fields: {
      requestId: t.u32(),
      names: t.list(MAX_PRESENCE_NAMES, t.name()),
      truncated: t.bool(),
    },
  },
  /**
   * The CRL the relay enforces (DER, signed by the organisation CA): the answer to
   * `crl.fetch` (same `requestId`), or unsolicited (`requestId` 0) when the relay loaded
   * a new one, sent to every connection before it closes those it revoked. A client
   * believes it only after checking its signature against its own copy of the CA.
   */
  crl: {
    code: 0x4e,
    direction: 'toClient',
    fields: { requestId: t.u32(), crl: t.varbytes(MAX_CRL_BYTES) },
  },
  /**
   * The answer to a `cert.login` the relay refused, with the reason; the relay closes
   * the connection after it.
   */
  'cert.refused': {
    code: 0x53,
    direction: 'toClient',
    fields: { reason: t.enum(CERT_REFUSAL_REASONS) },
  },
  /** A request failed. Correlates by `requestId` or `clientMessageId` when it has one. */
  error: {
    code: 0x4a,
    direction: 'toClient',
    fields: {
      code: t.enum(ERROR_CODES),
      requestId: t.optional(t.u32()),
      clientMessageId: t.optional(t.bytes(CLIENT_MESSAGE_ID_BYTES)),
    },
  },

  /**
   * Answer to `identity.lookup`: the identity parts of `keys.bundle` and nothing that is
   * handed out once, so checking a sender's certificate costs the sender no prekey.
   */
  'identity.result': {
    code: 0x4c,
    direction: 'toClient',
    fields: {
      requestId: t.u32(),
      name: t.name(),
      deviceId: t.u32(),
      identityKey: t.bytes(IDENTITY_KEY_BYTES),
      identityDh,
      certificate: t.optional(t.varbytes(MAX_CERTIFICATE_BYTES)),
    },
  },
  /**
   * A `prekeys.upload` was stored (answers come in upload order; a refused upload gets
   * `error` instead). Carries the one-time stock after the upload.
   */
  'prekeys.stored': {
    code: 0x4d,
    direction: 'toClient',
    fields: { remainingOneTime: t.u32(), remainingOneTimePq: t.u32() },
  },

  /**
   * What the relay holds of a blob: the answer to `blob.begin` and `blob.fetch` (same
   * `requestId`), and after a `blob.begin` again each time more chunks are durable.
   */
  'blob.status': {
    code: 0x50,
    direction: 'toClient',
    fields: {
      requestId: t.u32(),
      blobId: t.bytes(BLOB_ID_BYTES),
      chunkCount: t.u32(),
      chunkBytes: t.u16(),
      chunksStored: t.u32(),
    },
  },
  /** One stored ciphertext chunk, answering `blob.fetch`. Always exactly one block. */
  'blob.data': {
    code: 0x51,
    direction: 'toClient',
    fields: {
      blobId: t.bytes(BLOB_ID_BYTES),
      index: t.u32(),
      data: t.varbytes(MAX_BLOB_CHUNK_BYTES),
    },
  },

  /* ----- both ways ----- */

  /** Liveness check inside blocks (WebSocket pings would break M28's uniform sizes). Live-only. */
  ping: { code: 0x70, direction: 'both', fields: { timestamp: t.u64() } },
  /** Answer to `ping`, echoing its timestamp. */
  pong: { code: 0x71, direction: 'both', fields: { timestamp: t.u64() } },
} as const satisfies Record<string, FrameSpec>;

/** Every frame type name. */
export type FrameType = keyof typeof FRAME_SPECS;

/** The frame of type `K`: `{ type: K, ...fields }`. */
export type FrameOf<K extends FrameType> = K extends FrameType
  ? Flatten<{ readonly type: K } & InferStruct<(typeof FRAME_SPECS)[K]['fields']>>
  : never;

type Flatten<T> = { [P in keyof T]: T[P] } & {};

/** Any frame. Switch on `frame.type` to narrow. */
export type Frame = { [K in FrameType]: FrameOf<K> }[FrameType];

type TypesGoing<D extends Direction> = {
  [K in FrameType]: (typeof FRAME_SPECS)[K]['direction'] extends D | 'both' ? K : never;
}[FrameType];

/** Frame types a client may send. */
export type ClientFrameType = TypesGoing<'toServer'>;
/** Frame types a server may send. */
export type ServerFrameType = TypesGoing<'toClient'>;
/** A frame a client sends and the server decodes. */
export type ClientFrame = FrameOf<ClientFrameType>;
/** A frame the server sends and a client decodes. */
export type ServerFrame = FrameOf<ServerFrameType>;

/** Types whose timestamp must be checked against the freshness window (M26). */
export const LIVE_ONLY_FRAME_TYPES: ReadonlySet<FrameType> = new Set<FrameType>([
  'hello',
  'register',
  'login',
  'cert.login',
  'resume',
  'challenge',
  'ping',
]);

/**
 * Codes of retired frame types. They are never assigned again (a decoder reports them
 * as `FRAME_UNKNOWN_TYPE`), so an old peer's frame can never be read as something else.
 */
export const RETIRED_FRAME_CODES: ReadonlyMap<number, string> = new Map([
  [0x07, 'session.request'],
  [0x08, 'session.accept'],
]);

/** Frame type by code, for the decoder. @internal */
export const FRAME_TYPE_BY_CODE: ReadonlyMap<number, FrameType> = new Map(
  (Object.keys(FRAME_SPECS) as FrameType[]).map((k) => [FRAME_SPECS[k].code, k]),
);

export type HelloFrame = FrameOf<'hello'>;
export type RegisterFrame = FrameOf<'register'>;
export type LoginFrame = FrameOf<'login'>;
export type ResumeFrame = FrameOf<'resume'>;
export type CertLoginFrame = FrameOf<'cert.login'>;
export type CertRefusedFrame = FrameOf<'cert.refused'>;
export type PrekeysUploadFrame = FrameOf<'prekeys.upload'>;
export type KeysLookupFrame = FrameOf<'keys.lookup'>;
export type SendFrame = FrameOf<'send'>;
export type SessionTerminateFrame = FrameOf<'session.terminate'>;
export type GroupSendFrame = FrameOf<'group.send'>;
export type AckFrame = FrameOf<'ack'>;
export type MailboxFetchFrame = FrameOf<'mailbox.fetch'>;
export type PresenceListFrame = FrameOf<'presence.list'>;
export type IdentityLookupFrame = FrameOf<'identity.lookup'>;
export type ChallengeFrame = FrameOf<'challenge'>;
export type WelcomeFrame = FrameOf<'welcome'>;
export type PrekeysLowFrame = FrameOf<'prekeys.low'>;
export type KeysBundleFrame = FrameOf<'keys.bundle'>;
export type ReceiptFrame = FrameOf<'receipt'>;
export type StoredReceiptFrame = FrameOf<'receipt.stored'>;
export type DeliverFrame = FrameOf<'deliver'>;
export type MailboxEmptyFrame = FrameOf<'mailbox.empty'>;
export type PresenceFrame = FrameOf<'presence'>;
export type PresenceListResultFrame = FrameOf<'presence.list.result'>;
export type ErrorFrame = FrameOf<'error'>;
export type IdentityResultFrame = FrameOf<'identity.result'>;
export type PrekeysStoredFrame = FrameOf<'prekeys.stored'>;
export type BlobBeginFrame = FrameOf<'blob.begin'>;
export type BlobChunkFrame = FrameOf<'blob.chunk'>;
export type BlobFetchFrame = FrameOf<'blob.fetch'>;
export type BlobStatusFrame = FrameOf<'blob.status'>;
export type BlobDataFrame = FrameOf<'blob.data'>;
export type PingFrame = FrameOf<'ping'>;
export type PongFrame = FrameOf<'pong'>;
/** A device address as carried in frames. */
export type Address = SendFrame['from'];
/** The signed X25519 identity DH key as carried in upload and bundle frames. */
export type IdentityDh = KeysBundleFrame['identityDh'];
/** Kind of a delivered frame. */
export type DeliverKind = (typeof DELIVER_KINDS)[number];
/** Receipt status. */
export type ReceiptStatus = (typeof RECEIPT_STATUSES)[number];
