import fc from 'fast-check';
import { createSeededRandom } from '@parley/crypto';
import { describe, expect, it } from 'vitest';
import {
  BLOCK_BYTES,
  BLOCK_HEADER_BYTES,
  chunkCapacity,
  encodeFrame,
  frameToBlocks,
  FrameWriter,
  MAX_BLOCK_BYTES,
  MAX_FRAME_BYTES,
  MIN_BLOCK_BYTES,
  parseBlock,
  tryParseBlock,
  validateBlockSize,
} from '@parley/wire';
import { codeOf } from './error-code.js';
import { anyFrameArb } from './arbitraries.js';

const frameOf = (n: number): Uint8Array =>
  Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff);

describe('validateBlockSize (runs before any parsing)', () => {
  it('accepts exactly one binary block in every form ws delivers', () => {
    const block = new Uint8Array(BLOCK_BYTES);
    const a = validateBlockSize(block, true);
    expect(a.ok && a.value).toBe(block);
    const b = validateBlockSize(new ArrayBuffer(BLOCK_BYTES), true);
    expect(b.ok && b.value.length).toBe(BLOCK_BYTES);
    const parts = [new Uint8Array(1000).fill(1), new Uint8Array(BLOCK_BYTES - 1000).fill(2)];
    const c = validateBlockSize(parts, true);
    expect(c.ok).toBe(true);
    if (c.ok) {
      expect(c.value[999]).toBe(1);
      expect(c.value[1000]).toBe(2);
    }
  });

  it('refuses text, wrong sizes and non-buffers with the matching code', () => {
    const code = (data: unknown, bin = true, size = BLOCK_BYTES) => {
      const r = validateBlockSize(data, bin, size);
      return r.ok ? 'ok' : r.error.code;
    };
    expect(code(new Uint8Array(BLOCK_BYTES), false)).toBe('BLOCK_NOT_BINARY');
    expect(code('x'.repeat(BLOCK_BYTES))).toBe('BLOCK_NOT_BINARY');
    expect(code({ length: BLOCK_BYTES })).toBe('BLOCK_NOT_BINARY');
    expect(code([new Uint8Array(1), 'x'])).toBe('BLOCK_NOT_BINARY');
    expect(code(new Uint8Array(0))).toBe('BLOCK_SIZE');
    expect(code(new Uint8Array(BLOCK_BYTES - 1))).toBe('BLOCK_SIZE');
    expect(code(new Uint8Array(BLOCK_BYTES + 1))).toBe('BLOCK_SIZE');
    expect(code(new Uint8Array(1 << 20))).toBe('BLOCK_SIZE');
    expect(code([new Uint8Array(BLOCK_BYTES), new Uint8Array(1)])).toBe('BLOCK_SIZE');
    expect(code(new Uint8Array(1024), true, 1024)).toBe('ok');
  });
});

describe('frameToBlocks / parseBlock', () => {
  it('every block is exactly blockBytes and the chunks concatenate to the frame', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40_000 }),
        fc.integer({ min: MIN_BLOCK_BYTES, max: 8192 }),
        fc.integer({ min: 1, max: 0xffffffff }),
        (n, blockBytes, streamId) => {
          const frame = frameOf(n);
          const blocks = frameToBlocks(frame, { streamId, blockBytes });
          expect(blocks.length).toBe(Math.ceil(n / chunkCapacity(blockBytes)));
          const chunks: Uint8Array[] = [];
          blocks.forEach((b, i) => {
            expect(b.length).toBe(blockBytes);
            const p = parseBlock(b, blockBytes);
            expect(p.index).toBe(i);
            expect(p.count).toBe(blocks.length);
            expect(p.totalLength).toBe(n);
            expect(p.streamId).toBe(blocks.length === 1 ? 0 : streamId);
            chunks.push(p.chunk);
          });
          const joined = new Uint8Array(n);
          let off = 0;
          for (const c of chunks) {
            joined.set(c, off);
            off += c.length;
          }
          expect(joined).toEqual(frame);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('header layout is byte-exact', () => {
    const [block] = frameToBlocks(Uint8Array.of(0x0b), { streamId: 9 });
    expect(Array.from((block as Uint8Array).subarray(0, BLOCK_HEADER_BYTES + 2))).toEqual([
      1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0x0b, 0,
    ]);
    const blocks = frameToBlocks(frameOf(5000), { streamId: 0x01020304 });
    expect(Array.from((blocks[1] as Uint8Array).subarray(0, BLOCK_HEADER_BYTES))).toEqual([
      1, 0, 0x03, 0x98, 1, 2, 3, 4, 0, 1, 0, 2, 0, 0, 0x13, 0x88,
    ]); // last chunk 5000 - 4080 = 920 = 0x0398; total 5000 = 0x1388
  });

  it('zero padding by default, random padding from the given source', () => {
    const [zero] = frameToBlocks(frameOf(10), { streamId: 1 });
    expect((zero as Uint8Array).subarray(BLOCK_HEADER_BYTES + 10).every((b) => b === 0)).toBe(true);
    const random = createSeededRandom(new Uint8Array(32).fill(5));
    const [rnd] = frameToBlocks(frameOf(10), { streamId: 1, padding: random });
    const pad = (rnd as Uint8Array).subarray(BLOCK_HEADER_BYTES + 10);
    expect(pad.some((b) => b !== 0)).toBe(true);
    // Padding is ignored by the receiver: same chunk either way.
    expect(parseBlock(rnd as Uint8Array).chunk).toEqual(parseBlock(zero as Uint8Array).chunk);
  });

  it('refuses bad arguments', () => {
    expect(codeOf(() => frameToBlocks(new Uint8Array(0), { streamId: 1 }))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(codeOf(() => frameToBlocks(frameOf(5000), { streamId: 0 }))).toBe('INVALID_ARGUMENT');
    expect(
      codeOf(() => frameToBlocks(frameOf(10), { streamId: 1, blockBytes: MIN_BLOCK_BYTES - 1 })),
    ).toBe('INVALID_ARGUMENT');
    expect(
      codeOf(() => frameToBlocks(frameOf(10), { streamId: 1, blockBytes: MAX_BLOCK_BYTES + 1 })),
    ).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => frameToBlocks(frameOf(MAX_FRAME_BYTES + 1), { streamId: 1 }))).toBe(
      'FRAME_TOO_LARGE',
    );
    expect(
      codeOf(() => frameToBlocks(frameOf(10), { streamId: 1, padding: () => new Uint8Array(1) })),
    ).toBe('INVALID_ARGUMENT');
  });

  describe('every header inconsistency is refused', () => {
    const blocks = frameToBlocks(frameOf(10_000), { streamId: 77 }); // 3 blocks
    const mutate = (i: number, at: number, value: number, width: 1 | 2 | 4) => {
      const b = (blocks[i] as Uint8Array).slice();
      const v = new DataView(b.buffer);
      if (width === 1) v.setUint8(at, value);
      else if (width === 2) v.setUint16(at, value);
      else v.setUint32(at, value);
      const r = tryParseBlock(b);
      return r.ok ? 'ok' : r.error.code;
    };
    it.each([
      ['version 0', 0, 0, 0, 1, 'BLOCK_VERSION'],
      ['version 2', 0, 0, 2, 1, 'BLOCK_VERSION'],
      ['flags', 0, 1, 0x80, 1, 'BLOCK_MALFORMED'],
      ['chunk too short', 0, 2, 4079, 2, 'BLOCK_MALFORMED'],
      ['chunk too long', 2, 2, 1841, 2, 'BLOCK_MALFORMED'],
      ['chunk beyond block', 0, 2, 0xffff, 2, 'BLOCK_MALFORMED'],
      ['stream id 0 on a fragment', 1, 4, 0, 4, 'BLOCK_MALFORMED'],
      ['index = count', 1, 8, 3, 2, 'BLOCK_MALFORMED'],
      ['count wrong', 1, 10, 4, 2, 'BLOCK_MALFORMED'],
      ['count 0', 1, 10, 0, 2, 'BLOCK_MALFORMED'],
      ['total 0', 0, 12, 0, 4, 'BLOCK_MALFORMED'],
      ['total too large', 0, 12, MAX_FRAME_BYTES + 1, 4, 'FRAME_TOO_LARGE'],
      ['total 2^32-1', 0, 12, 0xffffffff, 4, 'FRAME_TOO_LARGE'],
    ] as const)('%s', (_name, i, at, value, width, expected) => {
      expect(mutate(i, at, value, width)).toBe(expected);
    });
    it('stream id set on a single-block frame', () => {
      const [one] = frameToBlocks(frameOf(5), { streamId: 1 });
      const b = (one as Uint8Array).slice();
      new DataView(b.buffer).setUint32(4, 5);
      expect(codeOf(() => parseBlock(b))).toBe('BLOCK_MALFORMED');
    });
    it('unmodified blocks parse', () => {
      for (const b of blocks) expect(tryParseBlock(b).ok).toBe(true);
    });
  });

  it('FrameWriter (encodes into the block) emits exactly what frameToBlocks(encodeFrame) does', () => {
    fc.assert(
      fc.property(anyFrameArb, fc.constantFrom(512, 1024, BLOCK_BYTES), (frame, blockBytes) => {
        const viaWriter = new FrameWriter({ blockBytes }).write(frame);
        const direct = frameToBlocks(encodeFrame(frame), { streamId: 1, blockBytes });
        expect(viaWriter).toEqual(direct);
      }),
      { numRuns: 300 },
    );
  });

  it('FrameWriter random padding fills the rest of a single block from the source', () => {
    const draws: number[] = [];
    const source = (n: number) => {
      draws.push(n);
      return new Uint8Array(n).fill(0xa5);
    };
    const [block] = new FrameWriter({ padding: source }).write({ type: 'ping', timestamp: 1 });
    expect(draws).toEqual([BLOCK_BYTES - BLOCK_HEADER_BYTES - 9]);
    expect((block as Uint8Array)[BLOCK_HEADER_BYTES + 9]).toBe(0xa5);
    expect((block as Uint8Array)[BLOCK_BYTES - 1]).toBe(0xa5);
    expect(parseBlock(block as Uint8Array).chunk.length).toBe(9);
  });

  it('FrameWriter allocates a fresh stream id per fragmented frame only', () => {
    const w = new FrameWriter();
    const big = (n: number) => ({
      type: 'send' as const,
      clientMessageId: new Uint8Array(16),
      from: { name: 'a', deviceId: 1 },
      to: { name: 'b', deviceId: 1 },
      payload: new Uint8Array(n),
    });
    const s1 = parseBlock(w.write(big(10_000))[0] as Uint8Array).streamId;
    const single = parseBlock(w.write(big(10))[0] as Uint8Array).streamId;
    const s2 = parseBlock(w.write(big(10_000))[0] as Uint8Array).streamId;
    expect(single).toBe(0);
    expect(s1).not.toBe(0);
    expect(s2).not.toBe(s1);
    expect(encodeFrame(big(10)).length).toBeLessThan(chunkCapacity());
  });
});
