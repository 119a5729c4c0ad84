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

/**
 * Returns the 32-byte Ed25519 seed inside a PKCS#8 PEM key (`NAME.key`). The seed is the
 * device's E2EE identity secret: zeroize the returned bytes after use.
 *
 * @throws PkiError `bad_key` if the PEM is not an Ed25519 private key.
 */
export function ed25519SeedFromPkcs8Pem(pem: string): Uint8Array {
  let jwk: { d?: string };
  try {
    const key = createPrivateKey({ key: pem, format: 'pem' });
    if (key.asymmetricKeyType !== 'ed25519') throw new Error(String(key.asymmetricKeyType));
    jwk = key.export({ format: 'jwk' });
  } catch (cause) {
    throw new PkiError('bad_key', 'not an Ed25519 PKCS#8 private key', { cause });
  }
  const seed = new Uint8Array(Buffer.from(jwk.d ?? '', 'base64url'));
  if (seed.length !== ED25519_SEED_BYTES)
    throw new PkiError('bad_key', 'Ed25519 seed must be 32 bytes');
  return seed;
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
