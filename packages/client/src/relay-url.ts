/**
 * The relay's address as users type it and as every client stores it. The relay serves
 * its WebSocket endpoint at one path (`WS_PATH`); a URL without a path means that path,
 * so `wss://HOST:PORT` (the form people copy from the command contract) works, while a
 * URL naming another path is refused up front with the expected form instead of failing
 * later as an unexplained closed connection.
 *
 * Portable (no Node or DOM types, so no `URL`): the CLI and the web client share it.
 */
import { WS_PATH } from '@parley/wire';
import { ClientError } from './errors.js';

/** scheme, authority, then the rest (path, query, fragment). */
const URL_SHAPE = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)(.*)$/i;
/** A DNS name or IPv4 address, or an IPv6 address in brackets; an optional port. */
const AUTHORITY = /^(\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::(\d{1,5}))?$/i;

/**
 * Returns the canonical relay URL (`wss://host[:port]/ws`) for `input`, or throws
 * `ClientError('INVALID_ARGUMENT')` naming `option` and what was expected.
 */
export function normaliseRelayUrl(input: string, option = '--server'): string {
  const shape = URL_SHAPE.exec(input.trim());
  if (!shape) {
    throw new ClientError(
      'INVALID_ARGUMENT',
      `${option}: not a URL: ${input} (expected wss://HOST:PORT)`,
    );
  }
  const [, scheme = '', authority = '', rest = ''] = shape;
  if (scheme.toLowerCase() !== 'wss') {
    throw new ClientError(
      'INVALID_ARGUMENT',
      `${option}: expected wss://HOST:PORT (TLS WebSocket), not ${scheme}://`,
    );
  }
  if (authority.includes('@')) {
    throw new ClientError('INVALID_ARGUMENT', `${option}: a relay URL carries no user or password`);
  }
  const hostPort = AUTHORITY.exec(authority);
  const port = hostPort?.[2];
  if (!hostPort || (port !== undefined && (Number(port) < 1 || Number(port) > 65535))) {
    throw new ClientError(
      'INVALID_ARGUMENT',
      `${option}: not a host and port: ${authority} (expected wss://HOST:PORT)`,
    );
  }
  if (/[?#]/.test(rest)) {
    throw new ClientError('INVALID_ARGUMENT', `${option}: a relay URL has no query or fragment`);
  }
  const host = `${(hostPort[1] ?? '').toLowerCase()}${port !== undefined ? `:${Number(port)}` : ''}`;
  const path = rest.replace(/\/+$/, '');
  if (path !== '' && path !== WS_PATH) {
    throw new ClientError(
      'INVALID_ARGUMENT',
      `${option}: the relay's endpoint is ${WS_PATH} (wss://${host}${WS_PATH}, or just wss://${host}), not ${rest}`,
    );
  }
  return `wss://${host}${WS_PATH}`;
}
