/**
 * Passphrase to storage key (M39). Argon2id through hash-wasm, which is the same
 * WebAssembly code in Node and in browsers, so a profile's parameters mean the same
 * thing to both clients.
 *
 * The derived key is never stored. A short key-check value (HMAC of a fixed label under
 * the key) is kept in the plaintext header so that a wrong passphrase can be told apart
 * from a damaged database before anything is opened. It gives an attacker nothing the
 * encrypted database does not already give (each guess still costs one Argon2id run).
 */
import { argon2id } from 'hash-wasm';
import { constantTimeEqual, fromHex, toHex, utf8Encode, zeroize } from '@parley/crypto';
import type { CryptoProvider } from '@parley/crypto';
import { ClientError } from './errors.js';

/** Argon2id cost, recorded per profile so it can be raised later without breaking old ones. */
export interface KdfParams {
  readonly algorithm: 'argon2id';
  /** Memory in KiB. */
  readonly memoryKiB: number;
  readonly iterations: number;
  readonly parallelism: number;
  /** Hex salt, SALT_BYTES long. */
  readonly salt: string;
}

/**
 * 64 MiB, t=3, p=1: RFC 9106 §4's second recommended option, about 0.4 s on the
 * project's machines, a cost a person opening a profile does not notice and an offline
 * guesser pays per guess.
 */
export const DEFAULT_KDF_MEMORY_KIB = 64 * 1024;
export const DEFAULT_KDF_ITERATIONS = 3;
export const DEFAULT_KDF_PARALLELISM = 1;
/** RFC 9106 §3.1 recommends 128-bit salts. */
export const SALT_BYTES = 16;
/** Storage key size: a 256-bit SQLCipher raw key. */
export const STORE_KEY_BYTES = 32;
/**
 * Lowest cost a profile may claim: a header edited to t=1 and 8 KiB must not make
 * guessing cheap. Tests use this floor to stay fast.
 */
export const MIN_KDF_MEMORY_KIB = 8;
/** Upper bounds keep a tampered header from making `open` allocate gigabytes or spin. */
export const MAX_KDF_MEMORY_KIB = 4 * 1024 * 1024;
export const MAX_KDF_ITERATIONS = 64;

const KEY_CHECK_LABEL = utf8Encode('parley/profile/key-check/v1');

/** Fresh parameters with a random salt; `cost` overrides are for tests. */
export function newKdfParams(
  crypto: CryptoProvider,
  cost: Partial<Pick<KdfParams, 'memoryKiB' | 'iterations' | 'parallelism'>> = {},
): KdfParams {
  return checkKdfParams({
    algorithm: 'argon2id',
    memoryKiB: cost.memoryKiB ?? DEFAULT_KDF_MEMORY_KIB,
    iterations: cost.iterations ?? DEFAULT_KDF_ITERATIONS,
    parallelism: cost.parallelism ?? DEFAULT_KDF_PARALLELISM,
    salt: toHex(crypto.randomBytes(SALT_BYTES)),
  });
}

/** Validates parameters read from an untrusted header; throws `PROFILE_CORRUPT`. */
export function checkKdfParams(p: unknown): KdfParams {
  const bad = (why: string): never => {
    throw new ClientError('PROFILE_CORRUPT', `profile header: ${why}`);
  };
  if (typeof p !== 'object' || p === null) return bad('kdf missing');
  const o = p as Record<string, unknown>;
  if (o['algorithm'] !== 'argon2id') bad('unsupported kdf');
  const int = (k: string, lo: number, hi: number): number => {
    const v = o[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi)
      bad(`kdf.${k} out of range`);
    return v as number;
  };
  const parallelism = int('parallelism', 1, 16);
  const memoryKiB = int(
    'memoryKiB',
    Math.max(MIN_KDF_MEMORY_KIB, 8 * parallelism),
    MAX_KDF_MEMORY_KIB,
  );
  const iterations = int('iterations', 1, MAX_KDF_ITERATIONS);
  const salt = o['salt'];
  if (typeof salt !== 'string' || !/^[0-9a-f]+$/.test(salt) || salt.length !== SALT_BYTES * 2) {
    bad('kdf.salt malformed');
  }
  return { algorithm: 'argon2id', memoryKiB, iterations, parallelism, salt: salt as string };
}

/** Argon2id(passphrase, salt) -> 32-byte storage key. The caller zeroizes it. */
export async function deriveStoreKey(passphrase: string, params: KdfParams): Promise<Uint8Array> {
  const password = utf8Encode(passphrase.normalize('NFC'));
  try {
    return await argon2id({
      password,
      salt: fromHex(params.salt),
      iterations: params.iterations,
      memorySize: params.memoryKiB,
      parallelism: params.parallelism,
      hashLength: STORE_KEY_BYTES,
      outputType: 'binary',
    });
  } finally {
    zeroize(password);
  }
}

/** Hex key-check value for the header. */
export function keyCheckValue(crypto: CryptoProvider, key: Uint8Array): string {
  return toHex(crypto.hmacSha256(key, KEY_CHECK_LABEL));
}

/** Constant-time comparison of a derived key against the header's check value. */
export function keyMatchesCheck(crypto: CryptoProvider, key: Uint8Array, check: string): boolean {
  if (!/^[0-9a-f]{64}$/.test(check)) return false;
  return constantTimeEqual(crypto.hmacSha256(key, KEY_CHECK_LABEL), fromHex(check));
}
