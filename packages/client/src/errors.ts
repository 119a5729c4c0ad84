/**
 * The one error type of `@parley/client`. Codes are stable: the CLI maps them to exit
 * messages and tests match on them. Messages never contain key material or plaintext.
 */
export type ClientErrorCode =
  /** The passphrase does not open this profile. Nothing was read or written. */
  | 'WRONG_PASSPHRASE'
  /** The profile's header or database is damaged; nothing was modified. */
  | 'PROFILE_CORRUPT'
  /** `init` was asked to create a profile where one already exists. */
  | 'PROFILE_EXISTS'
  /** No profile at the given location. */
  | 'PROFILE_NOT_FOUND'
  /** A store write was rejected (the whole batch was rolled back). */
  | 'STORE'
  /** An argument is malformed (a name, a key length, an option). */
  | 'INVALID_ARGUMENT'
  /** The named contact, message or record does not exist. */
  | 'NOT_FOUND'
  /** The connection to the relay failed or closed. */
  | 'TRANSPORT'
  /** The relay refused our credentials (revoked, expired or unknown certificate). */
  | 'AUTH_REJECTED'
  /** Our own certificate is on the organisation CA's revocation list (verified CRL). */
  | 'CERT_REVOKED'
  /** The recipient's certificate is on the organisation CA's revocation list. */
  | 'PEER_REVOKED'
  /** A peer's identity key could not be trusted (mtls: no valid certificate from our CA). */
  | 'UNTRUSTED_KEY'
  /**
   * Open mode: the contact's identity key changed and the user has not accepted the new
   * one (`markVerified`); messages to it wait unencrypted until they do.
   */
  | 'KEY_CHANGED'
  /** The relay answered with an error frame. */
  | 'RELAY_ERROR'
  /** An operation did not finish within its bound. */
  | 'TIMEOUT'
  /** A group change this member may not make (only an admin adds, removes or renames). */
  | 'NOT_AUTHORIZED'
  /** A message could not be decrypted or was malformed; the session was not changed. */
  | 'PROTOCOL'
  /** A message already received (a replay, or a redelivery under a new id); dropped. */
  | 'DUPLICATE'
  /** An ordinary (non-initial) message arrived from a peer we hold no session with. */
  | 'NO_SESSION'
  /** An initial message names a prekey we do not hold (used, rotated away, not ours). */
  | 'UNKNOWN_PREKEY'
  /** The peer still could not decrypt a message after the repairs we allow; not re-sent. */
  | 'UNDELIVERABLE'
  /** The client was closed. */
  | 'CLOSED'
  /** An attachment failed its integrity check (tampered or corrupted); nothing was saved. */
  | 'INTEGRITY';

export class ClientError extends Error {
  override readonly name = 'ClientError';
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
