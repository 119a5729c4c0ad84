/**
 * The one place that wires @peculiar/x509 to Node's WebCrypto, plus PEM and key helpers.
 * Everything certificate-shaped in this package goes through here.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { SERIAL_BYTES } from './constants.js';
import { PkiError } from './errors.js';

// `set` is overloaded (value) / (key, value); TypeScript reads the last one, so take its value
// type: the cast holds whether or not a DOM lib is in the same program (the web tests bring one).
type ProviderCrypto = Parameters<typeof x509.cryptoProvider.set>[1];
x509.cryptoProvider.set(webcrypto as unknown as ProviderCrypto);

export { x509 };
export const subtle = webcrypto.subtle;
export type Key = webcrypto.CryptoKey;
export type KeyPair = webcrypto.CryptoKeyPair;

/** Algorithm of the CA and server keys: P-256 is what every TLS stack and browser accepts. */
export const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
/** Signature algorithm used by the CA for certificates and CRLs. */
export const ECDSA_SHA256 = { name: 'ECDSA', hash: 'SHA-256' } as const;
/** Client keys are Ed25519 because they double as the device's E2EE identity key. */
export const ED25519 = { name: 'Ed25519' } as const;

/** Source of randomness, injectable so tests can be deterministic. */
export type RandomBytes = (length: number) => Uint8Array;

/** A positive, non-zero-leading serial number in lowercase hex. */
export function newSerial(random: RandomBytes): string {
  const b = random(SERIAL_BYTES);
  if (b.length !== SERIAL_BYTES) throw new RangeError('random source returned wrong length');
  // Top bit clear keeps the INTEGER positive; bit 6 set keeps the length fixed
  // (no leading zero octet that encoders would strip).
  b[0] = ((b[0] ?? 0) & 0x7f) | 0x40;
  return Buffer.from(b).toString('hex');
}

export { normalizeSerial } from './serial.js';

export function toPem(der: ArrayBuffer | Uint8Array, label: string): string {
  return x509.PemConverter.encode(der instanceof Uint8Array ? toArrayBuffer(der) : der, label);
}

export function toArrayBuffer(u: Uint8Array): ArrayBuffer {
  return u.buffer.slice(u.byteOffset, u.byteOffset + u.byteLength) as ArrayBuffer;
}

/** Decodes the first PEM block with the given label. */
export function fromPem(pem: string, label: string): ArrayBuffer {
  let blocks: ArrayBuffer[];
  try {
    blocks = x509.PemConverter.decodeWithHeaders(pem)
      .filter((b) => b.type === label)
      .map((b) => b.rawData);
  } catch (cause) {
    throw new PkiError('malformed', `not a PEM ${label}`, { cause });
  }
  const first = blocks[0];
  if (first === undefined) throw new PkiError('malformed', `no PEM ${label} block found`);
  return first;
}

export async function generateEcdsaKeyPair(): Promise<KeyPair> {
  return subtle.generateKey(ECDSA_P256, true, ['sign', 'verify']);
}

export async function generateEd25519KeyPair(): Promise<KeyPair> {
  return (await subtle.generateKey(ED25519, true, ['sign', 'verify'])) as KeyPair;
}

export async function privateKeyToPem(key: Key): Promise<string> {
  return toPem(await subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

/** Imports the CA's P-256 signing key from PKCS#8 PEM. */
export async function importEcdsaPrivateKey(pem: string): Promise<Key> {
  try {
    return await subtle.importKey('pkcs8', fromPem(pem, 'PRIVATE KEY'), ECDSA_P256, false, [
      'sign',
    ]);
  } catch (cause) {
    if (cause instanceof PkiError) throw cause;
    throw new PkiError('bad_key', 'CA key is not a P-256 PKCS#8 key', { cause });
  }
}

/** Imports an Ed25519 key pair from PKCS#8 PEM (public half derived via JWK). */
export async function importEd25519KeyPair(pem: string): Promise<KeyPair> {
  try {
    const privateKey = await subtle.importKey('pkcs8', fromPem(pem, 'PRIVATE KEY'), ED25519, true, [
      'sign',
    ]);
    const jwk = await subtle.exportKey('jwk', privateKey);
    const publicKey = await subtle.importKey(
      'jwk',
      { kty: 'OKP', crv: 'Ed25519', x: jwk.x ?? '' },
      ED25519,
      true,
      ['verify'],
    );
    return { privateKey, publicKey };
  } catch (cause) {
    if (cause instanceof PkiError) throw cause;
    throw new PkiError('bad_key', 'key is not an Ed25519 PKCS#8 key', { cause });
  }
}
