/**
 * The portable provider: @noble/* and liboqs's ML-KEM in WebAssembly, so it runs
 * unchanged in a browser.
 */
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { systemRandomBytes } from '../bytes.js';
import { CryptoError, checkLength } from '../errors.js';
import {
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SECRET_KEY_BYTES,
  ED25519_SIGNATURE_BYTES,
  HKDF_SHA256_MAX_BYTES,
  X25519_KEY_BYTES,
  type Ed25519PublicKey,
  type Ed25519SecretKey,
  type Ed25519Signature,
  type SharedSecret,
  type X25519PublicKey,
  type X25519SecretKey,
} from '../keys.js';
import type { CryptoProvider, ProviderOptions } from '../provider.js';
import { portableAes256Gcm, portableChaCha20Poly1305, portableXChaCha20Poly1305 } from './aead.js';
import { createMlKem768 } from './mlkem.js';

export function checkHkdfLength(length: number): void {
  if (!Number.isInteger(length) || length < 0 || length > HKDF_SHA256_MAX_BYTES) {
    throw new CryptoError(
      'INVALID_ARGUMENT',
      `length: HKDF-SHA256 output must be 0..${HKDF_SHA256_MAX_BYTES} bytes, got ${length}`,
    );
  }
}

export function isAllZero(bytes: Uint8Array): boolean {
  let acc = 0;
  for (const b of bytes) acc |= b;
  return acc === 0;
}

export function createPortableCrypto(options: ProviderOptions = {}): CryptoProvider {
  const random = options.random ?? systemRandomBytes;
  const edFromSecret = (secretKey: Ed25519SecretKey) => {
    checkLength('secretKey', secretKey, ED25519_SECRET_KEY_BYTES);
    return { publicKey: ed25519.getPublicKey(secretKey) as Ed25519PublicKey, secretKey };
  };
  const xFromSecret = (secretKey: X25519SecretKey) => {
    checkLength('secretKey', secretKey, X25519_KEY_BYTES);
    return { publicKey: x25519.getPublicKey(secretKey) as X25519PublicKey, secretKey };
  };
  return {
    name: 'portable',
    randomBytes: random,
    sha256: (data) => sha256(data),
    sha512: (data) => sha512(data),
    hmacSha256: (key, data) => hmac(sha256, key, data),
    hkdfSha256(ikm, salt, info, length) {
      checkHkdfLength(length);
      return hkdf(sha256, ikm, salt, info, length);
    },
    ed25519: {
      generateKeyPair: () => edFromSecret(random(ED25519_SECRET_KEY_BYTES) as Ed25519SecretKey),
      keyPairFromSecret: edFromSecret,
      sign(secretKey, message) {
        checkLength('secretKey', secretKey, ED25519_SECRET_KEY_BYTES);
        return ed25519.sign(message, secretKey) as Ed25519Signature;
      },
      verify(publicKey, message, signature) {
        checkLength('publicKey', publicKey, ED25519_PUBLIC_KEY_BYTES);
        checkLength('signature', signature, ED25519_SIGNATURE_BYTES);
        try {
          // zip215:false = RFC 8032 strict decoding, matching OpenSSL's verdicts.
          return ed25519.verify(signature, message, publicKey, { zip215: false });
        } catch {
          return false;
        }
      },
    },
    x25519: {
      generateKeyPair: () => xFromSecret(random(X25519_KEY_BYTES) as X25519SecretKey),
      keyPairFromSecret: xFromSecret,
      dh(secretKey, publicKey) {
        checkLength('secretKey', secretKey, X25519_KEY_BYTES);
        checkLength('publicKey', publicKey, X25519_KEY_BYTES);
        let shared: Uint8Array;
        try {
          shared = x25519.getSharedSecret(secretKey, publicKey);
        } catch {
          // noble refuses an all-zero result itself; same verdict as our own check.
          throw new CryptoError('LOW_ORDER_POINT', 'publicKey: low-order X25519 point');
        }
        if (isAllZero(shared)) {
          throw new CryptoError('LOW_ORDER_POINT', 'publicKey: low-order X25519 point');
        }
        return shared as SharedSecret;
      },
    },
    mlkem768: createMlKem768(random, options.random === undefined),
    aes256gcm: portableAes256Gcm,
    chacha20poly1305: portableChaCha20Poly1305,
    xchacha20poly1305: portableXChaCha20Poly1305,
  };
}
