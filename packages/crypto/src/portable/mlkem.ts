/**
 * ML-KEM-768 (FIPS 203 final) from @noble/post-quantum. Node 20's OpenSSL has no
 * ML-KEM, so both providers use this module.
 * @internal
 */
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { CryptoError, checkLength } from '../errors.js';
import {
  MLKEM768_CIPHERTEXT_BYTES,
  MLKEM768_PUBLIC_KEY_BYTES,
  MLKEM768_SECRET_KEY_BYTES,
  MLKEM768_SEED_BYTES,
  type MlKem768Ciphertext,
  type MlKem768PublicKey,
  type MlKem768SecretKey,
  type SharedSecret,
} from '../keys.js';
import type { MlKem768, RandomSource } from '../provider.js';

/** FIPS 203 §7.2 encapsulation message m is 32 bytes. */
const MLKEM_MESSAGE_BYTES = 32;

export function encapsulateWith(publicKey: Uint8Array, m: Uint8Array) {
  checkLength('publicKey', publicKey, MLKEM768_PUBLIC_KEY_BYTES);
  checkLength('m', m, MLKEM_MESSAGE_BYTES);
  let out: { cipherText: Uint8Array; sharedSecret: Uint8Array };
  try {
    out = ml_kem768.encapsulate(publicKey, m);
  } catch {
    // FIPS 203 §7.2 input check: ByteEncode12(ByteDecode12(ek)) must equal ek.
    throw new CryptoError('INVALID_KEY', 'publicKey: not a valid ML-KEM-768 encapsulation key');
  }
  return {
    ciphertext: out.cipherText as MlKem768Ciphertext,
    sharedSecret: out.sharedSecret as SharedSecret,
  };
}

export function createMlKem768(random: RandomSource): MlKem768 {
  const fromSeed = (seed: Uint8Array) => {
    checkLength('seed', seed, MLKEM768_SEED_BYTES);
    const kp = ml_kem768.keygen(seed);
    return {
      publicKey: kp.publicKey as MlKem768PublicKey,
      secretKey: kp.secretKey as MlKem768SecretKey,
    };
  };
  return {
    generateKeyPair: () => fromSeed(random(MLKEM768_SEED_BYTES)),
    keyPairFromSeed: fromSeed,
    encapsulate: (publicKey) => encapsulateWith(publicKey, random(MLKEM_MESSAGE_BYTES)),
    decapsulate(ciphertext, secretKey) {
      checkLength('ciphertext', ciphertext, MLKEM768_CIPHERTEXT_BYTES);
      checkLength('secretKey', secretKey, MLKEM768_SECRET_KEY_BYTES);
      try {
        return ml_kem768.decapsulate(ciphertext, secretKey) as SharedSecret;
      } catch {
        // FIPS 203 §7.3 hash check on dk failed: the secret key is corrupt.
        throw new CryptoError('INVALID_KEY', 'secretKey: not a valid ML-KEM-768 decapsulation key');
      }
    },
  };
}
