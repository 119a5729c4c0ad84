/**
 * The browser WebSocket as the client core's connection driver sees a socket: binary
 * messages only, each one exactly one wire block, to the relay at `/ws` on the page's
 * own origin (the CSP allows no other). Socket plumbing only: no frames, no timers, no
 * reconnecting.
 *
 * The handler contract is the core's socket contract: `opened` at most once, `message`
 * only after it, `failed` at most once, `closed` exactly once and last (also when
 * connecting failed, and after `close()`); no handler runs synchronously inside `open`,
 * `send` or `close` (browser WebSocket events are always dispatched later).
 */
import { ClientError } from '@parley/client';
import type { ClientSocket, ClientSocketHandlers, SocketOpener } from '@parley/client';

/** The core's socket contract (`@parley/client`), implemented here for the browser. */
export type BlockSocketHandlers = ClientSocketHandlers;
export type BlockSocket = ClientSocket;
export type BlockSocketOpener = SocketOpener;

/** Browsers may only send 1000 or 3000..4999; 4000 marks "given up on by the client". */
const ABRUPT_CLOSE_CODE = 4000;

/** The relay URL for a page served by the relay itself: `wss://<host>/ws`. */
export function relayUrlFor(location: { readonly host: string }): string {
  // Even a page on http: (a dev server) talks to the relay over TLS only.
  return `wss://${location.host}/ws`;
}

/** An opener for `url`. `impl` is for tests that count or fake sockets. */
export function browserSocketOpener(
  url: string,
  impl: typeof WebSocket = WebSocket,
): BlockSocketOpener {
  return (handlers) => {
    const ws = new impl(url);
    ws.binaryType = 'arraybuffer';
    let opened = false;
    let failed = false;
    const fail = (why: string): void => {
      if (failed) return;
      failed = true;
      handlers.failed(new ClientError('TRANSPORT', why));
    };
    ws.onopen = () => {
      opened = true;
      handlers.opened();
    };
    ws.onmessage = (e: MessageEvent<unknown>) => {
      // The relay sends binary blocks only; text means something is wrong on the path.
      if (!(e.data instanceof ArrayBuffer)) return ws.close(1003, 'binary only');
      handlers.message(new Uint8Array(e.data));
    };
    ws.onerror = () => fail(opened ? 'connection to the relay failed' : 'cannot reach the relay');
    ws.onclose = (e: CloseEvent) => {
      if (!opened) fail('cannot reach the relay');
      else if (e.code !== 1000 && e.code !== 1001) fail(`connection lost (${e.code})`);
      handlers.closed();
    };
    return {
      send(block) {
        if (ws.readyState !== impl.OPEN) return false;
        ws.send(block);
        return true;
      },
      close(abrupt = false) {
        if (ws.readyState === impl.CLOSING || ws.readyState === impl.CLOSED) return;
        ws.close(abrupt ? ABRUPT_CLOSE_CODE : 1000);
      },
    };
  };
}
