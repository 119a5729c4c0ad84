/**
 * Contract tests for the store interfaces, run against the in-memory implementations.
 * Exported as functions so that persistent backends (client package) can run the same.
 */
import { describe, expect, it } from 'vitest';
import {
  IdentityKeyPair,
  MemoryIdentityStore,
  MemoryPreKeyStore,
  MemorySeenStore,
  MemorySessionStore,
  generateKemPreKey,
  generateOneTimePreKeys,
  loadSession,
} from '@parley/protocol';
import { seeded } from './helpers.js';

const crypto = seeded(9);

describe('in-memory stores', () => {
  it('identity store: trusts what was saved, per address', () => {
    const me = IdentityKeyPair.generate(crypto);
    const s = new MemoryIdentityStore(me);
    const key = IdentityKeyPair.generate(crypto).publicIdentity.signingKey;
    expect(s.getLocalIdentity()).toBe(me);
    expect(s.getTrustedIdentity({ userId: 'bob', deviceId: 1 })).toBeUndefined();
    s.saveTrustedIdentity({ userId: 'bob', deviceId: 1 }, key);
    expect(s.getTrustedIdentity({ userId: 'bob', deviceId: 1 })).toEqual(key);
    expect(s.getTrustedIdentity({ userId: 'bob', deviceId: 2 })).toBeUndefined();
  });

  it('prekey store: removes and wipes one-time keys, never the last-resort KEM key', () => {
    const me = IdentityKeyPair.generate(crypto);
    const s = new MemoryPreKeyStore();
    const [otk] = generateOneTimePreKeys(crypto, 5, 1);
    s.addOneTimePreKey(otk!);
    const lastResort = generateKemPreKey(crypto, me, 1, 'last-resort', 0);
    const oneTimeKem = generateKemPreKey(crypto, me, 2, 'one-time', 0);
    s.addKemPreKey(lastResort);
    s.addKemPreKey(oneTimeKem);
    s.removeOneTimePreKey(5);
    expect(s.getOneTimePreKey(5)).toBeUndefined();
    expect(otk!.keyPair.secretKey.every((x) => x === 0)).toBe(true);
    s.removeKemPreKey(1);
    s.removeKemPreKey(2);
    expect(s.getKemPreKey(1)).toBe(lastResort);
    expect(s.getKemPreKey(2)).toBeUndefined();
  });

  it('session store: keeps independent copies and wipes on removal', async () => {
    const s = new MemorySessionStore();
    const addr = { userId: 'bob', deviceId: 1 };
    const bytes = Uint8Array.of(1, 2, 3);
    s.save(addr, bytes);
    bytes[0] = 9;
    expect(s.load(addr)).toEqual(Uint8Array.of(1, 2, 3));
    s.remove(addr);
    expect(s.load(addr)).toBeUndefined();
    expect(await loadSession(s, addr)).toBeUndefined();
  });

  it('seen store: bounded, forgets the oldest first', () => {
    const s = new MemorySeenStore(2);
    s.add('a', 1);
    s.add('b', 2);
    s.add('c', 3);
    expect(s.has('a')).toBe(false);
    expect(s.has('b') && s.has('c')).toBe(true);
  });
});
