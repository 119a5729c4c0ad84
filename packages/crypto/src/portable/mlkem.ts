/**
 * ML-KEM-768 (FIPS 203 final) for both providers (Node 20's OpenSSL has none).
 *
 * Two implementations, with the same result on every input (the known-answer and
 * cross-check tests run both):
 *  - liboqs in WebAssembly (`./mlkem-liboqs.ts`), about ten times faster, for every
 *    decapsulation, and for key generation and encapsulation when the provider draws
 *    from the platform CSPRNG, which is where liboqs draws too;
 *  - @noble/post-quantum for what liboqs-js cannot take as input: a seed
 *    (`keyPairFromSeed`) and any provider built with its own `random` source, so that
 *    seeded providers stay deterministic, and as the fallback where WebAssembly does
 *    not load.
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
  type MlKem768Encapsulation,
  type MlKem768KeyPair,
  type MlKem768PublicKey,
  type MlKem768SecretKey,
  type SharedSecret,
} from '../keys.js';
import type { MlKem768, RandomSource } from '../provider.js';
import { liboqsMlKem768 } from './mlkem-liboqs.js';

/** FIPS 203 §7.2 encapsulation message m is 32 bytes. */
const MLKEM_MESSAGE_BYTES = 32;

/** Which implementation serves unseeded operations: 'liboqs' (WebAssembly) or 'noble'. */
export const mlkem768Implementation: 'liboqs' | 'noble' = liboqsMlKem768 ? 'liboqs' : 'noble';

function invalidPublicKey(): CryptoError {
  // FIPS 203 §7.2 input check: ByteEncode12(ByteDecode12(ek)) must equal ek.
  return new CryptoError('INVALID_KEY', 'publicKey: not a valid ML-KEM-768 encapsulation key');
}

function invalidSecretKey(): CryptoError {
  // FIPS 203 §7.3 input check: the hash of ek embedded in dk must match.
  return new CryptoError('INVALID_KEY', 'secretKey: not a valid ML-KEM-768 decapsulation key');
}

function checkDecapsulationInputs(ciphertext: Uint8Array, secretKey: Uint8Array): void {
  checkLength('ciphertext', ciphertext, MLKEM768_CIPHERTEXT_BYTES);
  checkLength('secretKey', secretKey, MLKEM768_SECRET_KEY_BYTES);
}

export function encapsulateWith(publicKey: Uint8Array, m: Uint8Array): MlKem768Encapsulation {
  checkLength('publicKey', publicKey, MLKEM768_PUBLIC_KEY_BYTES);
  checkLength('m', m, MLKEM_MESSAGE_BYTES);
  let out: { cipherText: Uint8Array; sharedSecret: Uint8Array };
  try {
    out = ml_kem768.encapsulate(publicKey, m);
  } catch {
    throw invalidPublicKey();
  }
  return {
    ciphertext: out.cipherText as MlKem768Ciphertext,
    sharedSecret: out.sharedSecret as SharedSecret,
  };
}

function keyPairFromSeed(seed: Uint8Array): MlKem768KeyPair {
  checkLength('seed', seed, MLKEM768_SEED_BYTES);
  const kp = ml_kem768.keygen(seed);
  return {
    publicKey: kp.publicKey as MlKem768PublicKey,
    secretKey: kp.secretKey as MlKem768SecretKey,
  };
}

/** @noble's ML-KEM-768 with every draw from `random` (seeded providers, fallback). */
export function createNobleMlKem768(random: RandomSource): MlKem768 {
  return {
    generateKeyPair: () => keyPairFromSeed(random(MLKEM768_SEED_BYTES)),
    keyPairFromSeed,
    encapsulate: (publicKey) => encapsulateWith(publicKey, random(MLKEM_MESSAGE_BYTES)),
    decapsulate(ciphertext, secretKey) {
      checkDecapsulationInputs(ciphertext, secretKey);
      try {
        return ml_kem768.decapsulate(ciphertext, secretKey) as SharedSecret;
      } catch {
        throw invalidSecretKey();
      }
    },
  };
}

/**
 * The providers' ML-KEM-768. `random` is the provider's source; `platformRandom` says
 * that it is the platform CSPRNG (no `random` option given), so that liboqs, which
 * draws from that same CSPRNG, may generate keys and encapsulate.
 */
export function createMlKem768(random: RandomSource, platformRandom: boolean): MlKem768 {
  const noble = createNobleMlKem768(random);
  const oqs = liboqsMlKem768;
  if (!oqs) return noble;
  const decapsulate: MlKem768['decapsulate'] = (ciphertext, secretKey) => {
    checkDecapsulationInputs(ciphertext, secretKey);
    try {
      return oqs.decapsulate(ciphertext, secretKey) as SharedSecret;
    } catch {
      // liboqs fails decapsulation only on the §7.3 hash check; a bad ciphertext is
      // implicitly rejected with a pseudo-random key, as in @noble.
      throw invalidSecretKey();
    }
  };
  if (!platformRandom) return { ...noble, decapsulate };
  return {
    generateKeyPair() {
      const kp = oqs.generateKeyPair();
      return {
        publicKey: kp.publicKey as MlKem768PublicKey,
        secretKey: kp.secretKey as MlKem768SecretKey,
      };
    },
    keyPairFromSeed,
    encapsulate(publicKey) {
      checkLength('publicKey', publicKey, MLKEM768_PUBLIC_KEY_BYTES);
      let out: { ciphertext: Uint8Array; sharedSecret: Uint8Array };
      try {
        out = oqs.encapsulate(publicKey);
      } catch {
        // liboqs fails encapsulation only on the §7.2 modulus check.
        throw invalidPublicKey();
      }
      return {
        ciphertext: out.ciphertext as MlKem768Ciphertext,
        sharedSecret: out.sharedSecret as SharedSecret,
      };
    },
    decapsulate,
  };
}
