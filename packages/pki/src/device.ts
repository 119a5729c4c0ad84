/**
 * Device-side helpers: the Ed25519 identity key in PKCS#8 PEM and a CSR for it, so a
 * device can be certified without its key ever leaving it (`parley pki sign`).
 */
import { createPrivateKey } from 'node:crypto';
import { PkiError } from './errors.js';
import { assertValidName } from './names.js';
import {
  ED25519,
  generateEd25519KeyPair,
  importEd25519KeyPair,
  privateKeyToPem,
  x509,
} from './x509.js';

/** Ed25519 seed length (RFC 8032 §5.1.5). */
export const ED25519_SEED_BYTES = 32;

/** DER header of an Ed25519 PKCS#8 key as Node exports it (RFC 8410 §7, no public key). */
const PKCS8_ED25519_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);

/**
 * Returns the 32-byte Ed25519 seed inside a PKCS#8 PEM key (`NAME.key`). The seed is the
 * device's E2EE identity secret: zeroize the returned bytes after use.
 *
 * @throws PkiError `bad_key` if the PEM is not an Ed25519 private key.
 */
export function ed25519SeedFromPkcs8Pem(pem: string): Uint8Array {
  let der: Buffer;
  try {
    const key = createPrivateKey({ key: pem, format: 'pem' });
    if (key.asymmetricKeyType !== 'ed25519') throw new Error(String(key.asymmetricKeyType));
    // DER rather than JWK: a Buffer can be wiped, a base64 string cannot.
    der = key.export({ format: 'der', type: 'pkcs8' });
  } catch (cause) {
    throw new PkiError('bad_key', 'not an Ed25519 PKCS#8 private key', { cause });
  }
  try {
    // RFC 8410 §7: OneAsymmetricKey v0 with a 34-byte OCTET STRING wrapping the seed.
    if (der.length !== PKCS8_ED25519_PREFIX.length + ED25519_SEED_BYTES) {
      throw new PkiError('bad_key', 'unexpected Ed25519 PKCS#8 encoding');
    }
    for (let i = 0; i < PKCS8_ED25519_PREFIX.length; i++) {
      if (der[i] !== PKCS8_ED25519_PREFIX[i]) {
        throw new PkiError('bad_key', 'unexpected Ed25519 PKCS#8 encoding');
      }
    }
    return new Uint8Array(der.subarray(PKCS8_ED25519_PREFIX.length));
  } finally {
    der.fill(0);
  }
}

/** Generates a new Ed25519 device key as PKCS#8 PEM. */
export async function generateDeviceKeyPem(): Promise<string> {
  return privateKeyToPem((await generateEd25519KeyPair()).privateKey);
}

/** Builds a PKCS#10 CSR (PEM) with CN = name for the Ed25519 key in `keyPem`. */
export async function createCsr(name: string, keyPem: string): Promise<string> {
  assertValidName(name);
  const keys = await importEd25519KeyPair(keyPem);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ CN: [name] }],
    keys,
    signingAlgorithm: ED25519,
  });
  return csr.toString('pem') + '\n';
}
