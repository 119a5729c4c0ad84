/**
 * `@parley/pki` (Node): Parley's private certificate authority.
 *
 * The root CA (ECDSA P-256) certifies the relay's TLS key and each device's Ed25519
 * identity key (client certificate, CN = identity name), so peers can check a contact's
 * E2EE key against the CA and the relay cannot substitute keys. Revocation is a CA-signed
 * CRL (`crl.pem`). Files live under DATA/pki; private keys are written with mode 0600.
 *
 * @example
 * ```ts
 * import { initPki, issueClient, verifyClientCertificate, readPkiFiles } from '@parley/pki';
 * await initPki('/srv/parley');
 * const alice = await issueClient('/srv/parley', 'alice', '/tmp/alice');
 * const { caPem, crlPem } = await readPkiFiles('/srv/parley');
 * const v = await verifyClientCertificate({ certPem: alice.certPem, caPem, crlPem, now: new Date() });
 * // v.name === 'alice'; v.identityKey is the 32-byte Ed25519 public key
 * ```
 */
export { PkiError, type PkiErrorCode } from './errors.js';
export {
  CA_VALIDITY_DAYS,
  CLIENT_VALIDITY_DAYS,
  CRL_REFRESH_BEFORE_DAYS,
  CRL_VALIDITY_DAYS,
  NAME_MAX_BYTES,
  SERVER_RENEW_BEFORE_DAYS,
  SERVER_VALIDITY_DAYS,
} from './constants.js';
export { NAME_PATTERN, isValidName, assertValidName } from './names.js';
export { pkiPaths, type PkiPaths, type RevocationReason } from './store.js';
export { DEFAULT_CA_DIR_SUFFIX, defaultCaDir, hasLegacyCaKey, resolvePkiPaths } from './layout.js';
export type { RandomBytes } from './x509.js';
export {
  crlNextUpdate,
  crlToDer,
  initPki,
  issueClient,
  listCertificates,
  readPkiFiles,
  refreshCrl,
  renew,
  revoke,
  revokeSerial,
  signCsr,
  type CertificateInfo,
  type InitPkiOptions,
  type InitPkiResult,
  type IssueOptions,
  type IssuedCertificate,
  type IssuedClientFiles,
  type PkiContext,
  type PkiFiles,
  type RevokeOptions,
} from './ca.js';
export {
  ED25519_SEED_BYTES,
  createCsr,
  ed25519SeedFromPkcs8Pem,
  generateDeviceKeyPem,
} from './device.js';
export { certificateSerial, verifyCrl, type VerifiedCrl } from './crl.js';
export {
  createClientVerifier,
  verifyClientCertificate,
  type CertificateInput,
  type ClientVerifier,
  type VerifiedClientCertificate,
  type VerifyClientCertificateInput,
} from './verify.js';
