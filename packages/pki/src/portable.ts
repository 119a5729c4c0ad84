/**
 * `@parley/pki/portable`: the device side of certificate enrolment for runtimes without
 * Node (a browser), on the host's WebCrypto: a PKCS#10 request for the device's own
 * Ed25519 identity key (for `parley pki sign`, so the CA key stays offline), and the
 * check that a certificate is from the organisation CA and certifies a given name and
 * key. The CA itself (issuing, revoking, the CRL) stays in the Node entry.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { PkiError } from './errors.js';
import { assertValidName, isValidName } from './names.js';
import { normalizeSerial } from './serial.js';

type ProviderCrypto = Parameters<typeof x509.cryptoProvider.set>[1];
x509.cryptoProvider.set(globalThis.crypto as unknown as ProviderCrypto);

const ED25519 = { name: 'Ed25519' } as const;
const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';
/** Ed25519 seed and public key length (RFC 8032). */
const ED25519_KEY_BYTES = 32;

const b64url = (b: Uint8Array): string =>
  btoa(String.fromCharCode(...b))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');

/**
 * A PKCS#10 request (PEM) with subject `CN=<name>` for the Ed25519 key whose seed and
 * public key are given, signed with that key (proof of possession). The seed is
 * imported as a non-extractable WebCrypto key for the one signature; the caller keeps
 * (and wipes) its own copy.
 */
export async function createDeviceCsr(
  name: string,
  seed: Uint8Array,
  publicKey: Uint8Array,
): Promise<string> {
  assertValidName(name);
  if (seed.length !== ED25519_KEY_BYTES || publicKey.length !== ED25519_KEY_BYTES) {
    throw new PkiError('bad_key', 'expected a 32-byte Ed25519 seed and public key');
  }
  const subtle = globalThis.crypto.subtle;
  const jwk = { kty: 'OKP', crv: 'Ed25519', x: b64url(publicKey) };
  const privateKey = await subtle.importKey('jwk', { ...jwk, d: b64url(seed) }, ED25519, false, [
    'sign',
  ]);
  const publicCryptoKey = await subtle.importKey('jwk', jwk, ED25519, true, ['verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ CN: [name] }],
    keys: { privateKey, publicKey: publicCryptoKey },
    signingAlgorithm: ED25519,
  });
  return csr.toString('pem') + '\n';
}

/** A device certificate that passed {@link checkDeviceCertificate}. */
export interface CheckedDeviceCertificate {
  readonly name: string;
  /** Raw 32-byte Ed25519 key the certificate binds to the name. */
  readonly identityKey: Uint8Array;
  readonly serial: string;
  readonly notAfter: Date;
  /** DER of the certificate. */
  readonly der: Uint8Array;
  /** SHA-256 of the CA certificate (DER), lowercase hex, for the person to compare. */
  readonly caFingerprint: string;
}

/**
 * Checks a device certificate against the organisation CA: issued and signed by it,
 * inside its validity period (and the CA's) at `now`, a leaf with the clientAuth usage,
 * an Ed25519 key, subject exactly `CN=<valid name>`. Revocation is the relay's and the
 * CRL holders' to check. Throws `PkiError` (`malformed`, `untrusted`, `expired`,
 * `bad_usage`).
 */
export async function checkDeviceCertificate(input: {
  readonly cert: string | Uint8Array;
  readonly caPem: string;
  readonly now: Date;
}): Promise<CheckedDeviceCertificate> {
  let cert: x509.X509Certificate;
  let ca: x509.X509Certificate;
  try {
    cert =
      typeof input.cert === 'string'
        ? new x509.X509Certificate(input.cert)
        : new x509.X509Certificate(input.cert.slice().buffer);
  } catch (cause) {
    throw new PkiError('malformed', 'not a certificate', { cause });
  }
  try {
    ca = new x509.X509Certificate(input.caPem);
  } catch (cause) {
    throw new PkiError('malformed', 'the CA certificate is not parseable', { cause });
  }
  let signed = false;
  try {
    signed =
      cert.issuer === ca.subject && (await cert.verify({ publicKey: ca, signatureOnly: true }));
  } catch {
    signed = false;
  }
  if (!signed) throw new PkiError('untrusted', 'certificate is not issued by this CA');
  const t = input.now.getTime();
  for (const c of [ca, cert]) {
    if (!(c.notBefore.getTime() <= t && t <= c.notAfter.getTime())) {
      throw new PkiError('expired', 'certificate is outside its validity period');
    }
  }
  const basic = cert.getExtension(x509.BasicConstraintsExtension);
  if (basic?.ca) throw new PkiError('bad_usage', 'a CA certificate is not a client certificate');
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  if (!eku?.usages.map(String).includes(CLIENT_AUTH_OID)) {
    throw new PkiError('bad_usage', 'certificate lacks the clientAuth extended key usage');
  }
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  if (!ku || (ku.usages & x509.KeyUsageFlags.digitalSignature) === 0) {
    throw new PkiError('bad_usage', 'certificate lacks the digitalSignature key usage');
  }
  if (cert.publicKey.algorithm.name !== 'Ed25519') {
    throw new PkiError('bad_usage', 'client key must be Ed25519');
  }
  const name = /^CN=(.*)$/.exec(cert.subject.trim())?.[1];
  if (name === undefined || !isValidName(name)) {
    throw new PkiError('bad_usage', 'certificate subject must be exactly CN=<valid name>');
  }
  const subtle = globalThis.crypto.subtle;
  const key = await cert.publicKey.export(ED25519, ['verify']);
  const identityKey = new Uint8Array(await subtle.exportKey('raw', key));
  const caFingerprint = Array.from(
    new Uint8Array(await subtle.digest('SHA-256', ca.rawData)),
    (b) => b.toString(16).padStart(2, '0'),
  ).join('');
  return {
    name,
    identityKey,
    serial: normalizeSerial(cert.serialNumber),
    notAfter: cert.notAfter,
    der: new Uint8Array(cert.rawData),
    caFingerprint,
  };
}

export { PkiError, type PkiErrorCode } from './errors.js';
