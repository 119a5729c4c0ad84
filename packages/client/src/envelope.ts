/**
 * The application plaintext inside every E2EE payload: what the relay never sees.
 * Carrying the sender's message id inside the ciphertext is what lets the recipient
 * recognise a re-delivered or replayed message (M26) even if the relay assigns it a
 * new server id, and lets the sender's `delivered` receipt name the right message.
 *
 * Layout: UTF-8 JSON `{"v":1,"t":"msg"|"end","id":hex32,"at":ms,"body":string}`.
 * JSON keeps the web client trivial; the protocol pads it to a block, so its length
 * leaks nothing beyond the block count.
 */
import { utf8Decode, utf8Encode } from '@parley/crypto';
import { ClientError } from './errors.js';

export const ENVELOPE_VERSION = 1;
/**
 * Longest message text in UTF-8 bytes. Well under the wire's 64 KiB payload bound after
 * ratchet headers and padding, so a maximal message always fits one `send` frame.
 */
export const MAX_MESSAGE_TEXT_BYTES = 32 * 1024;
/** Bound on the encoded envelope the decoder will even parse. */
const MAX_ENVELOPE_BYTES = MAX_MESSAGE_TEXT_BYTES * 2 + 256;

export type EnvelopeKind =
  /** A chat message. */
  | 'msg'
  /** The sender has discarded the session (M31); the recipient discards it too. */
  | 'end';

export interface Envelope {
  readonly kind: EnvelopeKind;
  /** Hex of the 16-byte client message id. */
  readonly id: string;
  /** Sender's clock, ms since epoch. */
  readonly sentAt: number;
  readonly body: string;
}

export function encodeEnvelope(e: Envelope): Uint8Array {
  if (utf8Encode(e.body).length > MAX_MESSAGE_TEXT_BYTES) {
    throw new ClientError('INVALID_ARGUMENT', `text: longer than ${MAX_MESSAGE_TEXT_BYTES} bytes`);
  }
  return utf8Encode(
    JSON.stringify({ v: ENVELOPE_VERSION, t: e.kind, id: e.id, at: e.sentAt, body: e.body }),
  );
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
  const { v, t, id, at, body } = r;
  if (v !== ENVELOPE_VERSION) bad();
  if (t !== 'msg' && t !== 'end') bad();
  if (typeof id !== 'string' || !/^[0-9a-f]{32}$/.test(id)) bad();
  if (typeof at !== 'number' || !Number.isSafeInteger(at) || at < 0) bad();
  if (typeof body !== 'string' || utf8Encode(body).length > MAX_MESSAGE_TEXT_BYTES) bad();
  return { kind: t as EnvelopeKind, id: id as string, sentAt: at as number, body: body as string };
}
