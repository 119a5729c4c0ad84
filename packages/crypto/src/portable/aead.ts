/**
 * noble-ciphers AEADs behind our `Aead` shape. The generic `*Raw` functions accept any
 * key/nonce size the primitive allows so the known-answer tests can run every
 * Wycheproof case; the `Aead` objects enforce our fixed sizes.
 * @internal
 */
import { gcm } from '@noble/ciphers/aes.js';
import { chacha20poly1305, xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { authFailed, checkLength } from '../errors.js';
import { AEAD_KEY_BYTES, AES_GCM_NONCE_BYTES, XCHACHA_NONCE_BYTES } from '../keys.js';
import type { Aead } from '../provider.js';

type CipherFactory = (
  key: Uint8Array,
  nonce: Uint8Array,
  aad?: Uint8Array,
) => { encrypt(p: Uint8Array): Uint8Array; decrypt(c: Uint8Array): Uint8Array };

export interface RawAead {
  encrypt(key: Uint8Array, nonce: Uint8Array, pt: Uint8Array, aad: Uint8Array): Uint8Array;
  decrypt(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array;
}

function raw(factory: CipherFactory): RawAead {
  return {
    encrypt: (key, nonce, pt, aad) => factory(key, nonce, aad).encrypt(pt),
    decrypt: (key, nonce, sealed, aad) => {
      try {
        return factory(key, nonce, aad).decrypt(sealed);
      } catch {
        // noble throws for a bad tag and for too-short input alike; both are
        // "authentication failed" to the caller.
        throw authFailed();
      }
    },
  };
}

export const rawAesGcm = raw(gcm as CipherFactory);
export const rawChaCha20Poly1305 = raw(chacha20poly1305 as CipherFactory);
export const rawXChaCha20Poly1305 = raw(xchacha20poly1305 as CipherFactory);

const EMPTY = new Uint8Array(0);

/** Wraps a raw AEAD with the fixed key/nonce sizes of our interface. */
export function fixedAead(r: RawAead, nonceBytes: number): Aead {
  return {
    nonceBytes,
    encrypt(key, nonce, plaintext, aad = EMPTY) {
      checkLength('key', key, AEAD_KEY_BYTES);
      checkLength('nonce', nonce, nonceBytes);
      return r.encrypt(key, nonce, plaintext, aad);
    },
    decrypt(key, nonce, sealed, aad = EMPTY) {
      checkLength('key', key, AEAD_KEY_BYTES);
      checkLength('nonce', nonce, nonceBytes);
      return r.decrypt(key, nonce, sealed, aad);
    },
  };
}

export const portableAes256Gcm = fixedAead(rawAesGcm, AES_GCM_NONCE_BYTES);
export const portableChaCha20Poly1305 = fixedAead(rawChaCha20Poly1305, AES_GCM_NONCE_BYTES);
export const portableXChaCha20Poly1305 = fixedAead(rawXChaCha20Poly1305, XCHACHA_NONCE_BYTES);
