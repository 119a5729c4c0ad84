/**
 * The Node transport of the client core: one WebSocket over TLS 1.3 to the relay,
 * presenting the device certificate in mtls mode; every message is one wire block.
 * It reconnects with capped exponential backoff and hands each connection to the core,
 * which authenticates; the relay then pushes the stored backlog by itself.
 *
 * Owns sockets and timers; knows nothing of sessions or storage.
 */
import { connect as tlsConnect } from 'node:tls';
import type { ConnectionOptions } from 'node:tls';
import type { ClientRequestArgs } from 'node:http';
import WebSocket from 'ws';
import { BLOCK_BYTES, FrameReader, FrameWriter, tlsFragmentForBlocks } from '@parley/wire';
import type { ClientFrame } from '@parley/wire';
import { ClientError, normaliseRelayUrl } from '../index.js';
import type { ClientTransport, ParleyClient } from '../index.js';

/** First reconnect delay: quick enough that a relay restart is barely noticed. */
export const RECONNECT_INITIAL_MS = 250;
/** Backoff cap: a relay down for long is polled every 15 s, not hammered. */
export const RECONNECT_MAX_MS = 15_000;
/** Backoff step after the relay refused our certificate: straight to RECONNECT_MAX_MS. */
const REFUSED_BACKOFF_ATTEMPT = 16;
/** TLS + WebSocket handshake bound; a relay that accepts TCP but never answers is dead to us. */
export const CONNECT_TIMEOUT_MS = 10_000;

/**
 * A connection that has delivered nothing for this long is presumed dead (half-open
 * TCP after a laptop sleeps, a NAT that forgot us) and is replaced. The relay pings an
 * idle client every 30 s (a third of its 90 s idle timeout), so 100 s is three missed pings.
 */
export const LIVENESS_TIMEOUT_MS = 100_000;
/** How often liveness and fragment-reassembly deadlines are checked. */
const WATCHDOG_INTERVAL_MS = 5_000;

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

export class NodeTransport {
  private ws: WebSocket | undefined;
  private stopped = false;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private lastError: ClientError | undefined;
  private readonly waiters = new Set<{ resolve: () => void; reject: (e: Error) => void }>();
  /** The endpoint actually dialled: a stored or given URL without a path means the relay's `/ws`. */
  readonly url: string;

  constructor(private readonly options: NodeTransportOptions) {
    this.url = normaliseRelayUrl(options.url, 'relay URL');
    options.client.on((e) => {
      if (e.type === 'ready') {
        this.attempt = 0;
        for (const w of this.waiters) w.resolve();
        this.waiters.clear();
      }
      if (e.type === 'auth-rejected') {
        this.fail(new ClientError('AUTH_REJECTED', 'the relay refused our credentials'));
      }
    });
  }

  /** The last connection error, for status lines. */
  get error(): ClientError | undefined {
    return this.lastError;
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  /** Resolves when the core is authenticated; rejects on refused credentials or after `timeoutMs`. */
  waitReady(timeoutMs: number): Promise<void> {
    if (this.options.client.isReady) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = {
        resolve: () => {
          clearTimeout(t);
          resolve();
        },
        reject: (e: Error) => {
          clearTimeout(t);
          reject(e);
        },
      };
      const t = setTimeout(() => {
        this.waiters.delete(w);
        reject(
          this.lastError ?? new ClientError('TIMEOUT', 'could not connect to the relay in time'),
        );
      }, timeoutMs);
      this.waiters.add(w);
    });
  }

  /**
   * Ends the connection for good with `err` (our certificate was revoked): no more
   * attempts, waiters rejected, `error` keeps the reason for status lines.
   */
  halt(err: ClientError): void {
    this.lastError = err;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const w of this.waiters) w.reject(err);
    this.waiters.clear();
    this.ws?.close(1000);
  }

  private fail(err: ClientError): void {
    // A halt's reason (revocation) outlives the errors of the connection it closed.
    if (this.lastError?.code === 'CERT_REVOKED') return;
    this.lastError = err;
    if (err.code === 'AUTH_REJECTED') {
      for (const w of this.waiters) w.reject(err);
      this.waiters.clear();
    }
  }

  private connect(): void {
    if (this.stopped) return;
    const o = this.options;
    // Whether TLS completed: with TLS 1.3 a relay that refuses our certificate (revoked,
    // expired, unknown) can only hang up after the handshake, before the HTTP upgrade.
    let tlsUp = false;
    const ws = new WebSocket(this.url, {
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
    this.ws = ws;
    const writer = new FrameWriter();
    const reader = new FrameReader({ direction: 'toClient', now: () => Date.now() });
    const transport: ClientTransport = {
      send: (frame: ClientFrame): boolean => {
        if (ws.readyState !== WebSocket.OPEN) return false;
        for (const block of writer.write(frame)) ws.send(block);
        return true;
      },
    };
    let lastActivity = Date.now();
    const watchdog = setInterval(() => {
      try {
        reader.checkTimeouts();
      } catch {
        return ws.terminate();
      }
      if (Date.now() - lastActivity > LIVENESS_TIMEOUT_MS) ws.terminate();
    }, WATCHDOG_INTERVAL_MS);
    watchdog.unref();
    ws.on('open', () => o.client.connectionOpened(transport));
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      lastActivity = Date.now();
      if (!isBinary) return ws.close(1003, 'binary only');
      let frame;
      try {
        frame = reader.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      } catch {
        // A malformed block from the relay: this connection is done; reconnect fresh.
        return ws.terminate();
      }
      if (frame) void o.client.handleFrame(frame);
    });
    ws.on('unexpected-response', (_req, res) => {
      this.fail(describeConnectError({ message: `Unexpected server response: ${res.statusCode}` }));
      ws.terminate();
    });
    let opened = false;
    ws.on('open', () => {
      opened = true;
    });
    ws.on('error', (err) => {
      const hungUp =
        (err as { code?: string }).code === 'ECONNRESET' || /socket hang up/.test(err.message);
      if (tlsUp && !opened && hungUp && o.certPem !== undefined) {
        // Refused certificates stay refused: retry at the slowest pace, not in a tight
        // loop (a restart of the relay mid-handshake looks the same, so not never).
        this.attempt = Math.max(this.attempt, REFUSED_BACKOFF_ATTEMPT);
        this.fail(
          new ClientError(
            'AUTH_REJECTED',
            'the relay refused our certificate (revoked, expired or not from its CA)',
            {
              cause: err,
            },
          ),
        );
      } else this.fail(describeConnectError(err));
    });
    ws.on('close', () => {
      clearInterval(watchdog);
      reader.close();
      if (this.ws === ws) this.ws = undefined;
      o.client.connectionClosed();
      this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.options.reconnect === false) {
      if (this.lastError) for (const w of this.waiters) w.reject(this.lastError);
      this.waiters.clear();
      return;
    }
    const initial = this.options.initialBackoffMs ?? RECONNECT_INITIAL_MS;
    const max = this.options.maxBackoffMs ?? RECONNECT_MAX_MS;
    const delay = Math.min(max, initial * 2 ** Math.min(this.attempt, 16));
    this.attempt++;
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /**
   * Drops the current connection abruptly and connects again after the usual backoff,
   * as after a network change (the core resumes its session with the relay's token in
   * open mode). No-op when stopped or not connected.
   */
  dropConnection(): void {
    this.ws?.terminate();
  }

  /** Closes the connection and stops reconnecting. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      ws.close(1000);
      setTimeout(() => {
        ws.terminate();
        resolve();
      }, 2000).unref();
    });
  }
}
