/**
 * The one error type of `@parley/wire`.
 *
 * Every decoder and encoder in this package throws `WireError` and nothing else, so a
 * relay can map any parse failure to "close the connection and audit" without a
 * catch-all. Messages name the field path and the bound that was broken: wire input
 * comes from an untrusted peer, but the message stays on the side that parsed it (the
 * relay audits the `code`, and answers the peer only with a generic error frame).
 */
export type WireErrorCode =
  /** A WebSocket message was text, not binary (checked before anything is parsed). */
  | 'BLOCK_NOT_BINARY'
  /** A WebSocket message was not exactly one block long (checked before parsing). */
  | 'BLOCK_SIZE'
  /** The block header names a wire version this build does not speak. */
  | 'BLOCK_VERSION'
  /** The block header is inconsistent (flags, index, count, lengths, stream id). */
  | 'BLOCK_MALFORMED'
  /** A frame, or a frame declared by a block header, exceeds the frame size limit. */
  | 'FRAME_TOO_LARGE'
  /** The frame ended before all of its fields were read. */
  | 'FRAME_TRUNCATED'
  /** Bytes were left over after the last field (encodings are canonical). */
  | 'FRAME_TRAILING_BYTES'
  /** The frame type code is not assigned. */
  | 'FRAME_UNKNOWN_TYPE'
  /** A known frame type arrived in the direction it is never sent in. */
  | 'FRAME_WRONG_DIRECTION'
  /** A field value is outside its type: bad enum/bool byte, name, UTF-8, integer range. */
  | 'FIELD_INVALID'
  /** A byte string, string or list is longer than its declared maximum. */
  | 'FIELD_TOO_LONG'
  /** A fragment index was received twice for the same stream. */
  | 'FRAGMENT_DUPLICATE'
  /** Fragments of one stream disagree on the frame's total length. */
  | 'FRAGMENT_INCONSISTENT'
  /** Too many partial frames, or too many buffered bytes, on one connection. */
  | 'REASSEMBLY_LIMIT'
  /** A partial frame was not completed within the reassembly timeout. */
  | 'REASSEMBLY_TIMEOUT'
  /** No protocol version in common with the peer. */
  | 'VERSION_UNSUPPORTED'
  /** A live-only frame's timestamp is outside the freshness window. */
  | 'STALE_TIMESTAMP'
  /** A caller passed an argument this package cannot use (programming error). */
  | 'INVALID_ARGUMENT';

/** Thrown by every function of `@parley/wire`; `code` is stable, `message` is for logs. */
export class WireError extends Error {
  override readonly name = 'WireError';
  constructor(
    readonly code: WireErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The outcome of a non-throwing call: a value, or the `WireError` that would have been thrown. */
export type WireResult<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: WireError };

/**
 * Runs `fn` and captures a `WireError` as a result. Anything else is a bug in this
 * package and is rethrown so that tests (and the fuzzer) see it.
 * @internal
 */
export function capture<T>(fn: () => T): WireResult<T> {
  try {
    return { ok: true, value: fn() };
  } catch (e) {
    if (e instanceof WireError) return { ok: false, error: e };
    throw e;
  }
}
