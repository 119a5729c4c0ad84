/**
 * The browser connection driver on a fake socket and a fake clock: capped exponential
 * backoff with the banner state, backoff reset once authenticated, frames leaving as
 * whole blocks, a silent connection replaced, no retry after refused credentials or stop.
 */
import { describe, expect, it } from 'vitest';
import { BLOCK_BYTES } from '@parley/wire';
import type { ClientEvent, ClientTransport, ParleyClient } from '@parley/client';
import { WebConnection } from '../src/platform/connection.js';
import type { ConnectionState, Timers } from '../src/platform/connection.js';
import type { BlockSocket, BlockSocketHandlers } from '../src/platform/socket.js';
import { ClientError, LIVENESS_TIMEOUT_MS } from '@parley/client';

class FakeTimers implements Timers {
  t = 1_000_000;
  private next = 1;
  private readonly tasks = new Map<number, { at: number; fn: () => void; every?: number }>();
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.tasks.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.tasks.delete(h as number);
  }
  setInterval(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.tasks.set(id, { at: this.t + ms, fn, every: ms });
    return id;
  }
  clearInterval(h: unknown): void {
    this.tasks.delete(h as number);
  }
  now(): number {
    return this.t;
  }
  /** Runs every task due within `ms`, in time order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = [...this.tasks.entries()]
        .filter(([, x]) => x.at <= end)
        .sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      const [id, task] = due;
      this.t = task.at;
      if (task.every !== undefined) task.at += task.every;
      else this.tasks.delete(id);
      task.fn();
    }
    this.t = end;
  }
}

interface FakeSocket extends BlockSocket {
  readonly handlers: BlockSocketHandlers;
  readonly sent: Uint8Array[];
  closedAbruptly?: boolean;
}

/** The socket could not connect: `failed`, then `closed`, as the browser adapter reports it. */
function unreachable(s: FakeSocket): void {
  s.handlers.failed(new ClientError('TRANSPORT', 'cannot reach the relay'));
  s.handlers.closed();
}

function setup() {
  const timers = new FakeTimers();
  const sockets: FakeSocket[] = [];
  const listeners = new Set<(e: ClientEvent) => void>();
  const calls: string[] = [];
  let transport: ClientTransport | undefined;
  let ready = false;
  const client = {
    on: (l: (e: ClientEvent) => void) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    get isReady() {
      return ready;
    },
    connectionOpened: (t: ClientTransport) => {
      transport = t;
      calls.push('opened');
    },
    connectionClosed: () => {
      ready = false;
      calls.push('closed');
    },
    handleFrame: async () => undefined,
  } as unknown as ParleyClient;
  const emit = (e: ClientEvent): void => {
    if (e.type === 'ready') ready = true;
    for (const l of listeners) l(e);
  };
  const conn = new WebConnection({
    client,
    timers,
    open: (handlers) => {
      const s: FakeSocket = {
        handlers,
        sent: [],
        send(block) {
          this.sent.push(block);
          return true;
        },
        close(abrupt = false) {
          this.closedAbruptly = abrupt;
          handlers.closed();
        },
      };
      sockets.push(s);
      return s;
    },
  });
  const states: ConnectionState[] = [];
  conn.onState((s) => states.push(s));
  return { timers, sockets, conn, states, emit, calls, transport: () => transport };
}

describe('WebConnection', () => {
  it('backs off 250 ms doubling to the 15 s cap while the relay cannot be reached', () => {
    const { timers, sockets, conn, states } = setup();
    conn.start();
    const delays: number[] = [];
    for (let i = 0; i < 9; i++) {
      unreachable(sockets.at(-1) as FakeSocket);
      const st = states.at(-1) as Extract<ConnectionState, { kind: 'offline' }>;
      expect(st.kind).toBe('offline');
      expect(st.reason).toBe('cannot reach the relay');
      delays.push(st.retryInMs);
      timers.advance(st.retryInMs - 1);
      expect(sockets.length).toBe(i + 1); // not before the delay
      timers.advance(1);
      expect(sockets.length).toBe(i + 2);
      expect(states.at(-1)?.kind).toBe('connecting');
    }
    expect(delays).toEqual([250, 500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
    conn.stop();
  });

  it('hands the core a transport whose frames leave as whole blocks, and resets backoff once ready', () => {
    const { timers, sockets, conn, states, emit, calls, transport } = setup();
    conn.start();
    unreachable(sockets[0] as FakeSocket);
    timers.advance(250);
    const s = sockets[1] as FakeSocket;
    s.handlers.opened();
    expect(calls).toEqual(['opened']);
    expect(
      transport()?.send({ type: 'hello', protocolVersions: [1], timestamp: timers.now() }),
    ).toBe(true);
    expect(s.sent.length).toBe(1);
    expect(s.sent[0]?.length).toBe(BLOCK_BYTES);
    emit({ type: 'ready' });
    expect(states.at(-1)?.kind).toBe('online');
    s.handlers.failed(new ClientError('TRANSPORT', 'connection lost (1006)'));
    s.handlers.closed();
    expect(calls).toEqual(['opened', 'closed']);
    const st = states.at(-1) as Extract<ConnectionState, { kind: 'offline' }>;
    expect(st).toMatchObject({ kind: 'offline', retryInMs: 250 });
    expect(st.reason).toMatch(/connection lost/);
    // The old connection's transport is dead: nothing goes out on a closed socket.
    expect(transport()?.send({ type: 'hello', protocolVersions: [1], timestamp: 0 })).toBe(false);
    conn.stop();
  });

  it('replaces a connection that has delivered nothing for the liveness bound', () => {
    const { timers, sockets, conn } = setup();
    conn.start();
    const s = sockets[0] as FakeSocket;
    s.handlers.opened();
    timers.advance(LIVENESS_TIMEOUT_MS - 10_000);
    expect(s.closedAbruptly).toBeUndefined();
    timers.advance(20_000);
    expect(s.closedAbruptly).toBe(true);
    timers.advance(250);
    expect(sockets.length).toBe(2);
    conn.stop();
  });

  it('stops retrying after refused credentials and after stop', () => {
    const a = setup();
    a.conn.start();
    (a.sockets[0] as FakeSocket).handlers.opened();
    a.emit({ type: 'auth-rejected', reason: 'bad signature' });
    expect(a.states.at(-1)).toMatchObject({ kind: 'refused' });
    a.timers.advance(60_000);
    expect(a.sockets.length).toBe(1);

    const b = setup();
    b.conn.start();
    (b.sockets[0] as FakeSocket).handlers.opened();
    b.conn.stop();
    expect(b.states.at(-1)?.kind).toBe('stopped');
    b.timers.advance(60_000);
    expect(b.sockets.length).toBe(1);
  });
});
