/**
 * The default profile gate: this browser's profile. The platform's IndexedDB profile,
 * socket and lock (src/platform) plug in here; until they are in this build, opening
 * a profile fails with a clear error instead of pretending.
 */
import { ClientError } from '@parley/client';
import type { ProfileGate } from './session.js';

export function browserGate(): ProfileGate {
  const missing = (): Promise<never> =>
    Promise.reject(new ClientError('STORE', 'this build has no browser profile storage yet'));
  return {
    exists: () => Promise.resolve(false),
    create: missing,
    unlock: missing,
  };
}
