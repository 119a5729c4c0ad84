/**
 * What the client core asks of a certificate-revocation checker (mtls mode). The core
 * stays free of X.509: it passes the relay's `crl` frames on, asks for a fresh CRL on
 * every connection, and asks before each send whether the recipient is still
 * certified. The Node adapter implements it with `@parley/pki`
 * (`packages/client-node/src/revocation.ts`).
 */
import type { ClientFrame } from '@parley/wire';

export interface RevocationHooks {
  /** A `crl` frame arrived (answer or push). Unverified: the implementation checks it. */
  onCrl(der: Uint8Array): Promise<void>;
  /** The connection is authenticated; `send` puts a frame on it (used for `crl.fetch`). */
  connected(send: (frame: ClientFrame) => boolean): void;
  /** Throws `ClientError('PEER_REVOKED')` if `peer`'s certificate is known to be revoked. */
  assertSendable(peer: string): Promise<void>;
}
