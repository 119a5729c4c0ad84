/**
 * Where the relay listens for WebSocket connections: one path on its TLS port, shared
 * by the relay (which answers 404 elsewhere) and every client (which appends it to a
 * bare `wss://HOST:PORT`).
 */

/** The HTTP path of the relay's WebSocket endpoint. */
export const WS_PATH = '/ws';
