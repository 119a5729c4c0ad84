/**
 * Reassembly of fragmented frames for one connection, with hard bounds (M8): at most
 * `maxPartialFrames` open streams, at most `maxBufferedBytes` of buffered chunks, and
 * every partial frame complete within `timeoutMs` of its first fragment.
 *
 * Fragments may arrive in any order and streams may interleave; a duplicate index or
 * a fragment that disagrees with its stream's total length is an error. Memory grows
 * only with bytes actually received, never with a length a header merely declares.
 * After any error the reassembler is poisoned (every later call rethrows the first
 * error): the connection is untrustworthy and must be closed.
 *
 * The clock is a parameter so tests and simulators control time.
 */
import { WireError } from './errors.js';
import { checkBlockBytes, parseBlock } from './blocks.js';
import {
  BLOCK_BYTES,
  MAX_FRAME_BYTES,
  MAX_PARTIAL_FRAMES,
  MAX_REASSEMBLY_BYTES,
  REASSEMBLY_TIMEOUT_MS,
} from './limits.js';

/** Bounds and clock for a `Reassembler`; omitted bounds take the package defaults. */
export interface ReassemblerOptions {
  /** Milliseconds since an arbitrary epoch; only differences are used. */
  readonly now: () => number;
  readonly blockBytes?: number;
  readonly maxFrameBytes?: number;
  readonly maxPartialFrames?: number;
  readonly maxBufferedBytes?: number;
  readonly timeoutMs?: number;
}

/** One frame whose fragments are still arriving. */
interface PartialFrame {
  readonly totalLength: number;
  readonly count: number;
  readonly startedAt: number;
  readonly chunks: (Uint8Array | undefined)[];
  received: number;
}

/** Turns a sequence of blocks back into frame bytes. One instance per connection. */
export class Reassembler {
  private readonly partials = new Map<number, PartialFrame>();
  private buffered = 0;
  private failure: WireError | undefined;
  private readonly blockBytes: number;
  private readonly maxFrameBytes: number;
  private readonly maxPartialFrames: number;
  private readonly maxBufferedBytes: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;

  constructor(opts: ReassemblerOptions) {
    this.now = opts.now;
    this.blockBytes = opts.blockBytes ?? BLOCK_BYTES;
    this.maxFrameBytes = opts.maxFrameBytes ?? MAX_FRAME_BYTES;
    this.maxPartialFrames = opts.maxPartialFrames ?? MAX_PARTIAL_FRAMES;
    this.maxBufferedBytes = opts.maxBufferedBytes ?? MAX_REASSEMBLY_BYTES;
    this.timeoutMs = opts.timeoutMs ?? REASSEMBLY_TIMEOUT_MS;
    checkBlockBytes(this.blockBytes);
    for (const [k, v] of Object.entries({
      maxFrameBytes: this.maxFrameBytes,
      maxPartialFrames: this.maxPartialFrames,
      maxBufferedBytes: this.maxBufferedBytes,
      timeoutMs: this.timeoutMs,
    })) {
      if (!Number.isInteger(v) || v < 0) {
        throw new WireError('INVALID_ARGUMENT', `${k}: expected a non-negative integer`);
      }
    }
  }

  /** Partial frames currently open. */
  get pendingFrames(): number {
    return this.partials.size;
  }

  /** Bytes of fragments currently buffered. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /**
   * Adds one block. Returns the frame bytes when this block completes a frame (a
   * single-block frame completes at once), `undefined` while fragments are missing.
   *
   * @throws WireError (block errors, `FRAGMENT_DUPLICATE`, `FRAGMENT_INCONSISTENT`,
   * `REASSEMBLY_LIMIT`, `REASSEMBLY_TIMEOUT`); the reassembler is then poisoned.
   */
  push(block: Uint8Array): Uint8Array | undefined {
    return this.pushInto(block, false);
  }

  /**
   * As `push`, but a single-block frame comes back as a view into `block` instead of a
   * copy: for a caller that decodes it at once (the decoder copies every byte field it
   * keeps), which saves copying each frame twice. @internal
   */
  pushBorrowing(block: Uint8Array): Uint8Array | undefined {
    return this.pushInto(block, true);
  }

  private pushInto(block: Uint8Array, borrow: boolean): Uint8Array | undefined {
    if (this.failure) throw this.failure;
    try {
      return this.accept(block, borrow);
    } catch (e) {
      if (e instanceof WireError) this.fail(e);
      throw e;
    }
  }

  /**
   * Checks the timeout without a new block, for a connection's timer: a peer that
   * starts a frame and then goes silent is caught even though no push happens.
   *
   * @throws WireError `REASSEMBLY_TIMEOUT`; the reassembler is then poisoned.
   */
  checkTimeouts(): void {
    if (this.failure) throw this.failure;
    const now = this.now();
    for (const [id, p] of this.partials) {
      if (now - p.startedAt > this.timeoutMs) {
        const e = new WireError(
          'REASSEMBLY_TIMEOUT',
          `stream ${id} incomplete after ${this.timeoutMs} ms`,
        );
        this.fail(e);
        throw e;
      }
    }
  }

  /** Drops all buffered state (on connection close). */
  clear(): void {
    this.partials.clear();
    this.buffered = 0;
  }

  private fail(e: WireError): void {
    this.failure = e;
    this.clear();
  }

  private accept(raw: Uint8Array, borrow: boolean): Uint8Array | undefined {
    this.checkTimeouts();
    const block = parseBlock(raw, this.blockBytes, this.maxFrameBytes);
    if (block.count === 1) return borrow ? block.chunk : block.chunk.slice();

    let partial = this.partials.get(block.streamId);
    if (partial === undefined) {
      if (this.partials.size >= this.maxPartialFrames) {
        throw new WireError(
          'REASSEMBLY_LIMIT',
          `more than ${this.maxPartialFrames} partial frames`,
        );
      }
      partial = {
        totalLength: block.totalLength,
        count: block.count,
        startedAt: this.now(),
        chunks: new Array<Uint8Array | undefined>(block.count),
        received: 0,
      };
      this.partials.set(block.streamId, partial);
    } else if (partial.totalLength !== block.totalLength) {
      throw new WireError(
        'FRAGMENT_INCONSISTENT',
        `stream ${block.streamId}: total length changed`,
      );
    }
    if (partial.chunks[block.index] !== undefined) {
      throw new WireError(
        'FRAGMENT_DUPLICATE',
        `stream ${block.streamId}: index ${block.index} twice`,
      );
    }
    if (this.buffered + block.chunk.length > this.maxBufferedBytes) {
      throw new WireError('REASSEMBLY_LIMIT', `more than ${this.maxBufferedBytes} bytes buffered`);
    }
    partial.chunks[block.index] = block.chunk.slice();
    partial.received++;
    this.buffered += block.chunk.length;
    if (partial.received < partial.count) return undefined;

    this.partials.delete(block.streamId);
    this.buffered -= partial.totalLength;
    const frame = new Uint8Array(partial.totalLength);
    let off = 0;
    for (const c of partial.chunks) {
      frame.set(c as Uint8Array, off);
      off += (c as Uint8Array).length;
    }
    return frame;
  }
}
