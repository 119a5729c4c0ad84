/**
 * The portable connection driver over a scripted `ClientSocket`, with a manual clock
 * and timers: nothing here touches a network, a host timer or the wall clock, which is
 * the point (a browser adapter supplies the same socket interface).
 */
import { describe, expect, it } from 'vitest';
import { FrameReader, FrameWriter } from '@parley/wire';
import type { ClientFrame, ServerFrame } from '@parley/wire';
import {
  ClientError,
  ConnectionDriver,
  LIVENESS_TIMEOUT_MS,
  RECONNECT_INITIAL_MS,
  RECONNECT_MAX_MS,
  WATCHDOG_INTERVAL_MS,
} from '@parley/client';
import type {
  ClientSocket,
  ClientSocketHandlers,
  ClientTransport,
  ConnectionState,
  DrivenClient,
  Timers,
} from '@parley/client';

class ManualTime implements Timers {
  now = 1_000_000;
  private next = 1;
  private readonly due = new Map<number, { at: number; fn: () => void }>();
  set(fn: () => void, delayMs: number): number {
    const id = this.next++;
    this.due.set(id, { at: this.now + delayMs, fn });
    return id;
  }
  clear(handle: unknown): void {
    this.due.delete(handle as number);
  }
  /** Runs every timer due within `ms`, in time order. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      const [id, t] = [...this.due].sort((a, b) => a[1].at - b[1].at)[0] ?? [];
      if (id === undefined || t === undefined || t.at > end) break;
      this.due.delete(id);
      this.now = t.at;
      t.fn();
    }
    this.now = end;
  }
}

class ScriptedSocket implements ClientSocket {
  sent: Uint8Array[] = [];
  closes: boolean[] = [];
  open = false;
  constructor(readonly h: ClientSocketHandlers) {}
  send(bytes: Uint8Array): boolean {
    if (!this.open) return false;
    this.sent.push(bytes.slice());
    return true;
  }
  close(abrupt?: boolean): void {
    this.closes.push(abrupt === true);
    this.open = false;
    this.h.closed();
  }
}

function fakeClient(): DrivenClient & {
  log: string[];
  frames: ServerFrame[];
  transport?: ClientTransport | undefined;
  emit(type: string, reason?: string): void;
} {
  const listeners = new Set<(e: { type: string; reason?: string }) => void>();
  const c = {
    log: [] as string[],
    frames: [] as ServerFrame[],
    transport: undefined as ClientTransport | undefined,
    isReady: false,
    connectionOpened(t: ClientTransport) {
      c.log.push('opened');
      c.transport = t;
    },
    connectionClosed() {
      c.log.push('closed');
      c.isReady = false;
    },
    handleFrame(f: ServerFrame) {
      c.frames.push(f);
      return Promise.resolve();
    },
    on(l: (e: { type: string; reason?: string }) => void) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    emit(type: string, reason?: string) {
      if (type === 'ready') c.isReady = true;
      for (const l of listeners) l(reason === undefined ? { type } : { type, reason });
    },
  };
  return c;
}

function setup(options: { stopWhenRefused?: boolean } = {}) {
  const time = new ManualTime();
  const client = fakeClient();
  const sockets: ScriptedSocket[] = [];
  const driver = new ConnectionDriver({
    client,
    open: (h) => {
      const s = new ScriptedSocket(h);
      sockets.push(s);
      return s;
    },
    clock: () => time.now,
    timers: time,
    ...options,
  });
  const states: ConnectionState[] = [];
  driver.onState((st) => states.push(st));
  return { time, client, sockets, driver, states };
}

describe('ConnectionDriver over a scripted socket', () => {
  it('glues frames both ways and hands each connection to the core', () => {
    const { client, sockets, driver } = setup();
    driver.start();
    const s = sockets[0] as ScriptedSocket;
    s.open = true;
    s.h.opened();
    expect(client.log).toEqual(['opened']);
    const out: ClientFrame = { type: 'pong', timestamp: 7 };
    expect(client.transport?.send(out)).toBe(true);
    const reader = new FrameReader({ direction: 'toServer', now: () => 0 });
    const decoded = s.sent.map((b) => reader.push(b)).filter((f) => f !== undefined);
    expect(decoded).toEqual([out]);
    for (const block of new FrameWriter().write({ type: 'ping', timestamp: 9 })) s.h.message(block);
    expect(client.frames).toEqual([{ type: 'ping', timestamp: 9 }]);
  });

  it('reconnects with doubling backoff, reset by a ready connection', () => {
    const { time, client, sockets, driver } = setup();
    driver.start();
    (sockets[0] as ScriptedSocket).h.failed(new ClientError('TRANSPORT', 'refused'));
    (sockets[0] as ScriptedSocket).h.closed();
    expect(driver.error?.code).toBe('TRANSPORT');
    time.advance(RECONNECT_INITIAL_MS - 1);
    expect(sockets.length).toBe(1);
    time.advance(1);
    expect(sockets.length).toBe(2);
    (sockets[1] as ScriptedSocket).h.closed();
    time.advance(2 * RECONNECT_INITIAL_MS - 1);
    expect(sockets.length).toBe(2);
    time.advance(1);
    expect(sockets.length).toBe(3);
    const s = sockets[2] as ScriptedSocket;
    s.open = true;
    s.h.opened();
    client.emit('ready');
    s.h.closed();
    time.advance(RECONNECT_INITIAL_MS);
    expect(sockets.length).toBe(4);
  });

  it('replaces a connection silent for longer than the liveness bound', () => {
    const { time, sockets, driver } = setup();
    driver.start();
    const s = sockets[0] as ScriptedSocket;
    s.open = true;
    s.h.opened();
    time.advance(LIVENESS_TIMEOUT_MS - WATCHDOG_INTERVAL_MS);
    expect(s.closes).toEqual([]);
    time.advance(2 * WATCHDOG_INTERVAL_MS);
    expect(s.closes).toEqual([true]);
  });

  it('refused credentials reject waitReady; stop ends reconnecting', async () => {
    const { time, sockets, driver } = setup();
    driver.start();
    const ready = driver.waitReady(60_000);
    (sockets[0] as ScriptedSocket).h.failed(new ClientError('AUTH_REJECTED', 'revoked'));
    await expect(ready).rejects.toMatchObject({ code: 'AUTH_REJECTED' });
    (sockets[0] as ScriptedSocket).h.closed();
    await driver.stop();
    time.advance(60_000);
    expect(sockets.length).toBe(1);
  });

  it('refused credentials back off to the cap; halt ends the connection for good', async () => {
    const { time, sockets, driver } = setup();
    driver.start();
    (sockets[0] as ScriptedSocket).h.failed(new ClientError('AUTH_REJECTED', 'hung up'));
    (sockets[0] as ScriptedSocket).h.closed();
    time.advance(RECONNECT_MAX_MS - 1);
    expect(sockets.length).toBe(1);
    time.advance(1);
    expect(sockets.length).toBe(2);
    const s = sockets[1] as ScriptedSocket;
    s.open = true;
    s.h.opened();
    const ready = driver.waitReady(60_000);
    driver.halt(new ClientError('CERT_REVOKED', 'our certificate is revoked'));
    await expect(ready).rejects.toMatchObject({ code: 'CERT_REVOKED' });
    expect(s.closes).toEqual([false]);
    s.h.failed(new ClientError('TRANSPORT', 'closed'));
    expect(driver.error?.code).toBe('CERT_REVOKED');
    time.advance(10 * RECONNECT_MAX_MS);
    expect(sockets.length).toBe(2);
  });
});

/** The socket could not connect: `failed`, then `closed`, as the adapters report it. */
function unreachable(s: ScriptedSocket): void {
  s.h.failed(new ClientError('TRANSPORT', 'cannot reach the relay'));
  s.h.closed();
}

describe('ConnectionDriver link state (the connection banner)', () => {
  it('reports offline with the next delay, doubling to the cap, and connecting on each attempt', () => {
    const { time, sockets, driver, states } = setup();
    expect(states).toEqual([{ kind: 'stopped' }]);
    driver.start();
    expect(states.at(-1)).toEqual({ kind: 'connecting' });
    const delays: number[] = [];
    for (let i = 0; i < 9; i++) {
      unreachable(sockets.at(-1) as ScriptedSocket);
      const st = states.at(-1) as Extract<ConnectionState, { kind: 'offline' }>;
      expect(st.kind).toBe('offline');
      expect(st.reason).toBe('cannot reach the relay');
      delays.push(st.retryInMs);
      time.advance(st.retryInMs - 1);
      expect(sockets.length).toBe(i + 1);
      time.advance(1);
      expect(sockets.length).toBe(i + 2);
      expect(states.at(-1)?.kind).toBe('connecting');
    }
    expect(delays).toEqual([250, 500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
  });

  it('is online once the core is ready, offline with the reason when the link drops', () => {
    const { sockets, driver, states, client } = setup();
    driver.start();
    const s = sockets[0] as ScriptedSocket;
    s.open = true;
    s.h.opened();
    client.emit('ready');
    expect(driver.state).toEqual({ kind: 'online' });
    s.h.failed(new ClientError('TRANSPORT', 'connection lost (1006)'));
    s.open = false;
    s.h.closed();
    expect(states.at(-1)).toEqual({
      kind: 'offline',
      retryInMs: RECONNECT_INITIAL_MS,
      reason: 'connection lost (1006)',
    });
    // The old connection's transport is dead: nothing goes out on a closed socket.
    expect(client.transport?.send({ type: 'pong', timestamp: 1 })).toBe(false);
  });

  it('a clean close after opening reads as "connection lost"; retryNow skips the wait', () => {
    const { sockets, driver, states } = setup();
    driver.start();
    const s = sockets[0] as ScriptedSocket;
    s.open = true;
    s.h.opened();
    s.h.closed();
    expect(states.at(-1)).toMatchObject({ kind: 'offline', reason: 'connection lost' });
    driver.retryNow();
    expect(sockets.length).toBe(2);
    expect(states.at(-1)).toEqual({ kind: 'connecting' });
    driver.retryNow(); // already connecting: no second socket
    expect(sockets.length).toBe(2);
  });

  it('with stopWhenRefused, refused credentials end it (state refused, no retry)', async () => {
    const { time, sockets, driver, states, client } = setup({ stopWhenRefused: true });
    driver.start();
    const ready = driver.waitReady(60_000);
    const s = sockets[0] as ScriptedSocket;
    s.open = true;
    s.h.opened();
    client.emit('auth-rejected', 'this device certificate has been revoked');
    await expect(ready).rejects.toMatchObject({ code: 'AUTH_REJECTED' });
    expect(states.at(-1)).toEqual({
      kind: 'refused',
      reason: 'this device certificate has been revoked',
    });
    time.advance(60_000);
    expect(sockets.length).toBe(1);
    expect(driver.state.kind).toBe('refused');
  });

  it('stop reports stopped and nothing reconnects', async () => {
    const { time, sockets, driver, states } = setup();
    driver.start();
    const s = sockets[0] as ScriptedSocket;
    s.open = true;
    s.h.opened();
    await driver.stop();
    expect(states.at(-1)).toEqual({ kind: 'stopped' });
    time.advance(60_000);
    expect(sockets.length).toBe(1);
  });
});
