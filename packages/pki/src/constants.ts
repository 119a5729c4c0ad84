/** Limits and lifetimes of the private CA, each with the reason for its value. */

/** The root lives long because replacing it means re-enrolling every device by hand. */
export const CA_VALIDITY_DAYS = 3650;

/** The relay's TLS certificate is reissued on upgrade; two years keeps renewals rare. */
export const SERVER_VALIDITY_DAYS = 825;

/** `initPki` renews the relay certificate when fewer days than this remain. */
export const SERVER_RENEW_BEFORE_DAYS = 30;

/**
 * A device certificate is the device's E2EE identity attestation; a year forces an
 * occasional re-issue without making people re-enroll often.
 */
export const CLIENT_VALIDITY_DAYS = 365;

/**
 * How long a freshly signed CRL stays valid. OpenSSL rejects every client certificate
 * once the CRL is past nextUpdate, so the relay re-signs it (`refreshCrl`) well before;
 * 30 days leaves a long margin if the relay is down for a while.
 */
export const CRL_VALIDITY_DAYS = 30;

/** `refreshCrl` re-signs when less than this much of the CRL's life remains. */
export const CRL_REFRESH_BEFORE_DAYS = 7;

/**
 * Certificates are backdated by this much so that a peer whose clock is slightly
 * behind does not see a brand-new certificate as "not yet valid".
 */
export const CLOCK_SKEW_BACKDATE_MS = 5 * 60_000;

/** Serial numbers: 16 random bytes (RFC 5280 §4.1.2.2 allows up to 20 octets). */
export const SERIAL_BYTES = 16;

/** Identity names: 1..64 bytes, same rule as the wire protocol's user ids. */
export const NAME_MAX_BYTES = 64;

/** Upper bound on a PEM/DER input we parse, so a hostile file cannot exhaust memory. */
export const MAX_INPUT_BYTES = 64 * 1024;

/** A CA operation takes well under a second; waiting longer means something is stuck. */
export const CA_LOCK_TIMEOUT_MS = 10_000;

/** A lock this old was left by a crashed writer (no operation runs this long). */
export const CA_LOCK_STALE_MS = 30_000;

/** Retry interval while another writer holds the lock. */
export const CA_LOCK_POLL_MS = 10;

const DAY_MS = 86_400_000;

/** Days to milliseconds. */
export function daysMs(days: number): number {
  return days * DAY_MS;
}
