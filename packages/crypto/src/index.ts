/**
 * `@parley/crypto`: the only package that touches cryptographic primitives.
 *
 * @example
 * ```ts
 * import { createPortableCrypto } from '@parley/crypto';
 * const c = createPortableCrypto();
 * const alice = c.x25519.generateKeyPair();
 * const bob = c.x25519.generateKeyPair();
 * c.x25519.dh(alice.secretKey, bob.publicKey); // equals dh(bob.secretKey, alice.publicKey)
 * ```
 */
export * from './errors.js';
export * from './keys.js';
export type * from './provider.js';
export {
  concatBytes,
  constantTimeEqual,
  copyKey,
  fromHex,
  onZeroize,
  systemRandomBytes,
  toHex,
  utf8Decode,
  utf8Encode,
  zeroize,
} from './bytes.js';
export { createPortableCrypto } from './portable/index.js';
export { mlkem768Implementation } from './portable/mlkem.js';
export { createSeededRandom } from './seeded-random.js';
