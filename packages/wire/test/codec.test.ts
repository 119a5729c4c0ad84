import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeFrame,
  encodeFrame,
  FRAME_SPECS,
  MAX_FRAME_BYTES,
  maxStructBytes,
  tryDecodeFrame,
  type Frame,
  type FrameType,
} from '@parley/wire';
import { codeOf } from './error-code.js';
import { ALL_TYPES, anyFrameArb, frameArb } from './arbitraries.js';

const enc = new TextEncoder();
const bytes = (...parts: (number | number[] | string | Uint8Array)[]): Uint8Array => {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === 'number') out.push(p);
    else if (typeof p === 'string') out.push(...enc.encode(p));
    else out.push(...p);
  }
  return Uint8Array.from(out);
};

describe('known byte layouts (docs/wire.md §4)', () => {
  it('ack: type 0x0a, u64 big-endian', () => {
    const f: Frame = { type: 'ack', serverMessageId: 0x0102030405 };
    const b = bytes(0x0a, [0, 0, 0, 1, 2, 3, 4, 5]);
    expect(encodeFrame(f)).toEqual(b);
    expect(decodeFrame(b, 'toServer')).toEqual(f);
  });

  it('keys.lookup: optional deviceId absent and present', () => {
    const absent = bytes(0x05, [0, 0, 0, 7], 3, 'bob', 0);
    const present = bytes(0x05, [0, 0, 0, 7], 3, 'bob', 1, [0, 0, 0, 1]);
    expect(encodeFrame({ type: 'keys.lookup', requestId: 7, name: 'bob' })).toEqual(absent);
    expect(encodeFrame({ type: 'keys.lookup', requestId: 7, name: 'bob', deviceId: 1 })).toEqual(
      present,
    );
    const decoded = decodeFrame(absent, 'toServer');
    expect(decoded).toEqual({ type: 'keys.lookup', requestId: 7, name: 'bob' });
    expect(Object.keys(decoded)).not.toContain('deviceId');
  });

  it('send: fixed id, two addresses, u32-prefixed payload (max 65536 > 65535)', () => {
    const id = Uint8Array.from({ length: 16 }, (_, i) => i);
    const f: Frame = {
      type: 'send',
      clientMessageId: id,
      from: { name: 'alice', deviceId: 1 },
      to: { name: 'bob', deviceId: 2 },
      payload: Uint8Array.of(0xaa, 0xbb),
    };
    const b = bytes(
      0x06,
      id,
      5,
      'alice',
      [0, 0, 0, 1],
      3,
      'bob',
      [0, 0, 0, 2],
      [0, 0, 0, 2],
      [0xaa, 0xbb],
    );
    expect(encodeFrame(f)).toEqual(b);
    expect(decodeFrame(b, 'toServer')).toEqual(f);
  });

  it('hello: u8 list count (max 16), u16 items, u64 timestamp', () => {
    const f: Frame = { type: 'hello', protocolVersions: [1, 2], timestamp: 2 ** 40 };
    expect(encodeFrame(f)).toEqual(bytes(0x01, 2, [0, 1, 0, 2], [0, 0, 1, 0, 0, 0, 0, 0]));
  });

  it('presence and error: enums are indices', () => {
    expect(encodeFrame({ type: 'presence', event: 'leave', name: 'c' })).toEqual(
      bytes(0x48, 1, 1, 'c'),
    );
    expect(encodeFrame({ type: 'error', code: 'failed' })).toEqual(bytes(0x4a, 0, 0, 0));
    expect(encodeFrame({ type: 'error', code: 'rate_limited', requestId: 9 })).toEqual(
      bytes(0x4a, 3, 1, [0, 0, 0, 9], 0),
    );
  });

  it('receipt.stored: the layout of receipt under its own code; travels server -> client only', () => {
    const id = Uint8Array.from({ length: 16 }, (_, i) => 0x10 + i);
    const fields = {
      clientMessageId: id,
      status: 'delivered' as const,
      serverMessageId: 7,
      timestamp: 9,
    };
    const tail = bytes(id, 1, [0, 0, 0, 0, 0, 0, 0, 7], [0, 0, 0, 0, 0, 0, 0, 9]);
    const stored: Frame = { type: 'receipt.stored', ...fields };
    const b = bytes(0x4b, tail);
    expect(encodeFrame(stored)).toEqual(b);
    expect(decodeFrame(b, 'toClient')).toEqual(stored);
    expect(encodeFrame({ type: 'receipt', ...fields })).toEqual(bytes(0x45, tail));
    expect(codeOf(() => decodeFrame(b, 'toServer'))).toBe('FRAME_WRONG_DIRECTION');
  });

  it('resume: address, u8-prefixed token, u64 timestamp; travels client -> server only', () => {
    const token = Uint8Array.from({ length: 32 }, (_, i) => 0xc0 + i);
    const f: Frame = {
      type: 'resume',
      name: 'alice',
      deviceId: 1,
      sessionToken: token,
      timestamp: 0x0102,
    };
    const b = bytes(0x0d, 5, 'alice', [0, 0, 0, 1], 32, token, [0, 0, 0, 0, 0, 0, 1, 2]);
    expect(encodeFrame(f)).toEqual(b);
    expect(decodeFrame(b, 'toServer')).toEqual(f);
    expect(codeOf(() => decodeFrame(b, 'toClient'))).toBe('FRAME_WRONG_DIRECTION');
    const tooLong = bytes(
      0x0d,
      5,
      'alice',
      [0, 0, 0, 1],
      65,
      new Uint8Array(65),
      new Uint8Array(8),
    );
    expect(codeOf(() => decodeFrame(tooLong, 'toServer'))).toBe('FIELD_TOO_LONG');
  });

  it('empty frames are one byte', () => {
    expect(encodeFrame({ type: 'mailbox.fetch' })).toEqual(bytes(0x0b));
    expect(encodeFrame({ type: 'mailbox.empty' })).toEqual(bytes(0x47));
  });
});

describe('round trip', () => {
  for (const type of ALL_TYPES) {
    it(`${type}: decode(encode(f)) equals f`, () => {
      fc.assert(
        fc.property(frameArb(type), (f) => {
          const b = encodeFrame(f);
          expect(decodeFrame(b)).toEqual(f);
          // The decoder never aliases its input.
          const again = decodeFrame(b);
          b.fill(0xff);
          expect(again).toEqual(f);
        }),
        { numRuns: 150 },
      );
    });
  }

  it('large values (lists and byte strings up to their maxima) round-trip', () => {
    const heavy: FrameType[] = ['prekeys.upload', 'presence.list.result', 'deliver', 'send'];
    for (const type of heavy) {
      fc.assert(
        fc.property(frameArb(type, true), (f) => {
          const b = encodeFrame(f);
          expect(b.length).toBeLessThanOrEqual(MAX_FRAME_BYTES);
          expect(decodeFrame(b)).toEqual(f);
        }),
        { numRuns: 5 },
      );
    }
  });

  it('the largest possible encoding of every frame type fits MAX_FRAME_BYTES', () => {
    for (const type of ALL_TYPES) {
      expect(1 + maxStructBytes(FRAME_SPECS[type].fields), type).toBeLessThanOrEqual(
        MAX_FRAME_BYTES,
      );
    }
  });

  it('type codes are unique and direction ranges hold', () => {
    const codes = ALL_TYPES.map((t) => FRAME_SPECS[t].code);
    expect(new Set(codes).size).toBe(codes.length);
    for (const t of ALL_TYPES) {
      const { code, direction } = FRAME_SPECS[t];
      const expected = code < 0x40 ? 'toServer' : code < 0x70 ? 'toClient' : 'both';
      expect(direction, t).toBe(expected);
    }
  });
});

describe('malformed input gives typed errors', () => {
  it('every strict prefix of a valid encoding is rejected', () => {
    fc.assert(
      fc.property(anyFrameArb, (f) => {
        const b = encodeFrame(f);
        for (let n = 0; n < b.length; n++) {
          const r = tryDecodeFrame(b.subarray(0, n));
          expect(r.ok).toBe(false);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('a trailing byte is rejected', () => {
    fc.assert(
      fc.property(anyFrameArb, fc.integer({ min: 0, max: 255 }), (f, extra) => {
        const b = encodeFrame(f);
        const longer = new Uint8Array(b.length + 1);
        longer.set(b);
        longer[b.length] = extra;
        expect(codeOf(() => decodeFrame(longer))).toBe('FRAME_TRAILING_BYTES');
      }),
      { numRuns: 200 },
    );
  });

  it('empty input, unknown codes and wrong directions', () => {
    expect(codeOf(() => decodeFrame(new Uint8Array(0)))).toBe('FRAME_TRUNCATED');
    for (let code = 0; code < 256; code++) {
      const known = ALL_TYPES.some((t) => FRAME_SPECS[t].code === code);
      if (!known) expect(codeOf(() => decodeFrame(Uint8Array.of(code)))).toBe('FRAME_UNKNOWN_TYPE');
    }
    const ack = encodeFrame({ type: 'ack', serverMessageId: 1 });
    expect(codeOf(() => decodeFrame(ack, 'toClient'))).toBe('FRAME_WRONG_DIRECTION');
    const empty = encodeFrame({ type: 'mailbox.empty' });
    expect(codeOf(() => decodeFrame(empty, 'toServer'))).toBe('FRAME_WRONG_DIRECTION');
    const ping = encodeFrame({ type: 'ping', timestamp: 5 });
    expect(decodeFrame(ping, 'toServer').type).toBe('ping');
    expect(decodeFrame(ping, 'toClient').type).toBe('ping');
  });

  it('bad bool, enum, presence byte, u64 range', () => {
    // presence.list.result: requestId, u16 count 0, truncated=2
    expect(codeOf(() => decodeFrame(bytes(0x49, [0, 0, 0, 1], [0, 0], 2)))).toBe('FIELD_INVALID');
    expect(codeOf(() => decodeFrame(bytes(0x48, 2, 1, 'c')))).toBe('FIELD_INVALID');
    expect(codeOf(() => decodeFrame(bytes(0x05, [0, 0, 0, 7], 3, 'bob', 2)))).toBe('FIELD_INVALID');
    expect(codeOf(() => decodeFrame(bytes(0x0a, [0, 0x20, 0, 0, 0, 0, 0, 0])))).toBe(
      'FIELD_INVALID',
    );
    expect(decodeFrame(bytes(0x0a, [0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))).toEqual({
      type: 'ack',
      serverMessageId: Number.MAX_SAFE_INTEGER,
    });
  });

  it('names: empty, too long, upper case, bad first character', () => {
    const lookup = (n: number, name: number[]) => bytes(0x05, [0, 0, 0, 1], n, name, 0);
    expect(codeOf(() => decodeFrame(lookup(0, [])))).toBe('FIELD_INVALID');
    expect(codeOf(() => decodeFrame(lookup(65, new Array<number>(65).fill(0x61))))).toBe(
      'FIELD_INVALID',
    );
    expect(codeOf(() => decodeFrame(lookup(1, [0x41])))).toBe('FIELD_INVALID');
    expect(codeOf(() => decodeFrame(lookup(2, [0x2d, 0x61])))).toBe('FIELD_INVALID');
    expect(decodeFrame(lookup(2, [0x61, 0x2d]))).toMatchObject({ name: 'a-' });
  });

  it('length prefixes above the field maximum are FIELD_TOO_LONG', () => {
    // hello with 17 protocol versions (max 16)
    expect(
      codeOf(() =>
        decodeFrame(bytes(0x01, 17, new Array<number>(34).fill(0), [0, 0, 0, 0, 0, 0, 0, 0])),
      ),
    ).toBe('FIELD_TOO_LONG');
    // send with payload length 65537, no payload bytes following
    const head = bytes(
      0x06,
      new Array<number>(16).fill(0),
      1,
      'a',
      [0, 0, 0, 1],
      1,
      'b',
      [0, 0, 0, 1],
    );
    expect(codeOf(() => decodeFrame(bytes(head, [0, 1, 0, 1])))).toBe('FIELD_TOO_LONG');
    expect(codeOf(() => decodeFrame(bytes(head, [0xff, 0xff, 0xff, 0xff])))).toBe('FIELD_TOO_LONG');
  });

  it('invalid UTF-8 in a text field is FIELD_INVALID', () => {
    // challenge: version, nonce, timestamp, serverId = [0xc3, 0x28]
    const b = bytes(
      0x41,
      [0, 1],
      new Array<number>(32).fill(1),
      [0, 0, 0, 0, 0, 0, 0, 1],
      2,
      [0xc3, 0x28],
    );
    expect(codeOf(() => decodeFrame(b))).toBe('FIELD_INVALID');
  });

  it('oversized input is refused before parsing', () => {
    expect(codeOf(() => decodeFrame(new Uint8Array(MAX_FRAME_BYTES + 1)))).toBe('FRAME_TOO_LARGE');
  });
});

describe('the encoder refuses what the decoder would refuse', () => {
  const base = {
    type: 'send',
    clientMessageId: new Uint8Array(16),
    from: { name: 'alice', deviceId: 1 },
    to: { name: 'bob', deviceId: 1 },
    payload: new Uint8Array(1),
  } as const;
  const bad = (patch: Record<string, unknown>) =>
    codeOf(() => encodeFrame({ ...base, ...patch } as unknown as Frame));

  it('names the field and uses INVALID_ARGUMENT', () => {
    expect(bad({ clientMessageId: new Uint8Array(15) })).toBe('INVALID_ARGUMENT');
    expect(bad({ from: { name: 'Alice', deviceId: 1 } })).toBe('INVALID_ARGUMENT');
    expect(bad({ to: { name: 'bob', deviceId: -1 } })).toBe('INVALID_ARGUMENT');
    expect(bad({ to: { name: 'bob', deviceId: 2 ** 32 } })).toBe('INVALID_ARGUMENT');
    expect(bad({ to: { name: 'bob', deviceId: 1.5 } })).toBe('INVALID_ARGUMENT');
    expect(bad({ payload: new Uint8Array(65537) })).toBe('INVALID_ARGUMENT');
    expect(bad({ payload: 'text' })).toBe('INVALID_ARGUMENT');
    expect(bad({ to: undefined })).toBe('INVALID_ARGUMENT');
    expect(bad({ type: 'nope' })).toBe('INVALID_ARGUMENT');
    expect(bad({ type: 'toString' })).toBe('INVALID_ARGUMENT');
    expect(() => encodeFrame({ ...base, to: { name: 'bob', deviceId: -1 } })).toThrow(
      /send\.to\.deviceId/,
    );
  });

  it('rejects text that would not round-trip and out-of-range numbers', () => {
    const ch = (serverId: string) =>
      codeOf(() =>
        encodeFrame({
          type: 'challenge',
          version: 1,
          nonce: new Uint8Array(32),
          timestamp: 1,
          serverId,
        }),
      );
    expect(ch('relay.example')).toBe('no error');
    expect(ch('\ud800')).toBe('INVALID_ARGUMENT');
    expect(ch('x'.repeat(256))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => encodeFrame({ type: 'ack', serverMessageId: 2 ** 53 }))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(codeOf(() => encodeFrame({ type: 'ack', serverMessageId: Number.NaN }))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(codeOf(() => encodeFrame(null as unknown as Frame))).toBe('INVALID_ARGUMENT');
  });

  it('FRAME_TOO_LARGE when a caller sets a smaller frame limit', () => {
    expect(codeOf(() => encodeFrame({ ...base, payload: new Uint8Array(5000) }, 4000))).toBe(
      'FRAME_TOO_LARGE',
    );
  });
});
