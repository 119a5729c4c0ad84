/**
 * Byte helpers that every package needs and that must behave the same everywhere:
 * constant-time comparison, zeroization, concatenation, hex and UTF-8.
 */
import { CryptoError } from './errors.js';
import type { RandomSource } from './provider.js';
import { pooledRandom } from './random-pool.js';

/**
 * Compares two byte strings in time that depends only on their lengths, never on
 * where they differ. Lengths are treated as public (all our secrets have fixed sizes).
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

type ZeroizeHook = (buffer: Uint8Array) => void;
const zeroizeHooks = new Set<ZeroizeHook>();

/**
 * Lets an implementation forget derived state when key bytes are wiped (the Node
 * provider caches parsed OpenSSL key objects by array identity and must drop them).
 * @internal
 */
export function onZeroize(hook: ZeroizeHook): void {
  zeroizeHooks.add(hook);
}

type CopyHook = (from: Uint8Array, to: Uint8Array) => void;
const copyHooks = new Set<CopyHook>();

/**
 * Lets an implementation carry derived state over to a copy made by {@link copyKey}
 * (the Node provider hands the copy the parsed key object of the original).
 * @internal
 */
export function onKeyCopy(hook: CopyHook): void {
  copyHooks.add(hook);
}

/**
 * An independent copy of a key array, for a holder that must be able to wipe its
 * copy without touching the original. Unlike `slice()`, the copy keeps whatever a
 * provider derived from the original (the Node provider's parsed OpenSSL key, which
 * costs ~300 µs to rebuild from a secret), and it has its own identity, so zeroizing
 * either one leaves the other usable.
 */
export function copyKey<T extends Uint8Array>(key: T): T {
  const out = key.slice() as T;
  for (const hook of copyHooks) hook(key, out);
  return out;
}

/**
 * Overwrites secrets with zeros. JavaScript cannot promise that no copy survives
 * elsewhere in the heap, but wiping the buffers we own removes the long-lived ones.
 * Key arrays are immutable by contract until zeroized.
 */
export function zeroize(...buffers: ReadonlyArray<Uint8Array | undefined>): void {
  for (const b of buffers) {
    if (!b) continue;
    b.fill(0);
    for (const hook of zeroizeHooks) hook(b);
  }
}

export function concatBytes(...parts: ReadonlyArray<Uint8Array>): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

const HEX = '0123456789abcdef';
export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += (HEX[b >> 4] as string) + (HEX[b & 15] as string);
  return s;
}

export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new CryptoError('INVALID_ARGUMENT', 'hex: expected an even number of hex digits');
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true });
export const utf8Encode = (s: string): Uint8Array => encoder.encode(s);
/** Throws on invalid UTF-8 rather than inventing replacement characters. */
export function utf8Decode(bytes: Uint8Array): string {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    throw new CryptoError('INVALID_ARGUMENT', 'utf8: invalid UTF-8');
  }
}

/** Fills `out` from the platform CSPRNG (`getRandomValues` takes at most 65536 bytes). */
function fillFromPlatform(out: Uint8Array): void {
  for (let off = 0; off < out.length; off += 65536) {
    crypto.getRandomValues(out.subarray(off, Math.min(out.length, off + 65536)));
  }
}

/** Platform CSPRNG (`crypto.getRandomValues`, small draws pooled). Never Math.random. */
export const systemRandomBytes: RandomSource = pooledRandom(fillFromPlatform);
