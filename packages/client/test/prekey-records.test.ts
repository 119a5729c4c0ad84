/**
 * The client's private prekey records (layouts in the protocol adapter's header): the
 * bytes are exactly the documented big-endian layout, they read back to the same
 * records, and a cut record is PROFILE_CORRUPT, never a half-read key.
 */
import { describe, expect, it } from 'vitest';
import { concatBytes } from '@parley/crypto';
import { createNodeCrypto } from '@parley/crypto/node';
import {
  IdentityKeyPair,
  generateKemPreKey,
  generateOneTimePreKeys,
  generateSignedPreKey,
} from '@parley/protocol';
import { ClientError } from '../src/errors.js';
import {
  decodeKemRecord,
  decodeOneTimeRecord,
  decodeSignedRecord,
  encodeKemRecord,
  encodeOneTimeRecord,
  encodeSignedRecord,
} from '../src/protocol-adapter.js';

const crypto = createNodeCrypto();
const identity = IdentityKeyPair.generate(crypto);
const CREATED = 0x0123_4567_89ab; // above 2^32: both halves of the u64 matter

const u32 = (v: number) => Uint8Array.of(v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255);
const u64 = (v: number) => concatBytes(u32(Math.floor(v / 2 ** 32)), u32(v >>> 0));

function corrupt(read: () => unknown): string | undefined {
  try {
    read();
  } catch (e) {
    return e instanceof ClientError ? e.code : 'not a ClientError';
  }
  return undefined;
}

describe('stored prekey records', () => {
  it('signed prekey: documented layout, read back whole, a cut record is PROFILE_CORRUPT', () => {
    const rec = generateSignedPreKey(crypto, identity, 0x01020304, CREATED);
    const bytes = encodeSignedRecord(rec);
    expect(bytes).toEqual(
      concatBytes(
        u32(0x01020304),
        rec.keyPair.secretKey,
        rec.keyPair.publicKey,
        rec.signature,
        u64(CREATED),
      ),
    );
    expect(decodeSignedRecord(bytes)).toEqual(rec);
    expect(corrupt(() => decodeSignedRecord(bytes.subarray(0, bytes.length - 1)))).toBe(
      'PROFILE_CORRUPT',
    );
  });

  it('KEM prekey: kind byte, layout and round trip for both kinds', () => {
    for (const [kind, byte] of [
      ['last-resort', 1],
      ['one-time', 2],
    ] as const) {
      const rec = generateKemPreKey(crypto, identity, 7, kind, CREATED);
      const bytes = encodeKemRecord(rec);
      expect(bytes).toEqual(
        concatBytes(
          u32(7),
          Uint8Array.of(byte),
          rec.keyPair.secretKey,
          rec.keyPair.publicKey,
          rec.signature,
          u64(CREATED),
        ),
      );
      expect(decodeKemRecord(bytes)).toEqual(rec);
      expect(corrupt(() => decodeKemRecord(bytes.subarray(0, 3000)))).toBe('PROFILE_CORRUPT');
    }
  });

  it('one-time prekey: layout, round trip, cut record', () => {
    const [rec] = generateOneTimePreKeys(crypto, 9, 1);
    if (!rec) throw new Error('no one-time prekey made');
    const bytes = encodeOneTimeRecord(rec);
    expect(bytes).toEqual(concatBytes(u32(rec.id), rec.keyPair.secretKey, rec.keyPair.publicKey));
    expect(decodeOneTimeRecord(bytes)).toEqual(rec);
    expect(corrupt(() => decodeOneTimeRecord(bytes.subarray(0, 40)))).toBe('PROFILE_CORRUPT');
  });
});
