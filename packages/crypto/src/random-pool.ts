/**
 * A small pool in front of a platform CSPRNG. Each call into the CSPRNG has a fixed
 * cost of ~2-3 µs in Node 20 (`randomFillSync`, `getRandomValues`), more than drawing
 * the bytes; a message draws one 12-byte nonce, so the call cost showed up as ~10 % of
 * a message's profile. The pool fills 4 KiB at a time and hands out copies.
 *
 * Every output is a fresh array of its own, and the pool wipes the bytes it handed
 * out, so a copy lives only with its caller. The unused rest of the pool is future
 * randomness held in memory, like the generator's own state, which whoever can read
 * this process's memory could read too.
 * @internal
 */
import type { RandomSource } from './provider.js';

const POOL_BYTES = 4096;
/** Larger draws (bulk data, test loads) go straight to the CSPRNG. */
const MAX_POOLED_DRAW = 256;

export function pooledRandom(fill: (buffer: Uint8Array) => void): RandomSource {
  const pool = new Uint8Array(POOL_BYTES);
  let offset = POOL_BYTES;
  return (length) => {
    if (!Number.isInteger(length) || length < 0 || length > MAX_POOLED_DRAW) {
      const out = new Uint8Array(length);
      fill(out);
      return out;
    }
    if (offset + length > POOL_BYTES) {
      fill(pool);
      offset = 0;
    }
    const out = pool.slice(offset, offset + length);
    pool.fill(0, offset, offset + length);
    offset += length;
    return out;
  };
}
