/**
 * The relay's open-mode session token, held so that a reconnect can `resume` instead
 * of signing a new challenge (M6). It is a bearer secret for the rest of the signed
 * session: kept in memory only (never written to the profile, so a stolen profile or
 * backup holds none), single use (dropped as soon as it is sent), wiped on disposal,
 * and never printed.
 */
import { zeroize } from '@parley/crypto';

/**
 * A token this close to its expiry is not spent: it could expire on its way, and a
 * resumed session would at once be asked to sign anyway. Checked against the relay's
 * clock (the challenge timestamp), so client clock skew does not matter.
 */
export const RESUME_MARGIN_MS = 5_000;

/** One single-use session token and the end of the signed session it belongs to. */
export class ResumeTicket {
  readonly #token: Uint8Array;
  /** End of the signed session, ms since the epoch on the relay's clock. */
  readonly expiresAt: number;

  /** Copies `token`, so the caller may wipe its own buffer. */
  constructor(token: Uint8Array, expiresAt: number) {
    this.#token = token.slice();
    this.expiresAt = expiresAt;
  }

  /** The token bytes (for the `resume` frame only). */
  get token(): Uint8Array {
    return this.#token;
  }

  /** Whether the token is worth spending when the relay's clock reads `relayNow`. */
  usableAt(relayNow: number): boolean {
    return this.#token.length > 0 && relayNow + RESUME_MARGIN_MS < this.expiresAt;
  }

  /** Wipes the token. */
  dispose(): void {
    zeroize(this.#token);
  }

  /** Never the token itself. */
  toString(): string {
    return `ResumeTicket(expiresAt ${this.expiresAt})`;
  }
  toJSON(): object {
    return { expiresAt: this.expiresAt };
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}
