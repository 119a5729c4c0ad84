/**
 * Per-connection frame I/O: `FrameWriter` turns frames into blocks, `FrameReader`
 * turns blocks into frames. They compose the codec, the block layer and the
 * reassembler, and are what a relay connection or a client transport holds.
 */
import {
  checkBlockBytes,
  fillPadding,
  frameToBlocks,
  validateBlockSize,
  writeBlockHeader,
  type Padding,
} from './blocks.js';
import { decodeFrame, encodeFrameInto } from './codec.js';
import { WireError } from './errors.js';
import type { ClientFrame, Direction, Frame, ServerFrame } from './frames.js';
import { BLOCK_BYTES, BLOCK_HEADER_BYTES, MAX_FRAME_BYTES } from './limits.js';
import { ByteWriter } from './schema.js';
import { Reassembler, type ReassemblerOptions } from './reassembler.js';

/** Options of a `FrameWriter`. */
export interface FrameWriterOptions {
  readonly blockBytes?: number;
  readonly maxFrameBytes?: number;
  /**
   * Padding fill. Defaults to zeros: padding travels inside TLS, so its content is
   * never visible; a random source costs a CSPRNG call per block for defence in depth.
   */
  readonly padding?: Padding;
}

/** Encodes frames into blocks, allocating fragment stream ids. One per connection. */
export class FrameWriter {
  private nextStreamId = 1;
  private readonly blockBytes: number;
  private readonly maxFrameBytes: number;
  private readonly padding: Padding;

  constructor(opts: FrameWriterOptions = {}) {
    this.blockBytes = opts.blockBytes ?? BLOCK_BYTES;
    this.maxFrameBytes = opts.maxFrameBytes ?? MAX_FRAME_BYTES;
    this.padding = opts.padding ?? 'zero';
    checkBlockBytes(this.blockBytes);
  }

  /**
   * The blocks of one frame, to be sent as separate binary WebSocket messages, in
   * order and without interleaving another frame's blocks unless that is intended.
   *
   * @throws WireError `INVALID_ARGUMENT` or `FRAME_TOO_LARGE`.
   */
  write(frame: Frame): Uint8Array[] {
    // Encode straight into a block behind the header; most frames fit and need no copy.
    const w = encodeFrameInto(
      new ByteWriter('', this.blockBytes, BLOCK_HEADER_BYTES),
      frame,
      this.maxFrameBytes,
    );
    const block = w.buffer;
    if (w.length <= this.blockBytes - BLOCK_HEADER_BYTES && block.length === this.blockBytes) {
      writeBlockHeader(block, w.length, 0, 0, 1, w.length);
      fillPadding(block, BLOCK_HEADER_BYTES + w.length, this.padding);
      return [block];
    }
    const blocks = frameToBlocks(w.finish(), {
      streamId: this.nextStreamId,
      blockBytes: this.blockBytes,
      padding: this.padding,
      maxFrameBytes: this.maxFrameBytes,
    });
    if (blocks.length > 1) {
      // Wraps after 2^32-1 fragmented frames, skipping 0; older streams finished long before.
      this.nextStreamId = this.nextStreamId === 0xffffffff ? 1 : this.nextStreamId + 1;
    }
    return blocks;
  }
}

/** Options of a `FrameReader`: reassembly bounds plus the direction it decodes. */
export interface FrameReaderOptions<D extends Direction> extends ReassemblerOptions {
  /** `'toServer'` in the relay, `'toClient'` in a client. */
  readonly direction: D;
}

/** Frames a reader for direction `D` yields. */
export type FrameFor<D extends Direction> = D extends 'toServer' ? ClientFrame : ServerFrame;

/**
 * Decodes blocks into frames for one connection. After any error it stays failed
 * (the connection must be closed).
 *
 * @example
 * ```ts
 * const reader = new FrameReader({ direction: 'toServer', now: () => Date.now() });
 * const frame = reader.push(block); // Frame, or undefined while a frame is incomplete
 * ```
 */
export class FrameReader<D extends Direction> {
  private readonly reassembler: Reassembler;
  private readonly direction: D;
  private readonly blockBytes: number;
  private failure: WireError | undefined;

  constructor(opts: FrameReaderOptions<D>) {
    this.reassembler = new Reassembler(opts);
    this.direction = opts.direction;
    this.blockBytes = opts.blockBytes ?? BLOCK_BYTES;
  }

  /** Partial frames and buffered bytes, for metrics. */
  get pending(): { readonly frames: number; readonly bytes: number } {
    return { frames: this.reassembler.pendingFrames, bytes: this.reassembler.bufferedBytes };
  }

  /**
   * Adds one block (already size-checked, or checked here) and returns the frame it
   * completes, if any. Takes a `Uint8Array` (Node `ws`) or an `ArrayBuffer` (browser
   * WebSocket with `binaryType = 'arraybuffer'`).
   *
   * @throws WireError and nothing else.
   */
  push(block: Uint8Array | ArrayBuffer): FrameFor<D> | undefined {
    if (this.failure) throw this.failure;
    try {
      const checked = validateBlockSize(block, true, this.blockBytes);
      if (!checked.ok) throw checked.error;
      // Decoded at once, and decoding copies what it keeps: no need for a private copy.
      const bytes = this.reassembler.pushBorrowing(checked.value);
      if (bytes === undefined) return undefined;
      return decodeFrame(bytes, this.direction) as FrameFor<D>;
    } catch (e) {
      if (e instanceof WireError) this.failure = e;
      throw e;
    }
  }

  /** See `Reassembler.checkTimeouts`. @throws WireError `REASSEMBLY_TIMEOUT`. */
  checkTimeouts(): void {
    if (this.failure) throw this.failure;
    this.reassembler.checkTimeouts();
  }

  /** Releases buffered fragments (on close). */
  close(): void {
    this.reassembler.clear();
  }
}
