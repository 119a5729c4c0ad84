import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '@parley/protocol';
import { decodeBody, encodeBody, padBody } from '../src/padding.js';

describe('body framing and padding', () => {
  it('round-trips any plaintext at any buffer alignment, and refuses any non-zero padding byte', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 5000 }),
        fc.nat({ max: 64 }),
        fc.integer({ min: 0, max: 7 }),
        fc.nat(),
        (plaintext, extra, offset, where) => {
          const framed = encodeBody(plaintext);
          const padded = padBody(framed, framed.length + extra);
          // Place it at an arbitrary offset so the word-wise zero check meets every alignment.
          const host = new Uint8Array(offset + padded.length);
          host.set(padded, offset);
          const view = host.subarray(offset);
          expect(decodeBody(view)).toEqual(plaintext);
          if (extra > 0) {
            view[framed.length + (where % extra)] = 1;
            expect(() => decodeBody(view)).toThrow(ProtocolError);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('compresses only when it helps', () => {
    const repetitive = new Uint8Array(10_000).fill(65);
    expect(encodeBody(repetitive).length).toBeLessThan(200);
    expect(encodeBody(repetitive)[0]).toBe(1);
    expect(encodeBody(new Uint8Array(100))[0]).toBe(0);
  });
});
