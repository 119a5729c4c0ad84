/**
 * `@parley/crypto/node`: the Node provider. node:crypto (OpenSSL) for everything Node 20
 * has (SHA-2, HMAC, HKDF, Ed25519, X25519, AES-256-GCM, ChaCha20-Poly1305), and the
 * portable modules for what it lacks (ML-KEM-768 from liboqs in WebAssembly, with
 * @noble for seeded use; XChaCha20-Poly1305 from @noble).
 *
 * Same interface and the same verdict on every input as `createPortableCrypto()`; the
 * known-answer and cross-check tests run both. Key generation draws its seed from the
 * provider's random source and derives the pair from it, so a seeded Node provider
 * produces the same keys as a seeded portable one.
 *
 * @example
 * ```ts
 * import { createNodeCrypto } from '@parley/crypto/node';
 * const c = createNodeCrypto();
 * const id = c.ed25519.generateKeyPair();
 * const sig = c.ed25519.sign(id.secretKey, new TextEncoder().encode('hello'));
 * c.ed25519.verify(id.publicKey, new TextEncoder().encode('hello'), sig); // true
 * ```
 */
import {
  createHash,
  createHmac,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomFillSync,
  sign as nodeSign,
  verify as nodeVerify,
  type KeyObject,
} from 'node:crypto';
import { CryptoError, checkLength } from '../errors.js';
import {
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SECRET_KEY_BYTES,
  ED25519_SIGNATURE_BYTES,
  X25519_KEY_BYTES,
  type Ed25519KeyPair,
  type Ed25519PublicKey,
  type Ed25519SecretKey,
  type Ed25519Signature,
  type SharedSecret,
  type X25519KeyPair,
  type X25519PublicKey,
  type X25519SecretKey,
} from '../keys.js';
import { portableXChaCha20Poly1305 } from '../portable/aead.js';
import { checkHkdfLength, isAllZero } from '../portable/index.js';
import { createMlKem768 } from '../portable/mlkem.js';
import type { CryptoProvider, ProviderOptions } from '../provider.js';
import { pooledRandom } from '../random-pool.js';
import { nodeAes256Gcm, nodeChaCha20Poly1305 } from './aead.js';
import { keyObject, rawSecretOf, rememberKeyObject } from './keycache.js';

export type { CryptoProvider, ProviderOptions } from '../provider.js';

/** OpenSSL's CSPRNG into plain Uint8Arrays (never a shared Buffer slab), small draws pooled. */
const nodeRandomBytes = pooledRandom((buffer) => randomFillSync(buffer));

/**
 * A plain, unshared Uint8Array copy of an OpenSSL output buffer; the Buffer itself is
 * wiped, since digests, MACs and DH outputs are often key material (M34).
 */
function plain(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(b);
  b.fill(0);
  return out;
}

/**
 * The raw 32-byte public key of an OKP key object. Exported as JWK (RFC 8037 `x`),
 * which costs ~7 µs where SPKI DER export costs ~60-100 µs; only the public half is
 * exported, so no secret ever becomes a string.
 */
function rawPublicKey(key: KeyObject): Uint8Array {
  const pub = key.type === 'public' ? key : createPublicKey(key);
  const { x } = pub.export({ format: 'jwk' });
  if (typeof x !== 'string') throw new CryptoError('INVALID_KEY', 'publicKey: export failed');
  return new Uint8Array(Buffer.from(x, 'base64url'));
}

function lowOrder(): CryptoError {
  return new CryptoError('LOW_ORDER_POINT', 'publicKey: low-order X25519 point');
}

/**
 * A key pair generated inside OpenSSL, with its secret exported once and the parsed
 * key object put in the cache. Importing a 32-byte seed costs ~300-600 µs (PKCS#8
 * through the OpenSSL 3 decoder); generating natively and exporting costs ~70-120 µs,
 * and the Double Ratchet makes one X25519 pair per turn of the conversation.
 */
function nativeKeyPair(curve: 'ed25519' | 'x25519') {
  const kind = curve === 'ed25519' ? 'ed25519-secret' : 'x25519-secret';
  const pair = generateKeyPairSync(curve as 'ed25519');
  const secretKey = rawSecretOf(kind, pair.privateKey);
  if (!secretKey) return undefined;
  rememberKeyObject(kind, secretKey, pair.privateKey);
  return { publicKey: rawPublicKey(pair.publicKey), secretKey };
}

/**
 * Creates the Node provider.
 * @param options.random - random source for every draw, including key generation and
 *   ML-KEM encapsulation; defaults to OpenSSL's CSPRNG. Without it, Ed25519 and X25519
 *   key pairs are generated inside OpenSSL and ML-KEM keys and encapsulations inside
 *   liboqs (same CSPRNG, much faster); with it, they are derived from draws of this
 *   source, so a seeded provider is deterministic.
 */
export function createNodeCrypto(options: ProviderOptions = {}): CryptoProvider {
  const random = options.random ?? nodeRandomBytes;
  const native = options.random === undefined;

  const edFromSecret = (secretKey: Ed25519SecretKey): Ed25519KeyPair => {
    checkLength('secretKey', secretKey, ED25519_SECRET_KEY_BYTES);
    const publicKey = rawPublicKey(keyObject('ed25519-secret', secretKey)) as Ed25519PublicKey;
    return { publicKey, secretKey };
  };
  const xFromSecret = (secretKey: X25519SecretKey): X25519KeyPair => {
    checkLength('secretKey', secretKey, X25519_KEY_BYTES);
    const publicKey = rawPublicKey(keyObject('x25519-secret', secretKey)) as X25519PublicKey;
    return { publicKey, secretKey };
  };

  return {
    name: 'node',
    randomBytes: random,
    sha256: (data) => plain(createHash('sha256').update(data).digest()),
    sha512: (data) => plain(createHash('sha512').update(data).digest()),
    hmacSha256: (key, data) => plain(createHmac('sha256', key).update(data).digest()),
    hkdfSha256(ikm, salt, info, length) {
      checkHkdfLength(length);
      return new Uint8Array(hkdfSync('sha256', ikm, salt, info, length));
    },
    ed25519: {
      generateKeyPair() {
        const pair = native ? nativeKeyPair('ed25519') : undefined;
        if (!pair) return edFromSecret(random(ED25519_SECRET_KEY_BYTES) as Ed25519SecretKey);
        return {
          publicKey: pair.publicKey as Ed25519PublicKey,
          secretKey: pair.secretKey as Ed25519SecretKey,
        };
      },
      keyPairFromSecret: edFromSecret,
      sign(secretKey, message) {
        checkLength('secretKey', secretKey, ED25519_SECRET_KEY_BYTES);
        return plain(
          nodeSign(null, message, keyObject('ed25519-secret', secretKey)),
        ) as Ed25519Signature;
      },
      verify(publicKey, message, signature) {
        checkLength('publicKey', publicKey, ED25519_PUBLIC_KEY_BYTES);
        checkLength('signature', signature, ED25519_SIGNATURE_BYTES);
        try {
          // OpenSSL verifies RFC 8032 strictly (S < L, canonical encodings, cofactorless).
          return nodeVerify(null, message, keyObject('ed25519-public', publicKey), signature);
        } catch {
          return false;
        }
      },
    },
    x25519: {
      generateKeyPair() {
        const pair = native ? nativeKeyPair('x25519') : undefined;
        if (!pair) return xFromSecret(random(X25519_KEY_BYTES) as X25519SecretKey);
        return {
          publicKey: pair.publicKey as X25519PublicKey,
          secretKey: pair.secretKey as X25519SecretKey,
        };
      },
      keyPairFromSecret: xFromSecret,
      dh(secretKey, publicKey) {
        checkLength('secretKey', secretKey, X25519_KEY_BYTES);
        checkLength('publicKey', publicKey, X25519_KEY_BYTES);
        let shared: Uint8Array;
        try {
          shared = diffieHellman({
            privateKey: keyObject('x25519-secret', secretKey),
            publicKey: keyObject('x25519-public', publicKey),
          });
        } catch {
          // OpenSSL refuses to derive an all-zero secret (RFC 7748 §6.1); nothing else
          // can fail for well-sized keys, since every 32-byte string is a u-coordinate.
          throw lowOrder();
        }
        const out = plain(shared);
        if (isAllZero(out)) throw lowOrder();
        return out as SharedSecret;
      },
    },
    mlkem768: createMlKem768(random, native),
    aes256gcm: nodeAes256Gcm,
    chacha20poly1305: nodeChaCha20Poly1305,
    xchacha20poly1305: portableXChaCha20Poly1305,
  };
}
