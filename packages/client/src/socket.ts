/**
 * The socket interface a runtime adapter implements for the connection driver
 * (connection.ts): one byte pipe to the relay's WebSocket endpoint, nothing more. The
 * adapter owns TLS and the WebSocket library (Node: `ws` over TLS 1.3 with the device
 * certificate; a browser: `WebSocket`); the driver owns framing, authentication
 * hand-over, liveness and reconnecting.
 *
 * Contract for adapters:
 * - `open` starts connecting at once and returns the socket; the handlers are then
 *   called in this order: `opened` at most once, `message` any number of times (only
 *   after `opened`), `failed` at most once, `closed` exactly once, last, whatever
 *   happened (also when connecting failed, and after `close()`).
 * - Every WebSocket message is one binary wire block. A text message is a protocol
 *   violation: the adapter closes the socket (it need not report it).
 * - No handler is called synchronously from inside `open`, `send` or `close`.
 */
import type { ClientError } from './errors.js';

/** One connection to the relay, as returned by `SocketOpener`. */
export interface ClientSocket {
  /** Sends one binary message (one wire block). False if the socket is not open. */
  send(bytes: Uint8Array): boolean;
  /**
   * Closes the connection. `abrupt`: drop it without a closing handshake (a connection
   * presumed dead, a relay that sent garbage); otherwise close cleanly.
   */
  close(abrupt?: boolean): void;
}

/** What a socket reports to the driver (see the ordering contract above). */
export interface ClientSocketHandlers {
  /** The WebSocket is open: the driver starts authenticating. */
  opened(): void;
  /** One binary message arrived. The bytes may be a view; the driver copies what it keeps. */
  message(bytes: Uint8Array): void;
  /**
   * Why the connection failed, classified by the adapter: `AUTH_REJECTED` when the
   * relay refused our credentials (a TLS alert, HTTP 401/403), else `TRANSPORT`.
   */
  failed(error: ClientError): void;
  /** The connection is gone (after `failed`, or a clean close). Called exactly once. */
  closed(): void;
}

/** Opens one connection to the relay (the adapter knows where and with which credentials). */
export type SocketOpener = (handlers: ClientSocketHandlers) => ClientSocket;
