/**
 * `E2ee` implemented with `@parley/protocol` (PQXDH-style handshake, Double Ratchet
 * with a post-quantum layer and header encryption). In progress: waits for the
 * protocol's session API.
 */
import type { CryptoProvider } from '@parley/crypto';
import { ClientError } from './errors.js';
import type { E2ee } from './e2ee.js';

export function createProtocolE2ee(_crypto: CryptoProvider): E2ee {
  const missing = (): never => {
    throw new ClientError('PROTOCOL', 'protocol integration pending');
  };
  return {
    generatePrekeys: missing,
    initiate: missing,
    encrypt: missing,
    decrypt: missing,
    safetyNumber: missing,
  };
}
