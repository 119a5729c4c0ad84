/**
 * The browser WebSocket as the client core sees a connection: binary messages only,
 * each one exactly one wire block, to the relay at `/ws` on the page's own origin (the
 * CSP allows no other). Socket plumbing only: no frames, no timers, no reconnecting.
 */

/** What happens on one socket. */
export interface SocketHandlers {
  onOpen(): void;
  /** One received block. */
  onBlock(block: Uint8Array): void;
  /** The socket is gone; `opened` says whether it ever opened (for "cannot reach"). */
  onClose(info: { readonly code: number; readonly reason: string; readonly opened: boolean }): void;
}

/** One connection to the relay. */
export interface BlockSocket {
  /** Sends one block; false if the socket is not open. */
  send(block: Uint8Array): boolean;
  /** Bytes queued by the browser and not yet on the wire. */
  readonly bufferedAmount: number;
  close(code?: number): void;
}

/** The relay URL for a page served by the relay itself: `wss://<host>/ws`. */
export function relayUrlFor(location: {
  readonly protocol: string;
  readonly host: string;
}): string {
  // A page on http: (a dev server) still talks to the relay over TLS.
  return `wss://${location.host}/ws`;
}

/** Opens a WebSocket to `url`. `impl` is for tests that count or fake sockets. */
export function openBlockSocket(
  url: string,
  handlers: SocketHandlers,
  impl: typeof WebSocket = WebSocket,
): BlockSocket {
  const ws = new impl(url);
  ws.binaryType = 'arraybuffer';
  let opened = false;
  let closed = false;
  ws.onopen = () => {
    opened = true;
    handlers.onOpen();
  };
  ws.onmessage = (e: MessageEvent<unknown>) => {
    // The relay sends binary blocks only; text means something is wrong on the path.
    if (!(e.data instanceof ArrayBuffer)) return ws.close(1003, 'binary only');
    handlers.onBlock(new Uint8Array(e.data));
  };
  ws.onclose = (e: CloseEvent) => {
    if (closed) return;
    closed = true;
    handlers.onClose({ code: e.code, reason: e.reason, opened });
  };
  return {
    send(block) {
      if (ws.readyState !== impl.OPEN) return false;
      ws.send(block);
      return true;
    },
    get bufferedAmount() {
      return ws.bufferedAmount;
    },
    close(code = 1000) {
      if (ws.readyState === impl.CLOSING || ws.readyState === impl.CLOSED) return;
      ws.close(code);
    },
  };
}
