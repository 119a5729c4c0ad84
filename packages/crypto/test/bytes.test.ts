import { describe, expect, it } from 'vitest';
import {
  CryptoError,
  concatBytes,
  constantTimeEqual,
  createSeededRandom,
  fromHex,
  onZeroize,
  toHex,
  utf8Decode,
  utf8Encode,
  zeroize,
} from '@parley/crypto';

describe('bytes', () => {
  it('constantTimeEqual compares content and length', () => {
    expect(constantTimeEqual(fromHex('0102'), fromHex('0102'))).toBe(true);
    expect(constantTimeEqual(fromHex('0102'), fromHex('0103'))).toBe(false);
    expect(constantTimeEqual(fromHex('0102'), fromHex('010200'))).toBe(false);
    expect(constantTimeEqual(new Uint8Array(0), new Uint8Array(0))).toBe(true);
  });

  it('zeroize wipes every buffer and tells registered hooks', () => {
    const seen: Uint8Array[] = [];
    onZeroize((b) => seen.push(b));
    const a = fromHex('ffee');
    const b = fromHex('0102030405');
    zeroize(a, undefined, b);
    expect(toHex(a)).toBe('0000');
    expect(toHex(b)).toBe('0000000000');
    expect(seen).toContain(a);
    expect(seen).toContain(b);
  });

  it('hex round-trips and rejects malformed input with a typed error', () => {
    expect(toHex(fromHex('00ff7fAB'))).toBe('00ff7fab');
    expect(() => fromHex('abc')).toThrow(CryptoError);
    expect(() => fromHex('zz')).toThrow(/hex/);
  });

  it('utf8 decoding is strict', () => {
    expect(utf8Decode(utf8Encode('héllo ✓'))).toBe('héllo ✓');
    expect(() => utf8Decode(fromHex('c328'))).toThrow(CryptoError);
  });

  it('concatBytes joins in order', () => {
    expect(toHex(concatBytes(fromHex('01'), new Uint8Array(0), fromHex('0203')))).toBe('010203');
  });

  it('seeded random is deterministic per seed and never repeats a block', () => {
    const r1 = createSeededRandom(new Uint8Array(32));
    const r2 = createSeededRandom(new Uint8Array(32));
    const a = r1(40);
    expect(toHex(a)).toBe(toHex(r2(40)));
    // RFC 8439 §2.4.2 keystream block 0 for the all-zero key and nonce starts 76b8e0ad.
    expect(toHex(a.subarray(0, 4))).toBe('76b8e0ad');
    const next = r1(40);
    expect(toHex(next)).not.toBe(toHex(a));
    const other = createSeededRandom(new Uint8Array(32).fill(1))(40);
    expect(toHex(other)).not.toBe(toHex(a));
  });
});
