/**
 * node:crypto (OpenSSL) AEADs behind our `Aead` shape: AES-GCM and ChaCha20-Poly1305.
 * Node 20 has no XChaCha20-Poly1305, so the node provider reuses the portable one.
 *
 * The generic `*Raw` functions accept any key and nonce size OpenSSL accepts, so the
 * known-answer tests can run Wycheproof's AES-128/192 and odd-IV cases; whatever
 * OpenSSL refuses (for example a 257-byte GCM IV, or a zero-length one) throws.
 * @internal
 */
import { createCipheriv, createDecipheriv, type CipherGCMTypes } from 'node:crypto';
import { authFailed, CryptoError } from '../errors.js';
import { AEAD_TAG_BYTES, AES_GCM_NONCE_BYTES } from '../keys.js';
import { fixedAead, type RawAead } from '../portable/aead.js';

type NodeAeadName = CipherGCMTypes | 'chacha20-poly1305';

/** AES key sizes in bytes that OpenSSL has GCM ciphers for. */
const AES_GCM_BY_KEY_BYTES: Readonly<Record<number, CipherGCMTypes>> = {
  16: 'aes-128-gcm',
  24: 'aes-192-gcm',
  32: 'aes-256-gcm',
};

function aesName(key: Uint8Array): NodeAeadName {
  const name = AES_GCM_BY_KEY_BYTES[key.length];
  if (!name) {
    throw new CryptoError('INVALID_LENGTH', `key: expected 16, 24 or 32 bytes, got ${key.length}`);
  }
  return name;
}

function raw(cipherName: (key: Uint8Array) => NodeAeadName): RawAead {
  return {
    encrypt(key, nonce, pt, aad) {
      const c = createCipheriv(cipherName(key) as 'aes-256-gcm', key, nonce, {
        authTagLength: AEAD_TAG_BYTES,
      });
      c.setAAD(aad);
      const body = c.update(pt);
      const last = c.final();
      const tag = c.getAuthTag();
      const out = new Uint8Array(body.length + last.length + tag.length);
      out.set(body, 0);
      out.set(last, body.length);
      out.set(tag, body.length + last.length);
      return out;
    },
    decrypt(key, nonce, sealed, aad) {
      // Argument errors (key/nonce size OpenSSL refuses) surface from here, before
      // anything depends on the ciphertext.
      const d = createDecipheriv(cipherName(key) as 'aes-256-gcm', key, nonce, {
        authTagLength: AEAD_TAG_BYTES,
      });
      if (sealed.length < AEAD_TAG_BYTES) throw authFailed();
      const split = sealed.length - AEAD_TAG_BYTES;
      // OpenSSL hands out plaintext before it checks the tag; that unauthenticated
      // copy is wiped on every path and only a checked copy leaves this function.
      let body: Uint8Array | undefined;
      try {
        d.setAuthTag(sealed.subarray(split));
        d.setAAD(aad);
        body = d.update(sealed.subarray(0, split));
        const last = d.final(); // throws on a tag mismatch
        const out = new Uint8Array(body.length + last.length);
        out.set(body, 0);
        out.set(last, body.length);
        return out;
      } catch {
        throw authFailed();
      } finally {
        body?.fill(0);
      }
    },
  };
}

/** AES-GCM with a 16-, 24- or 32-byte key and any IV length OpenSSL accepts. */
export const nodeRawAesGcm = raw(aesName);
/** ChaCha20-Poly1305 (RFC 8439); OpenSSL accepts only a 12-byte nonce. */
export const nodeRawChaCha20Poly1305 = raw(() => 'chacha20-poly1305');

export const nodeAes256Gcm = fixedAead(nodeRawAesGcm, AES_GCM_NONCE_BYTES);
export const nodeChaCha20Poly1305 = fixedAead(nodeRawChaCha20Poly1305, AES_GCM_NONCE_BYTES);
