/**
 * The one error type of `@parley/crypto`.
 *
 * Input errors are precise (they name the argument and the expected length) because
 * they are programming mistakes; authentication failures are deliberately vague
 * ("authentication failed") because detail there helps an attacker, not a caller.
 */
export type CryptoErrorCode =
  /** An argument has the wrong byte length or type. */
  | 'INVALID_LENGTH'
  /** A key or ciphertext is well-sized but not acceptable (e.g. ML-KEM modulus check). */
  | 'INVALID_KEY'
  /** X25519 produced the all-zero output: the peer sent a low-order point. */
  | 'LOW_ORDER_POINT'
  /** AEAD tag did not verify. Carries no detail by design. */
  | 'AUTH_FAILED'
  /** A requested output is outside what the primitive can produce (e.g. HKDF > 255·HashLen). */
  | 'INVALID_ARGUMENT';

export class CryptoError extends Error {
  override readonly name = 'CryptoError';
  constructor(
    readonly code: CryptoErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Throws a precise length error naming the argument. */
export function checkLength(arg: string, value: Uint8Array, expected: number): void {
  if (!(value instanceof Uint8Array)) {
    throw new CryptoError('INVALID_LENGTH', `${arg}: expected Uint8Array of ${expected} bytes`);
  }
  if (value.length !== expected) {
    throw new CryptoError(
      'INVALID_LENGTH',
      `${arg}: expected ${expected} bytes, got ${value.length}`,
    );
  }
}

export function authFailed(): CryptoError {
  return new CryptoError('AUTH_FAILED', 'authentication failed');
}
