/**
 * The block layer (M28): every WebSocket message, both ways, is exactly one block of
 * `blockBytes` (default 4096). A block carries one chunk of one frame behind a fixed
 * 16-byte header, then padding to the block size. Frames longer than one chunk are
 * split into fragments that share a stream id. Layout: docs/wire.md §2.
 *
 *   0  u8   version      WIRE_VERSION
 *   1  u8   flags        0 (reserved)
 *   2  u16  chunkLength  bytes of frame data in this block
 *   4  u32  streamId     0 for a single-block frame, else the sender's fragment stream
 *   8  u16  index        fragment index, 0..count-1
 *   10 u16  count        fragments in the frame, >= 1
 *   12 u32  totalLength  frame length in bytes, >= 1
 *   16 ...  chunk, then padding (zeros or random bytes; ignored by the receiver)
 *
 * Every header field is determined by (totalLength, index, blockBytes) except the
 * stream id, and the receiver checks all of them, so there is one valid header per
 * fragment and nothing for a parser to guess.
 */
import type { RandomSource } from '@parley/crypto';
import { capture, WireError, type WireResult } from './errors.js';
import {
  BLOCK_BYTES,
  BLOCK_HEADER_BYTES,
  MAX_BLOCK_BYTES,
  MAX_FRAME_BYTES,
  MIN_BLOCK_BYTES,
  WIRE_VERSION,
} from './limits.js';

/** How padding bytes are filled: zeros, or bytes from a random source. */
export type Padding = 'zero' | RandomSource;

/** A parsed block: its header fields and a view of its chunk. */
export interface Block {
  readonly streamId: number;
  readonly index: number;
  readonly count: number;
  readonly totalLength: number;
  /** View into the block; copy before keeping it. */
  readonly chunk: Uint8Array;
}

/** Frame bytes that fit in one block of `blockBytes`. */
export function chunkCapacity(blockBytes: number = BLOCK_BYTES): number {
  return blockBytes - BLOCK_HEADER_BYTES;
}

/** Number of blocks a frame of `frameBytes` occupies. */
export function blocksForFrame(frameBytes: number, blockBytes: number = BLOCK_BYTES): number {
  return Math.max(1, Math.ceil(frameBytes / chunkCapacity(blockBytes)));
}

/** Throws `INVALID_ARGUMENT` unless `blockBytes` is a usable configured block size. */
export function checkBlockBytes(blockBytes: number): void {
  if (
    !Number.isInteger(blockBytes) ||
    blockBytes < MIN_BLOCK_BYTES ||
    blockBytes > MAX_BLOCK_BYTES
  ) {
    throw new WireError(
      'INVALID_ARGUMENT',
      `blockBytes: expected an integer in ${MIN_BLOCK_BYTES}..${MAX_BLOCK_BYTES}`,
    );
  }
}

/**
 * The check a relay runs on every WebSocket message before parsing anything (M8):
 * binary, and exactly `blockBytes` long. Accepts what `ws` hands over (a Buffer, an
 * ArrayBuffer, or an array of Buffer fragments) and returns the block as a Uint8Array.
 * Never throws.
 *
 * @example
 * ```ts
 * ws.on('message', (data, isBinary) => {
 *   const checked = validateBlockSize(data, isBinary);
 *   if (!checked.ok) return closeAndAudit(checked.error.code);
 *   reader.push(checked.value);
 * });
 * ```
 */
export function validateBlockSize(
  data: unknown,
  isBinary: boolean,
  blockBytes: number = BLOCK_BYTES,
): WireResult<Uint8Array> {
  if (!isBinary) {
    return { ok: false, error: new WireError('BLOCK_NOT_BINARY', 'text message') };
  }
  let bytes: Uint8Array | undefined;
  if (data instanceof Uint8Array) bytes = data;
  else if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
  else if (Array.isArray(data) && data.every((d) => d instanceof Uint8Array)) {
    const parts = data as Uint8Array[];
    let total = 0;
    for (const p of parts) total += p.length;
    // Measure before copying: an oversized message is refused without touching it.
    if (total !== blockBytes) return { ok: false, error: sizeError(total, blockBytes) };
    bytes = new Uint8Array(total);
    let off = 0;
    for (const p of parts) {
      bytes.set(p, off);
      off += p.length;
    }
  }
  if (bytes === undefined) {
    return { ok: false, error: new WireError('BLOCK_NOT_BINARY', 'not a byte buffer') };
  }
  if (bytes.length !== blockBytes) return { ok: false, error: sizeError(bytes.length, blockBytes) };
  return { ok: true, value: bytes };
}

function sizeError(got: number, blockBytes: number): WireError {
  return new WireError('BLOCK_SIZE', `message of ${got} bytes, expected ${blockBytes}`);
}

function malformed(what: string): WireError {
  return new WireError('BLOCK_MALFORMED', what);
}

/**
 * Parses and fully checks one block's header. `maxFrameBytes` bounds the declared
 * total length, so a single header cannot announce an oversized frame.
 *
 * @throws WireError `BLOCK_SIZE`, `BLOCK_VERSION`, `BLOCK_MALFORMED` or `FRAME_TOO_LARGE`.
 */
export function parseBlock(
  block: Uint8Array,
  blockBytes: number = BLOCK_BYTES,
  maxFrameBytes: number = MAX_FRAME_BYTES,
): Block {
  if (!(block instanceof Uint8Array) || block.length !== blockBytes) {
    throw sizeError(block instanceof Uint8Array ? block.length : -1, blockBytes);
  }
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const version = view.getUint8(0);
  if (version !== WIRE_VERSION) throw new WireError('BLOCK_VERSION', `wire version ${version}`);
  if (view.getUint8(1) !== 0) throw malformed('reserved flags set');
  const chunkLength = view.getUint16(2);
  const streamId = view.getUint32(4);
  const index = view.getUint16(8);
  const count = view.getUint16(10);
  const totalLength = view.getUint32(12);

  if (totalLength < 1) throw malformed('empty frame');
  if (totalLength > maxFrameBytes) {
    throw new WireError(
      'FRAME_TOO_LARGE',
      `declared ${totalLength} bytes exceeds ${maxFrameBytes}`,
    );
  }
  const capacity = chunkCapacity(blockBytes);
  const expectedCount = Math.ceil(totalLength / capacity);
  if (count !== expectedCount) throw malformed(`count ${count}, expected ${expectedCount}`);
  if (index >= count) throw malformed(`index ${index} >= count ${count}`);
  const expectedChunk = index < count - 1 ? capacity : totalLength - capacity * (count - 1);
  if (chunkLength !== expectedChunk) {
    throw malformed(`chunk length ${chunkLength}, expected ${expectedChunk}`);
  }
  // Stream id 0 marks "not fragmented", so a lone fragment can never pass as a frame.
  if ((count === 1) !== (streamId === 0)) throw malformed('stream id does not match count');
  return {
    streamId,
    index,
    count,
    totalLength,
    chunk: block.subarray(BLOCK_HEADER_BYTES, BLOCK_HEADER_BYTES + chunkLength),
  };
}

/** `parseBlock` without exceptions. */
export function tryParseBlock(
  block: Uint8Array,
  blockBytes: number = BLOCK_BYTES,
  maxFrameBytes: number = MAX_FRAME_BYTES,
): WireResult<Block> {
  return capture(() => parseBlock(block, blockBytes, maxFrameBytes));
}

/**
 * Splits encoded frame bytes into blocks. `streamId` must be non-zero when the frame
 * needs more than one block and is ignored (written as 0) otherwise; `FrameWriter`
 * allocates stream ids for you.
 *
 * @throws WireError `INVALID_ARGUMENT` for an empty frame, bad block size or stream id,
 * `FRAME_TOO_LARGE` above `maxFrameBytes`.
 */
export function frameToBlocks(
  frameBytes: Uint8Array,
  opts: {
    readonly streamId: number;
    readonly blockBytes?: number;
    readonly padding?: Padding;
    readonly maxFrameBytes?: number;
  },
): Uint8Array[] {
  const blockBytes = opts.blockBytes ?? BLOCK_BYTES;
  const maxFrameBytes = opts.maxFrameBytes ?? MAX_FRAME_BYTES;
  checkBlockBytes(blockBytes);
  if (!(frameBytes instanceof Uint8Array) || frameBytes.length < 1) {
    throw new WireError('INVALID_ARGUMENT', 'frameBytes: expected a non-empty Uint8Array');
  }
  if (frameBytes.length > maxFrameBytes) {
    throw new WireError(
      'FRAME_TOO_LARGE',
      `frame of ${frameBytes.length} bytes exceeds ${maxFrameBytes}`,
    );
  }
  const capacity = chunkCapacity(blockBytes);
  const count = Math.ceil(frameBytes.length / capacity);
  if (count > 0xffff) throw new WireError('FRAME_TOO_LARGE', 'more than 65535 fragments');
  const streamId = count === 1 ? 0 : opts.streamId;
  if (count > 1 && (!Number.isInteger(streamId) || streamId < 1 || streamId > 0xffffffff)) {
    throw new WireError('INVALID_ARGUMENT', 'streamId: expected an integer in 1..2^32-1');
  }
  const padding = opts.padding ?? 'zero';
  const blocks: Uint8Array[] = [];
  for (let index = 0; index < count; index++) {
    const chunk = frameBytes.subarray(
      index * capacity,
      Math.min(frameBytes.length, (index + 1) * capacity),
    );
    const block = new Uint8Array(blockBytes);
    block.set(chunk, BLOCK_HEADER_BYTES);
    writeBlockHeader(block, chunk.length, streamId, index, count, frameBytes.length);
    fillPadding(block, BLOCK_HEADER_BYTES + chunk.length, padding);
    blocks.push(block);
  }
  return blocks;
}

/** Writes the 16-byte header of §2.2 at the start of `block`. @internal */
export function writeBlockHeader(
  block: Uint8Array,
  chunkLength: number,
  streamId: number,
  index: number,
  count: number,
  totalLength: number,
): void {
  const view = new DataView(block.buffer, block.byteOffset, BLOCK_HEADER_BYTES);
  view.setUint8(0, WIRE_VERSION);
  view.setUint8(1, 0);
  view.setUint16(2, chunkLength);
  view.setUint32(4, streamId);
  view.setUint16(8, index);
  view.setUint16(10, count);
  view.setUint32(12, totalLength);
}

/**
 * Fills `block` from `from` to its end: zeros, or bytes drawn from a random source.
 * @internal
 */
export function fillPadding(block: Uint8Array, from: number, padding: Padding): void {
  if (from >= block.length) return;
  if (padding === 'zero') {
    block.fill(0, from);
    return;
  }
  const pad = padding(block.length - from);
  if (!(pad instanceof Uint8Array) || pad.length !== block.length - from) {
    throw new WireError('INVALID_ARGUMENT', 'padding: random source returned wrong length');
  }
  block.set(pad, from);
}
