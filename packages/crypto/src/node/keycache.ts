/**
 * Parsed OpenSSL key objects, cached by the identity of the raw key array.
 *
 * Turning 32 raw bytes into a `KeyObject` (DER wrap + OpenSSL decode) costs far more
 * than the curve operation it feeds (~140-300 µs against ~50 µs for a signature), and
 * protocol code reuses the same identity and ratchet keys many times. The cache is a
 * `WeakMap`, so it never keeps a key alive, and it forgets an entry as soon as the
 * array is passed to `zeroize` (via the `onZeroize` hook).
 *
 * Key arrays are immutable by contract, but a caller that reuses a buffer would
 * otherwise get the old key silently; each entry therefore keeps a copy of the bytes
 * it was parsed from and is used only while the array still holds exactly those bytes
 * (a 32-byte constant-time compare, about a hundred nanoseconds).
 * @internal
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { constantTimeEqual, fromHex, onKeyCopy, onZeroize } from '../bytes.js';

interface Entry {
  readonly bytes: Uint8Array;
  readonly key: KeyObject;
}

/** The four kinds of raw key we parse; a key array may be cached once per kind. */
export type KeyKind = 'ed25519-secret' | 'ed25519-public' | 'x25519-secret' | 'x25519-public';

/**
 * DER prefixes that wrap a raw 32-byte secret key as PKCS#8 (RFC 8410 §7).
 * OIDs: 1.3.101.112 = Ed25519, 1.3.101.110 = X25519.
 */
const PKCS8_PREFIX: Readonly<Record<'ed25519-secret' | 'x25519-secret', Uint8Array>> = {
  'ed25519-secret': fromHex('302e020100300506032b657004220420'),
  'x25519-secret': fromHex('302e020100300506032b656e04220420'),
};

const JWK_CURVE: Readonly<Record<'ed25519-public' | 'x25519-public', string>> = {
  'ed25519-public': 'Ed25519',
  'x25519-public': 'X25519',
};

const caches: Readonly<Record<KeyKind, WeakMap<Uint8Array, Entry>>> = {
  'ed25519-secret': new WeakMap(),
  'ed25519-public': new WeakMap(),
  'x25519-secret': new WeakMap(),
  'x25519-public': new WeakMap(),
};

/** The same four maps as a list: the hooks below run for every zeroized buffer. */
const allCaches: ReadonlyArray<WeakMap<Uint8Array, Entry>> = Object.values(caches);

onZeroize((buffer) => {
  for (const cache of allCaches) {
    const entry = cache.get(buffer);
    if (!entry) continue;
    // The entry's copy is as secret as the original; OpenSSL's copy goes with the GC.
    entry.bytes.fill(0);
    cache.delete(buffer);
  }
});

onKeyCopy((from, to) => {
  for (const cache of allCaches) {
    const entry = cache.get(from);
    // Only an entry that still matches the bytes it was parsed from is carried over.
    if (entry && constantTimeEqual(entry.bytes, from)) {
      cache.set(to, { bytes: to.slice(), key: entry.key });
    }
  }
});

/** Hit and miss counters, read by the cache tests; cheap enough to keep always on. */
export const keyCacheStats = { hits: 0, misses: 0 };

/**
 * Public keys go through JWK (RFC 8037), which OpenSSL imports with its raw-key API:
 * ~8 µs against ~75 µs for SPKI DER through the OpenSSL 3 decoder (measured on Node
 * 20.20). Secret keys go through PKCS#8 DER (~300 µs) even though JWK would be ~25 µs,
 * because JWK needs the secret as a base64url JavaScript string, an immutable copy that
 * `zeroize` can never wipe; the DER buffer is ours and is wiped right after parsing.
 */
function parse(kind: KeyKind, raw: Uint8Array): KeyObject {
  if (kind === 'ed25519-public' || kind === 'x25519-public') {
    const x = Buffer.from(raw.buffer, raw.byteOffset, raw.length).toString('base64url');
    return createPublicKey({ key: { kty: 'OKP', crv: JWK_CURVE[kind], x }, format: 'jwk' });
  }
  const prefix = PKCS8_PREFIX[kind];
  const der = Buffer.alloc(prefix.length + raw.length);
  der.set(prefix, 0);
  der.set(raw, prefix.length);
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } finally {
    der.fill(0);
  }
}

/**
 * Records a `KeyObject` that was made some other way (native key generation) for the
 * raw key it holds, so the first use of a fresh key pair is already a cache hit.
 */
export function rememberKeyObject(kind: KeyKind, raw: Uint8Array, key: KeyObject): void {
  caches[kind].set(raw, { bytes: raw.slice(), key });
}

/**
 * The raw 32-byte secret of a native OKP private key, read from its PKCS#8 DER (the
 * export buffer is wiped). Returns undefined if OpenSSL's encoding is not the plain
 * RFC 8410 layout, so callers fall back to importing a seed.
 */
export function rawSecretOf(kind: 'ed25519-secret' | 'x25519-secret', key: KeyObject) {
  const der = key.export({ format: 'der', type: 'pkcs8' });
  try {
    const prefix = PKCS8_PREFIX[kind];
    if (der.length !== prefix.length + 32) return undefined;
    if (!constantTimeEqual(der.subarray(0, prefix.length), prefix)) return undefined;
    return new Uint8Array(der.subarray(prefix.length));
  } finally {
    der.fill(0);
  }
}

/** The `KeyObject` for `raw` (a 32-byte key of the given kind), parsed at most once. */
export function keyObject(kind: KeyKind, raw: Uint8Array): KeyObject {
  const cache = caches[kind];
  const hit = cache.get(raw);
  if (hit && constantTimeEqual(hit.bytes, raw)) {
    keyCacheStats.hits++;
    return hit.key;
  }
  keyCacheStats.misses++;
  hit?.bytes.fill(0); // an entry for bytes the array no longer holds: wipe its copy
  const key = parse(kind, raw);
  cache.set(raw, { bytes: raw.slice(), key });
  return key;
}
