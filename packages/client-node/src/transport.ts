/**
 * The Node socket adapter of the client core: one WebSocket (`ws`) over TLS 1.3 to the
 * relay, presenting the device certificate in mtls mode; every message is one wire
 * block. Reconnecting, liveness and framing are the portable driver's
 * (`ConnectionDriver`); this file is socket plumbing and the classification of Node's
 * TLS errors.
 */
import { connect as tlsConnect } from 'node:tls';
import type { ConnectionOptions } from 'node:tls';
import type { ClientRequestArgs } from 'node:http';
import WebSocket from 'ws';
import { BLOCK_BYTES, tlsFragmentForBlocks } from '@parley/wire';
import { ClientError, ConnectionDriver, normaliseRelayUrl } from '@parley/client';
import type {
  ClientSocket,
  ClientSocketHandlers,
  ParleyClient,
  SocketOpener,
} from '@parley/client';

/** TLS + WebSocket handshake bound; a relay that accepts TCP but never answers is dead to us. */
export const CONNECT_TIMEOUT_MS = 10_000;

export interface NodeTransportOptions {
  /** wss://HOST:PORT (the relay's /ws endpoint) or the full wss://HOST:PORT/ws */
  readonly url: string;
  /** PEM of the CA that signed the relay's certificate (our organisation's CA in mtls mode). */
  readonly caPem?: string;
  /** mtls: the device certificate and its private key (PEM). */
  readonly certPem?: string;
  readonly keyPem?: string;
  readonly client: ParleyClient;
  readonly reconnect?: boolean;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

/** Classifies a connection failure for the user: refused credentials vs. plain network trouble. */
export function describeConnectError(err: unknown): ClientError {
  const e = err as { code?: unknown; message?: unknown } | null;
  const text = `${String(e?.code ?? '')} ${String(e?.message ?? '')}`;
  if (
    /CERTIFICATE_REVOKED|CERTIFICATE_EXPIRED|BAD_CERTIFICATE|CERTIFICATE_REQUIRED|UNKNOWN_CA|ACCESS_DENIED|Unexpected server response: 40[13]/i.test(
      text,
    )
  ) {
    return new ClientError('AUTH_REJECTED', `the relay refused our credentials (${text.trim()})`, {
      cause: err,
    });
  }
  if (/self[- ]signed|unable to verify|UNABLE_TO_GET_ISSUER|ERR_TLS_CERT_ALTNAME/i.test(text)) {
    return new ClientError('TRANSPORT', `cannot verify the relay's certificate (${text.trim()})`, {
      cause: err,
    });
  }
  return new ClientError('TRANSPORT', `cannot reach the relay (${text.trim()})`, { cause: err });
}

/** The socket half of `NodeTransportOptions`: where the relay is and our credentials. */
export type NodeSocketOptions = Pick<NodeTransportOptions, 'url' | 'caPem' | 'certPem' | 'keyPem'>;

/**
 * Opens `ws` sockets over TLS 1.3 to the relay (the `ClientSocket` of Node). `o.url`
 * is dialled as given: callers normalise it first (`normaliseRelayUrl`).
 */
export function nodeSocketOpener(o: NodeSocketOptions): SocketOpener {
  return (handlers: ClientSocketHandlers): ClientSocket => {
    // Whether TLS completed: with TLS 1.3 a relay that refuses our certificate (revoked,
    // expired, unknown) can only hang up after the handshake, before the HTTP upgrade.
    let tlsUp = false;
    let opened = false;
    const ws = new WebSocket(o.url, {
      createConnection: ((opts: ConnectionOptions) => {
        const socket = tlsConnect(opts);
        // One block per TLS record, so record sizes never count the blocks of a burst (M42).
        socket.setMaxSendFragment(tlsFragmentForBlocks(BLOCK_BYTES, true));
        socket.once('secureConnect', () => {
          tlsUp = true;
        });
        return socket;
      }) as unknown as ClientRequestArgs['createConnection'],
      ...(o.caPem !== undefined ? { ca: o.caPem } : {}),
      ...(o.certPem !== undefined ? { cert: o.certPem } : {}),
      ...(o.keyPem !== undefined ? { key: o.keyPem } : {}),
      minVersion: 'TLSv1.3',
      handshakeTimeout: CONNECT_TIMEOUT_MS,
      perMessageDeflate: false,
      maxPayload: 65536,
    });
    ws.binaryType = 'nodebuffer';
    ws.on('open', () => {
      opened = true;
      handlers.opened();
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) return ws.close(1003, 'binary only');
      handlers.message(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    });
    ws.on('unexpected-response', (_req, res) => {
      handlers.failed(
        describeConnectError({ message: `Unexpected server response: ${res.statusCode}` }),
      );
      ws.terminate();
    });
    ws.on('error', (err) => {
      const hungUp =
        (err as { code?: string }).code === 'ECONNRESET' || /socket hang up/.test(err.message);
      if (tlsUp && !opened && hungUp && o.certPem !== undefined) {
        handlers.failed(
          new ClientError(
            'AUTH_REJECTED',
            'the relay refused our certificate (revoked, expired or not from its CA)',
            { cause: err },
          ),
        );
      } else handlers.failed(describeConnectError(err));
    });
    ws.on('close', () => handlers.closed());
    return {
      send(bytes: Uint8Array): boolean {
        if (ws.readyState !== WebSocket.OPEN) return false;
        ws.send(bytes);
        return true;
      },
      close(abrupt?: boolean): void {
        if (ws.readyState === WebSocket.CLOSED) return;
        if (abrupt) ws.terminate();
        else ws.close(1000);
      },
    };
  };
}

/** The portable driver over Node sockets: what the CLI and tests connect with. */
export class NodeTransport extends ConnectionDriver {
  /** The endpoint actually dialled: a stored or given URL without a path means the relay's `/ws`. */
  readonly url: string;

  constructor(options: NodeTransportOptions) {
    const url = normaliseRelayUrl(options.url, 'relay URL');
    super({
      client: options.client,
      open: nodeSocketOpener({ ...options, url }),
      ...(options.reconnect !== undefined ? { reconnect: options.reconnect } : {}),
      ...(options.initialBackoffMs !== undefined
        ? { initialBackoffMs: options.initialBackoffMs }
        : {}),
      ...(options.maxBackoffMs !== undefined ? { maxBackoffMs: options.maxBackoffMs } : {}),
    });
    this.url = url;
  }
}
