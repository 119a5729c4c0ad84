/**
 * Reading a CRL that arrived from somewhere untrusted (a relay's `crl` frame, a file):
 * it counts only once its signature verifies against the CA the reader already holds.
 */
import { MAX_INPUT_BYTES } from './constants.js';
import { PkiError } from './errors.js';
import { normalizeSerial, toArrayBuffer, toPem, x509 } from './x509.js';

/** A CRL whose CA signature has been checked. */
export interface VerifiedCrl {
  /** Revoked serials, lowercase hex without leading zeros. */
  readonly revoked: ReadonlySet<string>;
  readonly thisUpdate: Date;
  readonly nextUpdate?: Date;
  /** The CRL as PEM ("X509 CRL"), for storing and for `createClientVerifier`. */
  readonly pem: string;
}

/**
 * Parses `crl` (PEM or DER) and checks it is signed by `caPem`.
 *
 * @throws PkiError `crl_invalid` if it is not parseable, too large or not signed by the CA.
 */
export async function verifyCrl(caPem: string, crl: string | Uint8Array): Promise<VerifiedCrl> {
  if (crl.length > MAX_INPUT_BYTES) throw new PkiError('crl_invalid', 'CRL is too large');
  let parsed: x509.X509Crl;
  try {
    parsed = new x509.X509Crl(typeof crl === 'string' ? crl : toArrayBuffer(crl));
  } catch (cause) {
    throw new PkiError('crl_invalid', 'CRL is not parseable', { cause });
  }
  let ok = false;
  try {
    ok = await parsed.verify({ publicKey: new x509.X509Certificate(caPem) });
  } catch (cause) {
    throw new PkiError('crl_invalid', 'CRL signature cannot be checked', { cause });
  }
  if (!ok) throw new PkiError('crl_invalid', 'CRL is not signed by the CA');
  return {
    revoked: new Set(parsed.entries.map((e) => normalizeSerial(e.serialNumber))),
    thisUpdate: parsed.thisUpdate,
    ...(parsed.nextUpdate ? { nextUpdate: parsed.nextUpdate } : {}),
    pem: toPem(parsed.rawData, 'X509 CRL'),
  };
}

/** Serial (normalized hex) and validity end of a certificate given as DER or PEM. */
export function certificateSerial(cert: string | Uint8Array): { serial: string; notAfter: Date } {
  let c: x509.X509Certificate;
  try {
    c = new x509.X509Certificate(typeof cert === 'string' ? cert : toArrayBuffer(cert));
  } catch (cause) {
    throw new PkiError('malformed', 'certificate is not parseable', { cause });
  }
  return { serial: normalizeSerial(c.serialNumber), notAfter: c.notAfter };
}
