/**
 * User names and device ids as the relay, the PKI and the wire agree on them: the
 * same rule as a certificate CN, so one string is the user's identity everywhere.
 */
import { ClientError } from './errors.js';

/** Lower-case ASCII only, so two names that look alike are the same name. */
export const USER_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** One device per name for now; the field is kept so multi-device needs no migration. */
export const DEFAULT_DEVICE_ID = 1;

/** Throws `INVALID_ARGUMENT` naming the argument unless `name` is a valid user name. */
export function checkUserName(name: string, arg = 'name'): string {
  if (!USER_NAME_PATTERN.test(name)) {
    throw new ClientError(
      'INVALID_ARGUMENT',
      `${arg}: expected 1..64 characters of [a-z0-9._-], starting with a letter or digit`,
    );
  }
  return name;
}
