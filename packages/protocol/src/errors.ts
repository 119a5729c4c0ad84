/**
 * The one error type of `@parley/protocol`.
 *
 * Input and state errors are precise because they are programming or configuration
 * mistakes; anything an attacker can provoke with a forged or altered message is
 * `INVALID_MESSAGE` and says nothing more, so the error cannot serve as an oracle.
 */
export type ProtocolErrorCode =
  /** Authentication failed or the message is malformed. Carries no detail by design. */
  | 'INVALID_MESSAGE'
  /** The message was already decrypted once (its key is gone): a duplicate or a replay. */
  | 'DUPLICATE_MESSAGE'
  /** A message would need more skipped keys than `MAX_SKIP_PER_CHAIN` allows. */
  | 'TOO_MANY_SKIPPED'
  /** A signature in a prekey bundle or an initial message does not verify. */
  | 'INVALID_SIGNATURE'
  /**
   * A key in a peer's bundle is unusable (an X25519 low-order point, or an ML-KEM key
   * failing the FIPS 203 modulus check) although its signature is valid.
   */
  | 'INVALID_KEY'
  /** The peer's identity key differs from the one we trust for that address. */
  | 'UNTRUSTED_IDENTITY'
  /** An initial message names a prekey we do not hold (consumed, rotated away, unknown). */
  | 'UNKNOWN_PREKEY'
  /** The envelope or state was produced by a protocol or format version we do not speak. */
  | 'UNSUPPORTED_VERSION'
  /** The session was terminated; its keys are gone. */
  | 'SESSION_TERMINATED'
  /** Plaintext larger than `MAX_PLAINTEXT_BYTES`. */
  | 'MESSAGE_TOO_LARGE'
  /** Saved state bytes that do not parse. */
  | 'INVALID_STATE'
  /** A caller passed an out-of-range argument (names the argument). */
  | 'INVALID_ARGUMENT'
  /**
   * A group message names a sender chain we do not hold (never distributed to us, or
   * rotated out of the retained window): ask the sender to resend its distribution.
   */
  | 'UNKNOWN_SENDER_CHAIN'
  /** A membership change does not follow the state it is applied to (group, epoch, hash). */
  | 'GROUP_CHAIN_MISMATCH'
  /** A membership change is signed by someone who is not a member or lacks the admin role. */
  | 'NOT_AUTHORIZED';

/** Error thrown by every function of this package; switch on `code`, never on `message`. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The vague error for anything that failed authentication or parsing. */
export function invalidMessage(): ProtocolError {
  return new ProtocolError('INVALID_MESSAGE', 'invalid message');
}
