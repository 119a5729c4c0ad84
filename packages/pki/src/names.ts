import { NAME_MAX_BYTES } from './constants.js';
import { PkiError } from './errors.js';

/** Identity-name rule shared with the wire protocol and the certificate CN. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** True if `name` is a valid identity name (1..64 bytes, lowercase, `[a-z0-9._-]`). */
export function isValidName(name: string): boolean {
  return NAME_PATTERN.test(name) && new TextEncoder().encode(name).length <= NAME_MAX_BYTES;
}

/** Throws `bad_name` unless `name` is a valid identity name. */
export function assertValidName(name: string): void {
  if (!isValidName(name)) {
    throw new PkiError(
      'bad_name',
      `invalid name ${JSON.stringify(name.slice(0, 80))}: expected 1..64 characters of [a-z0-9._-], starting with [a-z0-9]`,
    );
  }
}
