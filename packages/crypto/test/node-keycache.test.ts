/**
 * The Node provider's parsed-key cache: it is used, it forgets a key when the key is
 * zeroized, and it never serves a stale key for an array whose bytes changed.
 */
import {
  asEd25519SecretKey,
  asX25519PublicKey,
  asX25519SecretKey,
  copyKey,
  createPortableCrypto,
  toHex,
  utf8Encode,
  zeroize,
} from '@parley/crypto';
import { createNodeCrypto } from '@parley/crypto/node';
import { describe, expect, it } from 'vitest';
import { keyCacheStats } from '../src/node/keycache.js';

const node = createNodeCrypto();
const portable = createPortableCrypto();
const msg = utf8Encode('cache me');

function stats(): { hits: number; misses: number } {
  return { ...keyCacheStats };
}

describe('node key cache', () => {
  it('parses a key once and reuses it', () => {
    const sk = asEd25519SecretKey(node.randomBytes(32));
    const before = stats();
    const first = node.ed25519.sign(sk, msg);
    const second = node.ed25519.sign(sk, msg);
    expect(toHex(second)).toBe(toHex(first));
    expect(keyCacheStats.misses - before.misses).toBe(1);
    expect(keyCacheStats.hits - before.hits).toBe(1);
  });

  it('forgets a zeroized key: the wiped array signs as the all-zero seed', () => {
    const sk = asEd25519SecretKey(node.randomBytes(32));
    const original = toHex(node.ed25519.sign(sk, msg));
    zeroize(sk);
    const before = stats();
    const after = toHex(node.ed25519.sign(sk, msg));
    expect(keyCacheStats.misses - before.misses).toBe(1);
    expect(after).not.toBe(original);
    expect(after).toBe(toHex(portable.ed25519.sign(asEd25519SecretKey(new Uint8Array(32)), msg)));
  });

  it('never serves a stale key when an array is overwritten without zeroize', () => {
    const sk = asX25519SecretKey(node.randomBytes(32));
    const peer = asX25519PublicKey(portable.x25519.generateKeyPair().publicKey);
    node.x25519.dh(sk, peer);
    sk.set(node.randomBytes(32));
    expect(toHex(node.x25519.dh(sk, peer))).toBe(toHex(portable.x25519.dh(sk, peer)));
    expect(toHex(node.x25519.keyPairFromSecret(sk).publicKey)).toBe(
      toHex(portable.x25519.keyPairFromSecret(sk).publicKey),
    );
  });

  it('keeps key kinds apart: the same 32 bytes as Ed25519 and X25519 secret', () => {
    const raw = node.randomBytes(32);
    const ed = node.ed25519.keyPairFromSecret(asEd25519SecretKey(raw));
    const x = node.x25519.keyPairFromSecret(asX25519SecretKey(raw));
    expect(toHex(ed.publicKey)).toBe(
      toHex(portable.ed25519.keyPairFromSecret(ed.secretKey).publicKey),
    );
    expect(toHex(x.publicKey)).toBe(
      toHex(portable.x25519.keyPairFromSecret(x.secretKey).publicKey),
    );
  });

  it('native key generation (default random) gives sound pairs whose first use is a hit', () => {
    for (let i = 0; i < 20; i++) {
      const ed = node.ed25519.generateKeyPair();
      const x = node.x25519.generateKeyPair();
      expect(toHex(portable.ed25519.keyPairFromSecret(ed.secretKey).publicKey)).toBe(
        toHex(ed.publicKey),
      );
      expect(toHex(portable.x25519.keyPairFromSecret(x.secretKey).publicKey)).toBe(
        toHex(x.publicKey),
      );
      const before = stats();
      const sig = node.ed25519.sign(ed.secretKey, msg);
      const peer = portable.x25519.generateKeyPair();
      const shared = node.x25519.dh(x.secretKey, peer.publicKey);
      // Two secret-key lookups, both hits; the peer's public key is the only miss.
      expect(keyCacheStats.hits - before.hits).toBe(2);
      expect(keyCacheStats.misses - before.misses).toBe(1);
      expect(portable.ed25519.verify(ed.publicKey, msg, sig)).toBe(true);
      expect(toHex(shared)).toBe(toHex(portable.x25519.dh(peer.secretKey, x.publicKey)));
    }
  });

  it('a native pair forgets its key object when zeroized', () => {
    const x = node.x25519.generateKeyPair();
    const peer = portable.x25519.generateKeyPair();
    node.x25519.dh(x.secretKey, peer.publicKey);
    zeroize(x.secretKey);
    const before = stats();
    expect(toHex(node.x25519.dh(x.secretKey, peer.publicKey))).toBe(
      toHex(portable.x25519.dh(x.secretKey, peer.publicKey)),
    );
    expect(keyCacheStats.misses - before.misses).toBeGreaterThanOrEqual(1);
  });

  it('a copyKey copy inherits the parsed key; a slice() does not; each can be wiped alone', () => {
    const sk = asX25519SecretKey(node.randomBytes(32));
    const peer = portable.x25519.generateKeyPair();
    const expected = toHex(portable.x25519.dh(sk, peer.publicKey));
    node.x25519.dh(sk, peer.publicKey);
    node.x25519.dh(sk.slice() as typeof sk, peer.publicKey); // warm the peer's key too
    const copy = copyKey(sk);
    expect(copy).not.toBe(sk);
    let before = stats();
    expect(toHex(node.x25519.dh(copy, peer.publicKey))).toBe(expected);
    expect(keyCacheStats.misses - before.misses).toBe(0);
    before = stats();
    node.x25519.dh(sk.slice() as typeof sk, peer.publicKey);
    expect(keyCacheStats.misses - before.misses).toBe(1);
    // Wiping the copy forgets only the copy; the original still hits.
    zeroize(copy);
    before = stats();
    expect(toHex(node.x25519.dh(sk, peer.publicKey))).toBe(expected);
    expect(keyCacheStats.misses - before.misses).toBe(0);
    expect(toHex(node.x25519.dh(copy, peer.publicKey))).toBe(
      toHex(portable.x25519.dh(copy, peer.publicKey)),
    );
  });

  it('copyKey of an array overwritten since it was parsed carries nothing stale over', () => {
    const sk = asEd25519SecretKey(node.randomBytes(32));
    node.ed25519.sign(sk, msg);
    sk.set(node.randomBytes(32));
    const copy = copyKey(sk);
    expect(toHex(node.ed25519.sign(copy, msg))).toBe(toHex(portable.ed25519.sign(sk, msg)));
  });
});
