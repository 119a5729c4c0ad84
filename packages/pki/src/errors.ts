/**
 * The one error class of `@parley/pki`. Callers branch on `code`, never on the message.
 */

/** Stable error codes. Certificate-check codes are the ones a relay may audit. */
export type PkiErrorCode =
  /** DIR/pki has no CA yet (run `parley pki init`). */
  | 'not_initialized'
  /** A name does not match the identity-name rule. */
  | 'bad_name'
  /** A CSR is malformed, not self-signed correctly, or not for an Ed25519 key. */
  | 'bad_csr'
  /** A key file is not an Ed25519 PKCS#8 key. */
  | 'bad_key'
  /** No live certificate exists for the name. */
  | 'not_found'
  /** Input is not a parseable certificate or CRL. */
  | 'malformed'
  /** The certificate was not issued by the given CA. */
  | 'untrusted'
  /** The certificate's serial is on the CA's revocation list. */
  | 'revoked'
  /** The certificate is outside its validity period. */
  | 'expired'
  /** Wrong key usage, extended key usage, key type, or it is a CA certificate. */
  | 'bad_usage'
  /** The CRL is not signed by the CA, or is past its nextUpdate. */
  | 'crl_invalid'
  /** Another writer held the CA lock for too long. */
  | 'locked'
  /**
   * An output file already exists and would be overwritten (a device key is
   * irreplaceable), or the name already has a valid certificate.
   */
  | 'exists'
  /** The operation needs the CA private key, which is not here (kept offline). */
  | 'ca_offline';

/** Error thrown by every function of `@parley/pki`. */
export class PkiError extends Error {
  override readonly name = 'PkiError';
  constructor(
    readonly code: PkiErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
