/**
 * A deterministic random source for tests, simulators and published vectors:
 * ChaCha20 keystream under a 32-byte seed (noble-ciphers, RFC 8439 §2.4).
 * Never use it for real keys; it exists so a failing run can be replayed exactly.
 */
import { chacha20 } from '@noble/ciphers/chacha.js';
import { checkLength } from './errors.js';
import type { RandomSource } from './provider.js';

export function createSeededRandom(seed: Uint8Array): RandomSource {
  checkLength('seed', seed, 32);
  const key = seed.slice();
  const nonce = new Uint8Array(12);
  let counter = 0;
  return (length: number) => {
    // Each call consumes whole 64-byte blocks, so outputs never overlap.
    const out = chacha20(key, nonce, new Uint8Array(length), undefined, counter);
    counter += Math.ceil(length / 64);
    return out;
  };
}
