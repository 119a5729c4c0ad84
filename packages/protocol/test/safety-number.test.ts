import { describe, expect, it } from 'vitest';
import { createPortableCrypto } from '@parley/crypto';
import { createNodeCrypto } from '@parley/crypto/node';
import {
  IdentityKeyPair,
  ProtocolError,
  SAFETY_NUMBER_ITERATIONS,
  matchesScannedSafetyNumber,
  safetyNumber,
} from '@parley/protocol';
import { seeded } from './helpers.js';

const crypto = seeded(3);
const alice = IdentityKeyPair.generate(crypto).publicIdentity.signingKey;
const bob = IdentityKeyPair.generate(crypto).publicIdentity.signingKey;
const mallory = IdentityKeyPair.generate(crypto).publicIdentity.signingKey;

describe('safety numbers (M30)', () => {
  it('is the same 60 digits on both sides, in 12 groups of 5', () => {
    const ours = safetyNumber(
      crypto,
      { userId: 'alice', identityKey: alice },
      { userId: 'bob', identityKey: bob },
    );
    const theirs = safetyNumber(
      crypto,
      { userId: 'bob', identityKey: bob },
      { userId: 'alice', identityKey: alice },
    );
    expect(ours).toEqual(theirs);
    expect(ours.digits).toMatch(/^\d{60}$/);
    expect(ours.groups).toHaveLength(12);
    expect(ours.groups.join('')).toBe(ours.digits);
    expect(matchesScannedSafetyNumber(ours, theirs.qrPayload)).toBe(true);
  });

  it('changes when either identity key or user id changes', () => {
    const base = safetyNumber(
      crypto,
      { userId: 'alice', identityKey: alice },
      { userId: 'bob', identityKey: bob },
    );
    const swapped = safetyNumber(
      crypto,
      { userId: 'alice', identityKey: alice },
      { userId: 'bob', identityKey: mallory },
    );
    const renamed = safetyNumber(
      crypto,
      { userId: 'alice', identityKey: alice },
      { userId: 'bob2', identityKey: bob },
    );
    expect(swapped.digits).not.toBe(base.digits);
    expect(renamed.digits).not.toBe(base.digits);
    expect(matchesScannedSafetyNumber(base, swapped.qrPayload)).toBe(false);
    expect(() => matchesScannedSafetyNumber(base, 'https://example.org')).toThrow(ProtocolError);
  });

  it('agrees between the providers and follows the documented construction', () => {
    const args = [
      { userId: 'alice', identityKey: alice },
      { userId: 'bob', identityKey: bob },
    ] as const;
    const portable = safetyNumber(createPortableCrypto(), ...args);
    expect(safetyNumber(createNodeCrypto(), ...args)).toEqual(portable);
    // Independent re-computation of one fingerprint from protocol.md §Safety numbers.
    const c = createPortableCrypto();
    let h: Uint8Array = new Uint8Array([0, 1, ...alice, ...new TextEncoder().encode('alice')]);
    for (let i = 0; i < SAFETY_NUMBER_ITERATIONS; i++)
      h = c.sha512(new Uint8Array([...h, ...alice]));
    let digits = '';
    for (let chunk = 0; chunk < 6; chunk++) {
      const v = h.subarray(chunk * 5, chunk * 5 + 5).reduce((acc, x) => acc * 256 + x, 0);
      digits += String(v % 100000).padStart(5, '0');
    }
    expect([portable.digits.slice(0, 30), portable.digits.slice(30)]).toContain(digits);
  });
});
