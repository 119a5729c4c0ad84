/**
 * Checks a client certificate against the private CA outside the TLS handshake: the
 * relay uses it to bind a connection to a name and identity key, and a client uses it
 * to check a contact's key (the relay cannot substitute a key the CA did not certify).
 *
 * {@link createClientVerifier} does the asynchronous work once (CRL signature) and returns
 * a synchronous checker, so a relay can verify per connection without awaiting.
 */
import { X509Certificate as NodeCertificate } from 'node:crypto';
import { MAX_INPUT_BYTES } from './constants.js';
import { PkiError } from './errors.js';
import { isValidName } from './names.js';
import { normalizeSerial, x509 } from './x509.js';

/** What a valid client certificate attests. */
export interface VerifiedClientCertificate {
  /** The certificate CN: the identity name. */
  readonly name: string;
  /** Raw 32-byte Ed25519 public key: the device's E2EE identity key. */
  readonly identityKey: Uint8Array;
  readonly notAfter: Date;
  /** Lowercase hex. */
  readonly serial: string;
}

/** A certificate as DER bytes or PEM text. */
export type CertificateInput = { readonly certDer: Uint8Array } | { readonly certPem: string };

/** Inputs of {@link verifyClientCertificate}. */
export type VerifyClientCertificateInput = CertificateInput & {
  readonly caPem: string;
  readonly crlPem?: string;
  readonly now: Date;
};

/** Synchronous checker bound to one CA and CRL. */
export interface ClientVerifier {
  /** Returns the attested identity or throws a {@link PkiError}. */
  verify(cert: CertificateInput, now: Date): VerifiedClientCertificate;
}

const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';

function parseNodeCert(input: CertificateInput): NodeCertificate {
  const raw = 'certDer' in input ? input.certDer : input.certPem;
  if (raw.length > MAX_INPUT_BYTES) throw new PkiError('malformed', 'certificate too large');
  try {
    return new NodeCertificate(typeof raw === 'string' ? raw : Buffer.from(raw));
  } catch (cause) {
    throw new PkiError('malformed', 'not a certificate', { cause });
  }
}

/**
 * Prepares a verifier for `caPem` (and `crlPem`, whose CA signature is checked here).
 *
 * @throws PkiError `malformed` or `crl_invalid`.
 */
export async function createClientVerifier(opts: {
  readonly caPem: string;
  readonly crlPem?: string;
}): Promise<ClientVerifier> {
  let ca: NodeCertificate;
  try {
    ca = new NodeCertificate(opts.caPem);
  } catch (cause) {
    throw new PkiError('malformed', 'CA certificate is not parseable', { cause });
  }
  const caFrom = Date.parse(ca.validFrom);
  const caTo = Date.parse(ca.validTo);
  const revoked = new Set<string>();
  let crlNextUpdate: Date | undefined;
  if (opts.crlPem !== undefined) {
    let crl: x509.X509Crl;
    try {
      crl = new x509.X509Crl(opts.crlPem);
    } catch (cause) {
      throw new PkiError('crl_invalid', 'CRL is not parseable', { cause });
    }
    const caCert = new x509.X509Certificate(opts.caPem);
    let ok = false;
    try {
      ok = await crl.verify({ publicKey: caCert });
    } catch (cause) {
      throw new PkiError('crl_invalid', 'CRL signature cannot be checked', { cause });
    }
    if (!ok) throw new PkiError('crl_invalid', 'CRL is not signed by the CA');
    for (const e of crl.entries) revoked.add(normalizeSerial(e.serialNumber));
    crlNextUpdate = crl.nextUpdate;
  }

  return {
    verify(input: CertificateInput, now: Date): VerifiedClientCertificate {
      const cert = parseNodeCert(input);
      // Issuer name match and signature both: a foreign CA with the same name fails.
      if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) {
        throw new PkiError('untrusted', 'certificate is not issued by this CA');
      }
      if (crlNextUpdate !== undefined && crlNextUpdate.getTime() < now.getTime()) {
        throw new PkiError('crl_invalid', 'CRL is past its nextUpdate');
      }
      // The chain is only as good as the root: an expired root fails as in a TLS handshake.
      if (!(caFrom <= now.getTime() && now.getTime() <= caTo)) {
        throw new PkiError('expired', 'the CA certificate is outside its validity period');
      }
      const serial = normalizeSerial(cert.serialNumber);
      if (revoked.has(serial)) throw new PkiError('revoked', 'certificate is revoked');
      const from = Date.parse(cert.validFrom);
      const to = Date.parse(cert.validTo);
      if (!(from <= now.getTime() && now.getTime() <= to)) {
        throw new PkiError('expired', 'certificate is outside its validity period');
      }
      if (cert.ca) throw new PkiError('bad_usage', 'a CA certificate is not a client certificate');
      if (!(cert.keyUsage ?? []).includes(CLIENT_AUTH_OID)) {
        throw new PkiError('bad_usage', 'certificate lacks the clientAuth extended key usage');
      }
      const ku = new x509.X509Certificate(cert.raw).getExtension(x509.KeyUsagesExtension);
      if (!ku || (ku.usages & x509.KeyUsageFlags.digitalSignature) === 0) {
        throw new PkiError('bad_usage', 'certificate lacks the digitalSignature key usage');
      }
      if (cert.publicKey.asymmetricKeyType !== 'ed25519') {
        throw new PkiError('bad_usage', 'client key must be Ed25519');
      }
      const cn = /^CN=(.*)$/.exec(cert.subject.trim());
      const name = cn?.[1];
      if (name === undefined || !isValidName(name)) {
        throw new PkiError('bad_usage', 'certificate subject must be exactly CN=<valid name>');
      }
      const jwk = cert.publicKey.export({ format: 'jwk' });
      const identityKey = new Uint8Array(Buffer.from(jwk.x ?? '', 'base64url'));
      return { name, identityKey, notAfter: new Date(to), serial };
    },
  };
}

/**
 * One-shot check of a client certificate: issued by `caPem`, not on `crlPem`, inside its
 * validity at `now`, clientAuth + digitalSignature, Ed25519 key, CN a valid name.
 *
 * @throws PkiError `untrusted` | `revoked` | `expired` | `bad_usage` | `malformed` | `crl_invalid`.
 */
export async function verifyClientCertificate(
  input: VerifyClientCertificateInput,
): Promise<VerifiedClientCertificate> {
  const verifier = await createClientVerifier(
    input.crlPem === undefined
      ? { caPem: input.caPem }
      : { caPem: input.caPem, crlPem: input.crlPem },
  );
  return verifier.verify(input, input.now);
}
