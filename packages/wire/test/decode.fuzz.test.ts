/**
 * Fuzzing of everything that parses untrusted wire input: the frame decoder, the block
 * parser and the per-connection reader. The only acceptable outcomes are a value or a
 * `WireError` with a known code; any other exception fails the run. A decoded frame
 * must also re-encode to exactly the input bytes (one encoding per value).
 *
 * Runs PARLEY_FUZZ_RUNS inputs per property (default 100,000); `npm run fuzz` raises it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BLOCK_BYTES,
  decodeFrame,
  encodeFrame,
  FRAME_SPECS,
  FrameReader,
  FrameWriter,
  parseBlock,
  validateBlockSize,
  WireError,
  type Frame,
  type WireErrorCode,
} from '@parley/wire';
import { anyFrameArb } from './arbitraries.js';

const env = process.env['PARLEY_FUZZ_RUNS'];
const RUNS = env !== undefined && /^\d+$/.test(env) && Number(env) > 0 ? Number(env) : 100_000;
const SEED = 0x5eed;

const KNOWN_CODES = new Set<WireErrorCode>([
  'BLOCK_NOT_BINARY',
  'BLOCK_SIZE',
  'BLOCK_VERSION',
  'BLOCK_MALFORMED',
  'FRAME_TOO_LARGE',
  'FRAME_TRUNCATED',
  'FRAME_TRAILING_BYTES',
  'FRAME_UNKNOWN_TYPE',
  'FRAME_WRONG_DIRECTION',
  'FIELD_INVALID',
  'FIELD_TOO_LONG',
  'FRAGMENT_DUPLICATE',
  'FRAGMENT_INCONSISTENT',
  'REASSEMBLY_LIMIT',
  'REASSEMBLY_TIMEOUT',
]);

const seen = new Map<string, number>();

/** Runs `fn`; a WireError with a parser code is fine, anything else escapes. */
function survive<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof WireError) || !KNOWN_CODES.has(e.code)) throw e;
    seen.set(e.code, (seen.get(e.code) ?? 0) + 1);
    return undefined;
  }
}

/** Valid encodings to mutate: a fixed, seeded sample of every frame type. */
const corpus: Uint8Array[] = fc
  .sample(anyFrameArb, { numRuns: 400, seed: SEED })
  .map((f) => encodeFrame(f));
const codes = Object.values(FRAME_SPECS).map((s) => s.code);

type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; value: number }
  | { op: 'insert'; at: number; value: number }
  | { op: 'delete'; at: number }
  | { op: 'truncate'; at: number }
  | { op: 'splice'; at: number; other: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({
    op: fc.constant('set' as const),
    at: fc.nat(),
    value: fc.constantFrom(0, 1, 2, 0x7f, 0x80, 0xfe, 0xff),
  }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), value: fc.nat(255) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('splice' as const), at: fc.nat(), other: fc.nat() }),
);

function mutate(input: Uint8Array, m: Mutation): Uint8Array {
  const n = input.length;
  switch (m.op) {
    case 'flip':
    case 'set': {
      if (n === 0) return input;
      const b = input.slice();
      const at = m.at % n;
      b[at] = m.op === 'flip' ? (b[at]! ^ (1 << m.bit)) & 0xff : m.value;
      return b;
    }
    case 'insert': {
      const at = m.at % (n + 1);
      const b = new Uint8Array(n + 1);
      b.set(input.subarray(0, at));
      b[at] = m.value;
      b.set(input.subarray(at), at + 1);
      return b;
    }
    case 'delete': {
      if (n === 0) return input;
      const at = m.at % n;
      const b = new Uint8Array(n - 1);
      b.set(input.subarray(0, at));
      b.set(input.subarray(at + 1), at);
      return b;
    }
    case 'truncate':
      return input.subarray(0, n === 0 ? 0 : m.at % n);
    case 'splice': {
      // Head of this input, tail of another valid encoding.
      const other = corpus[m.other % corpus.length]!;
      const at = m.at % (n + 1);
      const tail = other.subarray(Math.min(at, other.length));
      const b = new Uint8Array(at + tail.length);
      b.set(input.subarray(0, at));
      b.set(tail, at);
      return b;
    }
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function checkDecode(bytes: Uint8Array): void {
  const frame = survive(() => decodeFrame(bytes));
  // Canonical: whatever decodes re-encodes to the identical bytes.
  if (frame !== undefined && !sameBytes(encodeFrame(frame as Frame), bytes)) {
    throw new Error(`non-canonical encoding accepted for ${frame.type}`);
  }
}

describe(`wire decoder fuzz (${RUNS} runs per property)`, () => {
  it('random bytes, often behind a valid type code', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          fc
            .tuple(fc.constantFrom(...codes), fc.uint8Array({ maxLength: 200 }))
            .map(([c, rest]) => Uint8Array.from([c, ...rest])),
        ),
        checkDecode,
      ),
      { numRuns: RUNS, seed: SEED },
    );
  });

  it('mutations of valid encodings of every frame type', () => {
    fc.assert(
      fc.property(
        fc.nat(corpus.length - 1),
        fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
        (i, ms) => checkDecode(ms.reduce(mutate, corpus[i]!)),
      ),
      { numRuns: RUNS, seed: SEED + 1 },
    );
  });

  it('mutated block streams into a FrameReader', () => {
    const writer = new FrameWriter();
    // Block sequences of valid frames, some multi-block.
    const streams = corpus.slice(0, 100).map((bytes) => {
      const frame = decodeFrame(bytes);
      return writer.write(frame);
    });
    streams.push(
      writer.write({
        type: 'deliver',
        serverMessageId: 1,
        kind: 'message',
        from: { name: 'a', deviceId: 1 },
        timestamp: 1,
        payload: new Uint8Array(9000).fill(3),
      }),
    );
    const blockMutation = fc.record({
      at: fc.oneof(fc.nat(15), fc.nat(BLOCK_BYTES - 1)),
      value: fc.nat(255),
    });
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            stream: fc.nat(streams.length - 1),
            index: fc.nat(),
            mutation: fc.option(blockMutation),
          }),
          { minLength: 1, maxLength: 8 },
        ),
        (steps) => {
          let t = 0;
          const reader = new FrameReader({ direction: 'toServer', now: () => t });
          for (const s of steps) {
            t += 1000;
            const blocks = streams[s.stream]!;
            const block = blocks[s.index % blocks.length]!.slice();
            if (s.mutation) block[s.mutation.at] = s.mutation.value;
            survive(() => parseBlock(block));
            survive(() => reader.push(block));
          }
        },
      ),
      { numRuns: Math.max(1, Math.floor(RUNS / 10)), seed: SEED + 2 },
    );
  });

  it('admission check on arbitrary values (whatever a transport might hand over)', () => {
    fc.assert(
      fc.property(fc.anything({ withTypedArray: true }), fc.boolean(), (data, isBinary) => {
        const r = validateBlockSize(data, isBinary);
        if (r.ok) expect(r.value.length).toBe(BLOCK_BYTES);
        else expect(['BLOCK_NOT_BINARY', 'BLOCK_SIZE']).toContain(r.error.code);
      }),
      { numRuns: Math.max(1, Math.floor(RUNS / 10)), seed: SEED + 3 },
    );
  });

  it('exercised the decoder broadly (not just one rejection path)', () => {
    // Guards against a fuzzer that silently stopped reaching the parser.
    for (const code of [
      'FRAME_TRUNCATED',
      'FRAME_UNKNOWN_TYPE',
      'FIELD_INVALID',
      'FRAME_TRAILING_BYTES',
      'BLOCK_MALFORMED',
    ] as const) {
      expect(seen.get(code) ?? 0, code).toBeGreaterThan(0);
    }
  });
});
