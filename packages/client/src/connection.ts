/**
 * The portable connection driver: keeps one connection to the relay over a
 * `ClientSocket` (socket.ts), whatever the runtime. It owns reconnecting with capped
 * exponential backoff, liveness (a connection silent for too long is replaced), and the
 * glue between sockets and the core: blocks in -> frames for `handleFrame`, frames out
 * -> blocks, connection open/close -> `connectionOpened`/`connectionClosed`.
 *
 * Owns: the current socket, the backoff counter, the last connection error, the
 * callers waiting for "ready", and the link state a UI shows as its connection banner. Knows nothing of sessions, storage, TLS or WebSocket
 * libraries; time comes from the clock and timers it is given.
 */
import { FrameReader, FrameWriter } from '@parley/wire';
import type { ClientFrame, ServerFrame } from '@parley/wire';
import { ClientError } from './errors.js';
import type { ClientSocket, SocketOpener } from './socket.js';
import { systemClock, systemTimers } from './timers.js';
import type { Clock, TimerHandle, Timers } from './timers.js';

/** First reconnect delay: quick enough that a relay restart is barely noticed. */
export const RECONNECT_INITIAL_MS = 250;
/** Backoff cap: a relay down for long is polled every 15 s, not hammered. */
export const RECONNECT_MAX_MS = 15_000;
/**
 * A connection that has delivered nothing for this long is presumed dead (half-open
 * TCP after a laptop sleeps, a NAT that forgot us) and is replaced. The relay pings an
 * idle client every 30 s (a third of its 90 s idle timeout), so 100 s is three missed pings.
 */
export const LIVENESS_TIMEOUT_MS = 100_000;
/** How often liveness and fragment-reassembly deadlines are checked. */
export const WATCHDOG_INTERVAL_MS = 5_000;
/** Backoff step after the relay refused our credentials: straight to the cap. */
const REFUSED_BACKOFF_ATTEMPT = 16;
/** A clean close that the other side does not complete in this long is made abrupt. */
const CLOSE_GRACE_MS = 2_000;

/** The link as a connection banner shows it; `onState` reports every change. */
export type ConnectionState =
  | { readonly kind: 'connecting' }
  | { readonly kind: 'online' }
  /** Lost or never reached; the next attempt is `retryInMs` away. */
  | { readonly kind: 'offline'; readonly retryInMs: number; readonly reason: string }
  /** The relay refused our credentials (with `stopWhenRefused`) or the driver was halted. */
  | { readonly kind: 'refused'; readonly reason: string }
  | { readonly kind: 'stopped' };

/** The transport handed to the core for one connection. */
export interface ClientTransport {
  /** Queues one frame for the relay; returns false if there is no connection now. */
  send(frame: ClientFrame): boolean;
}

/** The part of the client core the driver talks to (`ParleyClient` implements it). */
export interface DrivenClient {
  readonly isReady: boolean;
  connectionOpened(transport: ClientTransport): void;
  connectionClosed(): void;
  handleFrame(frame: ServerFrame): Promise<void>;
  on(listener: (event: { readonly type: string; readonly reason?: string }) => void): () => void;
}

export interface ConnectionDriverOptions {
  readonly client: DrivenClient;
  /** Opens a socket to the relay (the runtime adapter). */
  readonly open: SocketOpener;
  /** False: one connection attempt, no reconnecting. */
  readonly reconnect?: boolean;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /**
   * True: refused credentials end the driver (state `refused`, no retry), for a UI that
   * asks the person instead. Default: retry at the slowest pace.
   */
  readonly stopWhenRefused?: boolean;
  readonly clock?: Clock;
  readonly timers?: Timers;
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

export class ConnectionDriver {
  private readonly clock: Clock;
  private readonly timers: Timers;
  private socket: ClientSocket | undefined;
  /** Resolves the pending `stop()` once the current socket reports `closed`. */
  private onSocketClosed: (() => void) | undefined;
  private stopped = true;
  private attempt = 0;
  private reconnectTimer: TimerHandle | undefined;
  private lastError: ClientError | undefined;
  private readonly waiters = new Set<Waiter>();
  private current: ConnectionState = { kind: 'stopped' };
  private readonly stateListeners = new Set<(s: ConnectionState) => void>();

  constructor(private readonly options: ConnectionDriverOptions) {
    this.clock = options.clock ?? systemClock;
    this.timers = options.timers ?? systemTimers;
    options.client.on((e) => {
      if (e.type === 'ready') {
        this.attempt = 0;
        for (const w of this.waiters) w.resolve();
        this.waiters.clear();
        this.setState({ kind: 'online' });
      }
      if (e.type === 'auth-rejected') {
        const err = new ClientError('AUTH_REJECTED', 'the relay refused our credentials');
        this.fail(err);
        if (options.stopWhenRefused === true) this.end(err, e.reason ?? err.message);
      }
    });
  }

  /** The link state now. */
  get state(): ConnectionState {
    return this.current;
  }

  /** Calls `fn` now and on every state change; returns the unsubscribe function. */
  onState(fn: (s: ConnectionState) => void): () => void {
    this.stateListeners.add(fn);
    fn(this.current);
    return () => {
      this.stateListeners.delete(fn);
    };
  }

  /** The last connection error, for status lines. */
  get error(): ClientError | undefined {
    return this.lastError;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  /** Connects at once instead of waiting out the backoff (the host says the network is back). */
  retryNow(): void {
    if (this.stopped || this.socket || this.reconnectTimer === undefined) return;
    this.timers.clear(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.connect();
  }

  /** Resolves when the core is authenticated; rejects on refused credentials or after `timeoutMs`. */
  waitReady(timeoutMs: number): Promise<void> {
    if (this.options.client.isReady) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        resolve: () => {
          this.timers.clear(t);
          resolve();
        },
        reject: (e: Error) => {
          this.timers.clear(t);
          reject(e);
        },
      };
      const t = this.timers.set(() => {
        this.waiters.delete(w);
        reject(
          this.lastError ?? new ClientError('TIMEOUT', 'could not connect to the relay in time'),
        );
      }, timeoutMs);
      this.waiters.add(w);
    });
  }

  /**
   * Drops the current connection abruptly and connects again after the usual backoff,
   * as after a network change (the core resumes its session with the relay's token in
   * open mode). No-op when stopped or not connected.
   */
  dropConnection(): void {
    this.socket?.close(true);
  }

  /** Closes the connection and stops reconnecting. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.reconnectTimer !== undefined) this.timers.clear(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.setState({ kind: 'stopped' });
    const socket = this.socket;
    if (!socket) return;
    await new Promise<void>((resolve) => {
      const grace = this.timers.set(() => {
        socket.close(true);
        resolve();
      }, CLOSE_GRACE_MS);
      this.onSocketClosed = () => {
        this.timers.clear(grace);
        resolve();
      };
      socket.close(false);
    });
  }

  /**
   * Ends the connection for good with `err` (our certificate was revoked): no more
   * attempts, waiters rejected, `error` keeps the reason for status lines.
   */
  halt(err: ClientError): void {
    this.lastError = err;
    this.end(err, err.message);
  }

  private end(err: ClientError, reason: string): void {
    this.stopped = true;
    if (this.reconnectTimer !== undefined) this.timers.clear(this.reconnectTimer);
    this.reconnectTimer = undefined;
    for (const w of this.waiters) w.reject(err);
    this.waiters.clear();
    this.setState({ kind: 'refused', reason });
    this.socket?.close(false);
  }

  private setState(s: ConnectionState): void {
    this.current = s;
    for (const fn of this.stateListeners) fn(s);
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
    const { client } = this.options;
    const writer = new FrameWriter();
    const reader = new FrameReader({ direction: 'toClient', now: this.clock });
    let lastActivity = this.clock();
    let watchdog: TimerHandle | undefined;
    let done = false;
    let opened = false;
    let reason: string | undefined;
    this.setState({ kind: 'connecting' });
    const socket: ClientSocket = this.options.open({
      opened: () => {
        if (done) return;
        opened = true;
        lastActivity = this.clock();
        client.connectionOpened(transport);
      },
      message: (bytes) => {
        if (done) return;
        lastActivity = this.clock();
        let frame;
        try {
          frame = reader.push(bytes);
        } catch {
          // A malformed block from the relay: this connection is done; reconnect fresh.
          socket.close(true);
          return;
        }
        if (frame) void client.handleFrame(frame);
      },
      failed: (err) => {
        if (done) return;
        // Refused credentials stay refused: retry at the slowest pace, not in a tight
        // loop (a relay restarting mid-handshake can look the same, so not never).
        if (err.code === 'AUTH_REJECTED' && !opened)
          this.attempt = Math.max(this.attempt, REFUSED_BACKOFF_ATTEMPT);
        reason = err.message;
        this.fail(err);
      },
      closed: () => {
        if (done) return;
        done = true;
        if (watchdog !== undefined) this.timers.clear(watchdog);
        reader.close();
        if (this.socket === socket) this.socket = undefined;
        client.connectionClosed();
        const stopping = this.onSocketClosed;
        this.onSocketClosed = undefined;
        stopping?.();
        this.scheduleReconnect(reason ?? (opened ? 'connection lost' : 'cannot reach the relay'));
      },
    });
    const transport: ClientTransport = {
      send: (frame: ClientFrame): boolean => {
        if (done) return false;
        for (const block of writer.write(frame)) if (!socket.send(block)) return false;
        return true;
      },
    };
    this.socket = socket;
    const check = (): void => {
      watchdog = undefined;
      if (done) return;
      try {
        reader.checkTimeouts();
      } catch {
        socket.close(true);
        return;
      }
      if (this.clock() - lastActivity > LIVENESS_TIMEOUT_MS) {
        socket.close(true);
        return;
      }
      watchdog = this.timers.set(check, WATCHDOG_INTERVAL_MS);
    };
    watchdog = this.timers.set(check, WATCHDOG_INTERVAL_MS);
  }

  private scheduleReconnect(reason: string): void {
    if (this.stopped || this.options.reconnect === false) {
      if (this.lastError) for (const w of this.waiters) w.reject(this.lastError);
      this.waiters.clear();
      if (!this.stopped) this.setState({ kind: 'stopped' });
      return;
    }
    const initial = this.options.initialBackoffMs ?? RECONNECT_INITIAL_MS;
    const max = this.options.maxBackoffMs ?? RECONNECT_MAX_MS;
    const delay = Math.min(max, initial * 2 ** Math.min(this.attempt, 16));
    this.attempt++;
    this.setState({ kind: 'offline', retryInMs: delay, reason });
    this.reconnectTimer = this.timers.set(() => {
      this.reconnectTimer = undefined;
      this.connect();
    }, delay);
  }
}
