/**
 * The pool in front of the platform CSPRNG: fresh arrays of their own, the handed-out
 * bytes wiped from the pool, one CSPRNG call per 4 KiB of small draws, large draws
 * straight through, and the same errors as an unpooled draw.
 */
import { createPortableCrypto, systemRandomBytes, toHex } from '@parley/crypto';
import { createNodeCrypto } from '@parley/crypto/node';
import { describe, expect, it } from 'vitest';
import { pooledRandom } from '../src/random-pool.js';

/** A fill function that records what it was given and writes a recognisable pattern. */
function recordingFill() {
  const calls: Uint8Array[] = [];
  let counter = 0;
  const fill = (buffer: Uint8Array) => {
    calls.push(buffer);
    for (let i = 0; i < buffer.length; i++) buffer[i] = (counter++ % 255) + 1; // never 0
  };
  return { calls, fill };
}

describe('pooledRandom', () => {
  it('hands out fresh arrays and wipes what it handed out from the pool', () => {
    const { calls, fill } = recordingFill();
    const random = pooledRandom(fill);
    const a = random(12);
    const b = random(32);
    expect(calls.length).toBe(1);
    const pool = calls[0] as Uint8Array;
    expect(pool.length).toBe(4096);
    for (const out of [a, b]) {
      expect(out.byteOffset).toBe(0);
      expect(out.buffer.byteLength).toBe(out.length);
      expect(out.buffer).not.toBe(pool.buffer);
      expect(out.every((x) => x !== 0)).toBe(true);
    }
    expect(toHex(a)).not.toBe(toHex(b.subarray(0, 12)));
    expect(pool.subarray(0, 44).every((x) => x === 0)).toBe(true);
    expect(pool.subarray(44).every((x) => x !== 0)).toBe(true);
  });

  it('refills only when a draw no longer fits, and sends large draws straight through', () => {
    const { calls, fill } = recordingFill();
    const random = pooledRandom(fill);
    for (let i = 0; i < 128; i++) random(32);
    expect(calls.length).toBe(1);
    random(32);
    expect(calls.length).toBe(2);
    const big = random(257);
    expect(calls.length).toBe(3);
    expect(calls[2]).toBe(big);
    expect(random(0).length).toBe(0);
  });

  it('treats odd lengths as an unpooled draw would', () => {
    const random = pooledRandom(recordingFill().fill);
    expect(() => random(-1)).toThrow(RangeError);
    expect(random(1.5).length).toBe(new Uint8Array(1.5).length);
  });

  it.each([
    ['node', createNodeCrypto().randomBytes],
    ['portable', createPortableCrypto().randomBytes],
    ['systemRandomBytes', systemRandomBytes],
  ] as const)('%s: consecutive small draws differ and are independent arrays', (_, random) => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const out = random(12);
      expect(out.buffer.byteLength).toBe(12);
      seen.add(toHex(out));
    }
    expect(seen.size).toBe(1000);
  });
});
