/**
 * Keeps the web client connected: opens a block socket (socket.ts), frames blocks for
 * the client core, reconnects with capped exponential backoff, replaces a connection
 * that has gone silent, and reports a state the UI shows as its connection banner.
 *
 * The bounds are the core's (`@parley/client`: RECONNECT_*, LIVENESS_TIMEOUT_MS). The
 * core's `ConnectionDriver` takes the same socket opener; this driver stays only for
 * what that one does not report yet: the banner state with the next retry's delay.
 */
import { FrameReader, FrameWriter } from '@parley/wire';
import type { ClientFrame } from '@parley/wire';
import {
  ClientError,
  LIVENESS_TIMEOUT_MS,
  RECONNECT_INITIAL_MS,
  RECONNECT_MAX_MS,
  WATCHDOG_INTERVAL_MS,
} from '@parley/client';
import type { ClientTransport, ParleyClient } from '@parley/client';
import type { BlockSocket, BlockSocketOpener } from './socket.js';

/** What the connection banner shows. */
export type ConnectionState =
  | { readonly kind: 'connecting' }
  | { readonly kind: 'online' }
  /** Lost or never reached; the next attempt is `retryInMs` away. */
  | { readonly kind: 'offline'; readonly retryInMs: number; readonly reason: string }
  /** The relay refused our credentials; no retry. */
  | { readonly kind: 'refused'; readonly reason: string }
  | { readonly kind: 'stopped' };

/** The timer functions the driver uses, so tests can run it on a fake clock. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
  now(): number;
}

const browserTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as number),
  setInterval: (fn, ms) => globalThis.setInterval(fn, ms),
  clearInterval: (h) => globalThis.clearInterval(h as number),
  now: () => Date.now(),
};

export interface WebConnectionOptions {
  readonly client: ParleyClient;
  /** Opens one socket to the relay (socket.ts's `browserSocketOpener`). */
  readonly open: BlockSocketOpener;
  readonly timers?: Timers;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

export class WebConnection {
  private socket: BlockSocket | undefined;
  private stopped = true;
  private attempt = 0;
  private retry: unknown;
  private current: ConnectionState = { kind: 'stopped' };
  private readonly listeners = new Set<(s: ConnectionState) => void>();
  private readonly timers: Timers;
  private readonly unsubscribe: () => void;

  constructor(private readonly options: WebConnectionOptions) {
    this.timers = options.timers ?? browserTimers;
    this.unsubscribe = options.client.on((e) => {
      if (e.type === 'ready') {
        this.attempt = 0;
        this.set({ kind: 'online' });
      } else if (e.type === 'auth-rejected') {
        this.set({ kind: 'refused', reason: `the relay refused this device (${e.reason})` });
        this.stopped = true;
        this.socket?.close();
      }
    });
  }

  get state(): ConnectionState {
    return this.current;
  }

  /** Calls `fn` now and on every change; returns the unsubscribe function. */
  onState(fn: (s: ConnectionState) => void): () => void {
    this.listeners.add(fn);
    fn(this.current);
    return () => this.listeners.delete(fn);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  /** Resolves when the core is authenticated; rejects if refused or after `timeoutMs`. */
  waitReady(timeoutMs: number): Promise<void> {
    if (this.options.client.isReady) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = this.timers.setTimeout(() => {
        off();
        reject(new ClientError('TIMEOUT', 'could not connect to the relay in time'));
      }, timeoutMs);
      const off = this.onState((s) => {
        if (s.kind !== 'online' && s.kind !== 'refused') return;
        this.timers.clearTimeout(timer);
        queueMicrotask(off);
        if (s.kind === 'online') resolve();
        else reject(new ClientError('AUTH_REJECTED', s.reason));
      });
    });
  }

  /** Drops the connection now and reconnects after the usual backoff (tests, network change). */
  drop(): void {
    this.socket?.close(true);
  }

  /** Reconnects at once (the browser says the network is back). */
  retryNow(): void {
    if (this.stopped || this.socket) return;
    this.timers.clearTimeout(this.retry);
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.timers.clearTimeout(this.retry);
    this.socket?.close();
    this.socket = undefined;
    this.unsubscribe();
    this.set({ kind: 'stopped' });
  }

  private set(s: ConnectionState): void {
    this.current = s;
    for (const fn of this.listeners) fn(s);
  }

  private connect(): void {
    if (this.stopped) return;
    const { client } = this.options;
    this.set({ kind: 'connecting' });
    const writer = new FrameWriter();
    const reader = new FrameReader({ direction: 'toClient', now: () => this.timers.now() });
    let lastActivity = this.timers.now();
    let socket: BlockSocket | undefined = undefined;
    const transport: ClientTransport = {
      send: (frame: ClientFrame): boolean => {
        if (!socket || this.socket !== socket) return false;
        for (const block of writer.write(frame)) if (!socket.send(block)) return false;
        return true;
      },
    };
    const watchdog = this.timers.setInterval(() => {
      try {
        reader.checkTimeouts();
      } catch {
        return socket?.close(true);
      }
      if (this.timers.now() - lastActivity > LIVENESS_TIMEOUT_MS) socket?.close(true);
    }, WATCHDOG_INTERVAL_MS);
    let opened = false;
    let reason = 'cannot reach the relay';
    socket = this.options.open({
      opened: () => {
        opened = true;
        lastActivity = this.timers.now();
        client.connectionOpened(transport);
      },
      message: (block) => {
        lastActivity = this.timers.now();
        let frame;
        try {
          frame = reader.push(block);
        } catch {
          // A malformed block: this connection is done; reconnect fresh.
          return socket?.close(true);
        }
        if (frame) void client.handleFrame(frame);
      },
      failed: (err) => {
        reason = err.message;
      },
      closed: () => {
        this.timers.clearInterval(watchdog);
        reader.close();
        if (this.socket === socket) this.socket = undefined;
        if (opened) {
          client.connectionClosed();
          if (reason === 'cannot reach the relay') reason = 'connection lost';
        }
        this.scheduleReconnect(reason);
      },
    });
    this.socket = socket;
  }

  private scheduleReconnect(reason: string): void {
    if (this.stopped) return;
    const initial = this.options.initialBackoffMs ?? RECONNECT_INITIAL_MS;
    const max = this.options.maxBackoffMs ?? RECONNECT_MAX_MS;
    const delay = Math.min(max, initial * 2 ** Math.min(this.attempt, 16));
    this.attempt++;
    this.set({ kind: 'offline', retryInMs: delay, reason });
    this.retry = this.timers.setTimeout(() => this.connect(), delay);
  }
}
