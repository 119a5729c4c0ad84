/**
 * The application plaintext inside every E2EE payload: what the relay never sees.
 * Carrying the sender's message id inside the ciphertext is what lets the recipient
 * recognise a re-delivered or replayed message (M26) even if the relay assigns it a
 * new server id, and lets the sender's `delivered` receipt name the right message.
 *
 * Layout: UTF-8 JSON, one object per payload (docs/client.md, "Content types"):
 *   `{"v":1,"t":"msg"|"end","id":hex32,"at":ms,"body":string}`   a `msg` may add `"ttl":ms`
 *   `{"v":1,"t":"timer","id":hex32,"at":ms,"ttl":ms}`           disappearing timer (0 = off)
 *   `{"v":1,"t":"rcpt","id":hex32,"at":ms,"ids":[hex32, …]}`   end-to-end delivery receipt
 *   `{"v":1,"t":"reset","id":hex32,"at":ms,"why":reason}`        first message of a repair
 *   `{"v":1,"t":"file","id":hex32,"at":ms,"file":{…}}`           an attachment (attachment-entry.ts)
 *   `{"v":1,"t":"gsync"|"gack"|"greq"|"grcpt"|"gjoin",…}`        groups (groups/group-envelope.ts)
 * JSON keeps the web client trivial; the protocol pads it to a block, so its length
 * leaks nothing beyond the block count.
 */
import { utf8Decode, utf8Encode } from '@parley/crypto';
import { ClientError } from './errors.js';
import {
  checkFileEntry,
  FILE_TEXT_PREFIX,
  fileOfText,
  type FileEntry,
} from './attachment-entry.js';
import {
  decodeGroupEnvelope,
  GROUP_ENVELOPE_KINDS,
  groupEnvelopeFields,
  type GroupEnvelope,
  type GroupEnvelopeKind,
} from './groups/group-envelope.js';

export const ENVELOPE_VERSION = 1;
/**
 * Longest message text in UTF-8 bytes. Well under the wire's 64 KiB payload bound after
 * ratchet headers and padding, so a maximal message always fits one `send` frame.
 */
export const MAX_MESSAGE_TEXT_BYTES = 32 * 1024;
/** Bound on the encoded envelope the decoder will even parse. */
const MAX_ENVELOPE_BYTES = MAX_MESSAGE_TEXT_BYTES * 2 + 256;
/**
 * Most message ids one receipt names: 64 × 35 bytes of JSON stays inside one 3746-byte
 * envelope unit, so a receipt is always one wire block however large the backlog.
 */
export const MAX_RECEIPT_IDS = 64;

/** Why a recipient asks for a repair (the `why` of a `reset`). */
export type RepairReason =
  /** An ordinary message arrived and we hold no session with the sender. */
  | 'no-session'
  /** An initial message names a prekey we do not hold (used, rotated away, or never ours). */
  | 'unknown-prekey'
  /** The message did not authenticate under any key of the session (stale state, tampering). */
  | 'invalid-message'
  /** A new envelope under a message key we already used: the sender's state is older than ours. */
  | 'stale-sender';
export const REPAIR_REASONS: readonly RepairReason[] = [
  'no-session',
  'unknown-prekey',
  'invalid-message',
  'stale-sender',
];
const HEX_ID = /^[0-9a-f]{32}$/;

/**
 * The disappearing-message timers a conversation can be set to, in ms (0 = off): 5 min,
 * 1 h, 1 day, 1 week. A fixed set, so a peer cannot ask for a timer the UI cannot show.
 */
export const DISAPPEARING_TIMERS_MS: readonly number[] = [
  0,
  5 * 60_000,
  60 * 60_000,
  24 * 60 * 60_000,
  7 * 24 * 60 * 60_000,
];
const isTimer = (v: unknown): v is number =>
  typeof v === 'number' && DISAPPEARING_TIMERS_MS.includes(v);

export type EnvelopeKind =
  /** A chat message. */
  | 'msg'
  /** The sender has discarded the session (M31); the recipient discards it too. */
  | 'end'
  /** The sender decrypted and committed the messages `ids` (never answered by a receipt). */
  | 'rcpt'
  /** The sender could not decrypt something from us and started this new session (`why`). */
  | 'reset'
  /** The sender set the conversation's disappearing-message timer to `ttlMs`. */
  | 'timer'
  /** An attachment: where its encrypted blob is and how to open and check it. */
  | 'file'
  /** Group membership, sender keys, key requests and receipts (groups/group-envelope.ts). */
  | GroupEnvelopeKind;

interface EnvelopeBase {
  /** Hex of the 16-byte client message id. */
  readonly id: string;
  /** Sender's clock, ms since epoch. */
  readonly sentAt: number;
}
export interface TextEnvelope extends EnvelopeBase {
  readonly kind: 'msg' | 'end';
  readonly body: string;
  /** `msg` only: the timer in force when it was sent; the recipient deletes it this long after receiving it. */
  readonly ttlMs?: number;
}
export interface TimerEnvelope extends EnvelopeBase {
  readonly kind: 'timer';
  /** One of `DISAPPEARING_TIMERS_MS`; 0 turns the timer off. */
  readonly ttlMs: number;
}
export interface ReceiptEnvelope extends EnvelopeBase {
  readonly kind: 'rcpt';
  /** Ids of messages from the receipt's recipient, 1..MAX_RECEIPT_IDS of them. */
  readonly ids: readonly string[];
}
export interface ResetEnvelope extends EnvelopeBase {
  readonly kind: 'reset';
  readonly why: RepairReason;
}
export interface FileEnvelope extends EnvelopeBase {
  readonly kind: 'file';
  readonly file: FileEntry;
  /** As for a `msg`: the disappearing timer it was sent under. */
  readonly ttlMs?: number;
}
export type Envelope =
  TextEnvelope | ReceiptEnvelope | ResetEnvelope | TimerEnvelope | FileEnvelope | GroupEnvelope;

/**
 * The envelope that carries a history entry of ours: a `file` envelope for a file
 * message (its text is the entry, attachment-entry.ts), a text message otherwise.
 */
export function outgoingEnvelope(id: string, sentAt: number, text: string): Envelope {
  const file = fileOfText(text);
  return file ? { kind: 'file', id, sentAt, file } : { kind: 'msg', id, sentAt, body: text };
}

export function encodeEnvelope(e: Envelope): Uint8Array {
  const head = { v: ENVELOPE_VERSION, t: e.kind, id: e.id, at: e.sentAt };
  switch (e.kind) {
    case 'msg':
    case 'end':
      if (utf8Encode(e.body).length > MAX_MESSAGE_TEXT_BYTES) {
        throw new ClientError(
          'INVALID_ARGUMENT',
          `text: longer than ${MAX_MESSAGE_TEXT_BYTES} bytes`,
        );
      }
      if (e.ttlMs !== undefined && (e.kind !== 'msg' || e.ttlMs === 0 || !isTimer(e.ttlMs)))
        throw new ClientError('INVALID_ARGUMENT', 'ttl: not a disappearing-message timer');
      return utf8Encode(
        JSON.stringify({ ...head, body: e.body, ...(e.ttlMs ? { ttl: e.ttlMs } : {}) }),
      );
    case 'timer':
      if (!isTimer(e.ttlMs))
        throw new ClientError('INVALID_ARGUMENT', 'ttl: not a disappearing-message timer');
      return utf8Encode(JSON.stringify({ ...head, ttl: e.ttlMs }));
    case 'rcpt':
      if (e.ids.length < 1 || e.ids.length > MAX_RECEIPT_IDS || !e.ids.every((i) => HEX_ID.test(i)))
        throw new ClientError('INVALID_ARGUMENT', `ids: 1..${MAX_RECEIPT_IDS} message ids`);
      return utf8Encode(JSON.stringify({ ...head, ids: e.ids }));
    case 'reset':
      return utf8Encode(JSON.stringify({ ...head, why: e.why }));
    case 'file':
      if (e.ttlMs !== undefined && (e.ttlMs === 0 || !isTimer(e.ttlMs)))
        throw new ClientError('INVALID_ARGUMENT', 'ttl: not a disappearing-message timer');
      return utf8Encode(
        JSON.stringify({
          ...head,
          file: checkFileEntry(e.file),
          ...(e.ttlMs ? { ttl: e.ttlMs } : {}),
        }),
      );
    default:
      return utf8Encode(JSON.stringify({ ...head, ...groupEnvelopeFields(e) }));
  }
}

/** Parses a decrypted envelope; anything unexpected is `PROTOCOL` (the peer is buggy or hostile). */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  const bad = (): never => {
    throw new ClientError('PROTOCOL', 'malformed message envelope');
  };
  if (bytes.length > MAX_ENVELOPE_BYTES) bad();
  let o: unknown;
  try {
    o = JSON.parse(utf8Decode(bytes));
  } catch {
    return bad();
  }
  if (typeof o !== 'object' || o === null) return bad();
  const r = o as Record<string, unknown>;
  const { v, t, id, at } = r;
  if (v !== ENVELOPE_VERSION) bad();
  if (typeof id !== 'string' || !HEX_ID.test(id)) bad();
  if (typeof at !== 'number' || !Number.isSafeInteger(at) || at < 0) bad();
  const base = { id: id as string, sentAt: at as number };
  switch (t) {
    case 'msg':
    case 'end': {
      const body = r['body'];
      if (typeof body !== 'string' || utf8Encode(body).length > MAX_MESSAGE_TEXT_BYTES) bad();
      // Only a `file` envelope makes a file message.
      if ((body as string).startsWith(FILE_TEXT_PREFIX)) bad();
      const ttl = r['ttl'];
      if (ttl === undefined) return { kind: t, ...base, body: body as string };
      if (t !== 'msg' || ttl === 0 || !isTimer(ttl)) return bad();
      return { kind: t, ...base, body: body as string, ttlMs: ttl };
    }
    case 'timer': {
      const ttl = r['ttl'];
      if (!isTimer(ttl)) bad();
      return { kind: 'timer', ...base, ttlMs: ttl as number };
    }
    case 'rcpt': {
      const ids = r['ids'];
      if (
        !Array.isArray(ids) ||
        ids.length < 1 ||
        ids.length > MAX_RECEIPT_IDS ||
        !ids.every((i) => typeof i === 'string' && HEX_ID.test(i))
      )
        bad();
      return { kind: 'rcpt', ...base, ids: ids as string[] };
    }
    case 'reset': {
      const why = r['why'];
      if (!REPAIR_REASONS.includes(why as RepairReason)) bad();
      return { kind: 'reset', ...base, why: why as RepairReason };
    }
    case 'file': {
      const ttl = r['ttl'];
      if (ttl !== undefined && (ttl === 0 || !isTimer(ttl))) return bad();
      try {
        const file = checkFileEntry(r['file']);
        return { kind: 'file', ...base, file, ...(ttl === undefined ? {} : { ttlMs: ttl }) };
      } catch {
        return bad();
      }
    }
    default:
      if (typeof t === 'string' && GROUP_ENVELOPE_KINDS.includes(t))
        return decodeGroupEnvelope(t as GroupEnvelopeKind, r, base) ?? bad();
      return bad();
  }
}
