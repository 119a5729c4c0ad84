/**
 * Frame codec: a frame is one type-code byte followed by its fields (schema.ts), with
 * nothing after them. This module owns the mapping between frame objects and frame
 * bytes; it knows nothing about blocks, fragmentation or connections.
 */
import { capture, WireError, type WireResult } from './errors.js';
import {
  FRAME_SPECS,
  FRAME_TYPE_BY_CODE,
  type ClientFrame,
  type Direction,
  type Frame,
  type FrameType,
  type ServerFrame,
} from './frames.js';
import { MAX_FRAME_BYTES } from './limits.js';
import { ByteReader, ByteWriter, readStruct, writeStruct } from './schema.js';

/**
 * Encodes a frame to bytes, validating every field first.
 *
 * @throws WireError `INVALID_ARGUMENT` naming the offending field (so the encoder
 * never emits what the decoder would refuse), or `FRAME_TOO_LARGE` above `maxFrameBytes`.
 * @example
 * ```ts
 * const bytes = encodeFrame({ type: 'ack', serverMessageId: 42 });
 * decodeFrame(bytes, 'toServer'); // { type: 'ack', serverMessageId: 42 }
 * ```
 */
export function encodeFrame(frame: Frame, maxFrameBytes: number = MAX_FRAME_BYTES): Uint8Array {
  return encodeFrameInto(new ByteWriter(), frame, maxFrameBytes).finish();
}

/**
 * Encodes `frame` into `w` (after whatever `w` reserved). Shared by `encodeFrame` and
 * `FrameWriter`, which encodes straight into a block. @internal
 */
export function encodeFrameInto(w: ByteWriter, frame: Frame, maxFrameBytes: number): ByteWriter {
  const type = (frame as { type?: unknown } | null)?.type;
  const spec = typeof type === 'string' ? FRAME_SPECS[type as FrameType] : undefined;
  if (spec === undefined || !Object.hasOwn(FRAME_SPECS, type as string)) {
    throw new WireError('INVALID_ARGUMENT', `frame.type: unknown frame type`);
  }
  w.trail.root = type as string;
  w.u8(spec.code);
  writeStruct(w, spec.fields, frame);
  if (w.length > maxFrameBytes) {
    throw new WireError(
      'FRAME_TOO_LARGE',
      `${String(type)}: ${w.length} bytes exceeds ${maxFrameBytes}`,
    );
  }
  return w;
}

/**
 * Decodes one frame. With `direction`, a frame type that never travels that way is
 * rejected (`FRAME_WRONG_DIRECTION`): a server decodes with `'toServer'`, a client with
 * `'toClient'`. Decoded byte fields are copies, never views of `bytes`.
 *
 * @throws WireError and nothing else, whatever `bytes` contains.
 */
export function decodeFrame(bytes: Uint8Array, direction: 'toServer'): ClientFrame;
export function decodeFrame(bytes: Uint8Array, direction: 'toClient'): ServerFrame;
export function decodeFrame(bytes: Uint8Array, direction?: Direction): Frame;
export function decodeFrame(bytes: Uint8Array, direction?: Direction): Frame {
  if (!(bytes instanceof Uint8Array)) {
    throw new WireError('INVALID_ARGUMENT', 'bytes: expected Uint8Array');
  }
  if (bytes.length > MAX_FRAME_BYTES) {
    throw new WireError(
      'FRAME_TOO_LARGE',
      `frame: ${bytes.length} bytes exceeds ${MAX_FRAME_BYTES}`,
    );
  }
  const r = new ByteReader(bytes, 'frame.type');
  const code = r.u8();
  const type = FRAME_TYPE_BY_CODE.get(code);
  if (type === undefined) {
    throw new WireError('FRAME_UNKNOWN_TYPE', `frame.type: code 0x${code.toString(16)} unassigned`);
  }
  const spec = FRAME_SPECS[type];
  if (direction !== undefined && spec.direction !== 'both' && spec.direction !== direction) {
    throw new WireError('FRAME_WRONG_DIRECTION', `${type}: never sent ${direction}`);
  }
  const fields = new ByteReader(bytes.subarray(1), type);
  const frame = readStruct(fields, spec.fields, { type });
  if (fields.remaining !== 0) {
    throw new WireError(
      'FRAME_TRAILING_BYTES',
      `${type}: ${fields.remaining} bytes after last field`,
    );
  }
  return frame as Frame;
}

/** `decodeFrame` without exceptions. */
export function tryDecodeFrame(bytes: Uint8Array, direction?: Direction): WireResult<Frame> {
  return capture(() => decodeFrame(bytes, direction));
}

/** The frame type a type code stands for, if assigned. */
export function frameTypeOfCode(code: number): FrameType | undefined {
  return FRAME_TYPE_BY_CODE.get(code);
}
