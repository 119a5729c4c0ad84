import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BLOCK_BYTES,
  chunkCapacity,
  frameToBlocks,
  FrameReader,
  FRAME_SPECS,
  FrameWriter,
  MAX_FRAME_BYTES,
  MAX_PARTIAL_FRAMES,
  MAX_REASSEMBLY_BYTES,
  Reassembler,
  REASSEMBLY_TIMEOUT_MS,
  WireError,
  type Frame,
} from '@parley/wire';
import { codeOf } from './error-code.js';
import { anyFrameArb } from './arbitraries.js';

const frameOf = (n: number, seed = 0): Uint8Array =>
  Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

/** A clock the test moves by hand. */
function fakeClock(start = 1_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('Reassembler', () => {
  it('reassembles interleaved streams delivered in any order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 30_000 }), {
          minLength: 1,
          maxLength: MAX_PARTIAL_FRAMES,
        }),
        fc.integer(),
        (sizes, seed) => {
          const clock = fakeClock();
          const r = new Reassembler({ now: clock.now });
          const frames = sizes.map((n, i) => frameOf(n, i));
          const tagged = frames.flatMap((f, i) =>
            frameToBlocks(f, { streamId: i + 1 }).map((b) => ({ b, i })),
          );
          // Deterministic shuffle from the fast-check seed.
          let s = seed >>> 0;
          for (let k = tagged.length - 1; k > 0; k--) {
            s = (Math.imul(s, 1103515245) + 12345) >>> 0;
            const j = s % (k + 1);
            [tagged[k], tagged[j]] = [tagged[j]!, tagged[k]!];
          }
          const done = new Map<number, Uint8Array>();
          let maxBuffered = 0;
          for (const { b, i } of tagged) {
            const out = r.push(b);
            maxBuffered = Math.max(maxBuffered, r.bufferedBytes);
            if (out) {
              expect(done.has(i)).toBe(false);
              done.set(i, out);
            }
          }
          expect(done.size).toBe(frames.length);
          frames.forEach((f, i) => expect(done.get(i)).toEqual(f));
          expect(r.pendingFrames).toBe(0);
          expect(r.bufferedBytes).toBe(0);
          expect(maxBuffered).toBeLessThanOrEqual(MAX_REASSEMBLY_BYTES);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('a duplicated fragment is FRAGMENT_DUPLICATE and poisons the reassembler', () => {
    const r = new Reassembler({ now: () => 0 });
    const blocks = frameToBlocks(frameOf(9000), { streamId: 3 });
    r.push(blocks[0]!);
    expect(codeOf(() => r.push(blocks[0]!))).toBe('FRAGMENT_DUPLICATE');
    // Poisoned: even a valid block now fails with the first error.
    expect(codeOf(() => r.push(frameToBlocks(frameOf(5), { streamId: 1 })[0]!))).toBe(
      'FRAGMENT_DUPLICATE',
    );
    expect(r.bufferedBytes).toBe(0);
  });

  it('fragments disagreeing on total length are FRAGMENT_INCONSISTENT', () => {
    const r = new Reassembler({ now: () => 0 });
    r.push(frameToBlocks(frameOf(9000), { streamId: 3 })[0]!);
    expect(codeOf(() => r.push(frameToBlocks(frameOf(9500), { streamId: 3 })[1]!))).toBe(
      'FRAGMENT_INCONSISTENT',
    );
  });

  it('a missing fragment leaves the frame pending until the timeout', () => {
    const clock = fakeClock();
    const r = new Reassembler({ now: clock.now });
    const blocks = frameToBlocks(frameOf(12_000), { streamId: 5 });
    expect(r.push(blocks[0]!)).toBeUndefined();
    expect(r.push(blocks[2]!)).toBeUndefined();
    expect(r.pendingFrames).toBe(1);
    clock.advance(REASSEMBLY_TIMEOUT_MS);
    r.checkTimeouts(); // exactly at the limit is still allowed
    clock.advance(1);
    expect(codeOf(() => r.checkTimeouts())).toBe('REASSEMBLY_TIMEOUT');
    expect(codeOf(() => r.push(blocks[1]!))).toBe('REASSEMBLY_TIMEOUT');
  });

  it('a push after the deadline fails even without a timer', () => {
    const clock = fakeClock();
    const r = new Reassembler({ now: clock.now, timeoutMs: 100 });
    const blocks = frameToBlocks(frameOf(9000), { streamId: 5 });
    r.push(blocks[0]!);
    clock.advance(101);
    expect(codeOf(() => r.push(blocks[1]!))).toBe('REASSEMBLY_TIMEOUT');
  });

  it('more open streams than allowed is REASSEMBLY_LIMIT', () => {
    const r = new Reassembler({ now: () => 0 });
    for (let i = 1; i <= MAX_PARTIAL_FRAMES; i++) {
      r.push(frameToBlocks(frameOf(9000), { streamId: i })[0]!);
    }
    expect(r.pendingFrames).toBe(MAX_PARTIAL_FRAMES);
    expect(codeOf(() => r.push(frameToBlocks(frameOf(9000), { streamId: 99 })[0]!))).toBe(
      'REASSEMBLY_LIMIT',
    );
  });

  it('buffered bytes are capped, whatever the headers declare', () => {
    const cap = 3 * chunkCapacity();
    const r = new Reassembler({ now: () => 0, maxBufferedBytes: cap, maxPartialFrames: 100 });
    // Two large frames, each declaring far more than the cap: memory follows receipt.
    const a = frameToBlocks(frameOf(MAX_FRAME_BYTES), { streamId: 1 });
    const b = frameToBlocks(frameOf(MAX_FRAME_BYTES), { streamId: 2 });
    r.push(a[0]!);
    r.push(b[0]!);
    r.push(a[1]!);
    expect(r.bufferedBytes).toBe(cap);
    expect(codeOf(() => r.push(b[1]!))).toBe('REASSEMBLY_LIMIT');
  });

  it('a smaller maxFrameBytes (e.g. before authentication) refuses large declarations', () => {
    const r = new Reassembler({ now: () => 0, maxFrameBytes: chunkCapacity() });
    expect(r.push(frameToBlocks(frameOf(100), { streamId: 1 })[0]!)).toEqual(frameOf(100));
    expect(codeOf(() => r.push(frameToBlocks(frameOf(5000), { streamId: 2 })[0]!))).toBe(
      'FRAME_TOO_LARGE',
    );
  });

  it('random block sequences never exceed the bounds and fail only with WireError', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            stream: fc.integer({ min: 1, max: 8 }),
            size: fc.integer({ min: 1, max: 40_000 }),
            index: fc.nat(),
            wait: fc.integer({ min: 0, max: 20_000 }),
          }),
          { maxLength: 40 },
        ),
        (steps) => {
          const clock = fakeClock();
          const r = new Reassembler({ now: clock.now });
          for (const s of steps) {
            clock.advance(s.wait);
            const blocks = frameToBlocks(frameOf(s.size), { streamId: s.stream });
            try {
              r.push(blocks[s.index % blocks.length]!);
            } catch (e) {
              expect(e).toBeInstanceOf(WireError);
              return;
            }
            expect(r.pendingFrames).toBeLessThanOrEqual(MAX_PARTIAL_FRAMES);
            expect(r.bufferedBytes).toBeLessThanOrEqual(MAX_REASSEMBLY_BYTES);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejects unusable options', () => {
    expect(codeOf(() => new Reassembler({ now: () => 0, blockBytes: 100 }))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(codeOf(() => new Reassembler({ now: () => 0, timeoutMs: -1 }))).toBe('INVALID_ARGUMENT');
  });
});

describe('FrameWriter -> FrameReader', () => {
  it('round-trips any frame in both directions at several block sizes', () => {
    fc.assert(
      fc.property(
        anyFrameArb,
        fc.constantFrom(512, 1024, BLOCK_BYTES, 16_384),
        (frame, blockBytes) => {
          const writer = new FrameWriter({ blockBytes });
          const going = FRAME_SPECS[frame.type].direction;
          const reader = new FrameReader({
            direction: going === 'both' ? 'toClient' : going,
            now: () => 0,
            blockBytes,
          });
          const blocks = writer.write(frame);
          let out: Frame | undefined;
          blocks.forEach((b, i) => {
            expect(b.length).toBe(blockBytes);
            const got = reader.push(b);
            if (i < blocks.length - 1) expect(got).toBeUndefined();
            else out = got;
          });
          expect(out).toEqual(frame);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('decoded frames never alias the block they came from (blocks may be reused)', () => {
    fc.assert(
      fc.property(anyFrameArb, (frame) => {
        const going = FRAME_SPECS[frame.type].direction;
        const reader = new FrameReader({
          direction: going === 'both' ? 'toClient' : going,
          now: () => 0,
        });
        const blocks = new FrameWriter().write(frame);
        let out: Frame | undefined;
        for (const b of blocks) out = reader.push(b) ?? out;
        const before = structuredClone(out);
        // The transport's buffer is overwritten after decoding: the frame must not change.
        for (const b of blocks) b.fill(0xa5);
        expect(out).toEqual(before);
        expect(out).toEqual(frame);
      }),
      { numRuns: 300 },
    );
  });

  it('a server-bound reader refuses server frames and stays failed', () => {
    const writer = new FrameWriter();
    const reader = new FrameReader({ direction: 'toServer', now: () => 0 });
    const [block] = writer.write({ type: 'mailbox.empty' });
    expect(codeOf(() => reader.push(block!))).toBe('FRAME_WRONG_DIRECTION');
    const [ok] = writer.write({ type: 'mailbox.fetch' });
    expect(codeOf(() => reader.push(ok!))).toBe('FRAME_WRONG_DIRECTION');
  });

  it('a wrong-size block is refused by the reader itself', () => {
    const reader = new FrameReader({ direction: 'toServer', now: () => 0 });
    expect(codeOf(() => reader.push(new Uint8Array(BLOCK_BYTES + 1)))).toBe('BLOCK_SIZE');
  });
});
