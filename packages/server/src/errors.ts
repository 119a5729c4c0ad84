/**
 * The one error type of `@parley/server`. Codes are stable; messages are for operators
 * (logs, the command line) and never sent to clients, who only ever see the generic
 * wire error (M13).
 */
export type ServerErrorCode =
  /** The configuration file or an override is invalid; the message names the field. */
  | 'CONFIG_INVALID'
  /** The storage backend failed or holds inconsistent data. */
  | 'STORAGE'
  /** The audit log does not verify (tampered, reordered or truncated in the middle). */
  | 'AUDIT_TAMPERED'
  /** The relay could not start (PKI, bind, TLS material). */
  | 'STARTUP'
  /** Another relay process holds the data folder's lock. */
  | 'DATA_LOCKED'
  /** The bus between relay nodes failed or delivered a malformed message. */
  | 'BUS';

export class ServerError extends Error {
  override readonly name = 'ServerError';
  constructor(
    readonly code: ServerErrorCode,
    message: string,
  ) {
    super(message);
  }
}
