/**
 * A connection whose identity quota must ask the other nodes first (a promise instead
 * of an answer): its blocks wait, in arrival order, and each is decoded only once its
 * own answer came; a refusal closes the connection and nothing held behind it is
 * decoded.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FrameReader, FrameWriter, type ServerFrame } from '@parley/wire';
import type { AuditEvent } from '../src/audit.js';
import type { IdentityQuota, RelayBus } from '../src/bus/types.js';
import { resolveConfig } from '../src/config.js';
import type { Connection } from '../src/connection.js';
import { CLOSE_POLICY } from '../src/limits.js';
import { RelayMetrics } from '../src/observability.js';
import { RelayCore } from '../src/relay.js';
import { MemoryStore } from '../src/storage/memory.js';
import { crypto, until } from './helpers.js';

/** Answers every block later, when the test says so. */
class DeferredQuota implements IdentityQuota {
  readonly asked: ((ok: boolean) => void)[] = [];
  takeBlock(): Promise<boolean> {
    return new Promise((resolve) => this.asked.push(resolve));
  }
  acquireConnection(): boolean {
    return true;
  }
  releaseConnection(): void {}
}

function setup(): {
  core: RelayCore;
  quota: DeferredQuota;
  conn: FakeConnection;
  events: AuditEvent[];
  send: (f: Parameters<FrameWriter['write']>[0]) => void;
} {
  const quota = new DeferredQuota();
  const bus: RelayBus = {
    nodeId: 'n1',
    quota,
    publish: () => undefined,
    subscribe: () => () => undefined,
    health: () => ({ engine: 'local', ok: true }),
    close: () => Promise.resolve(),
  };
  const events: AuditEvent[] = [];
  const core = new RelayCore({
    config: resolveConfig({}),
    store: new MemoryStore(),
    audit: { write: (e) => void events.push(e) },
    metrics: new RelayMetrics(false),
    logger: pino({ level: 'silent' }),
    crypto,
    now: Date.now,
    bus,
  });
  const conn = new FakeConnection();
  const session = core.accept(conn);
  const writer = new FrameWriter();
  const send = (f: Parameters<FrameWriter['write']>[0]): void => {
    for (const b of writer.write(f)) session.onMessage(b, true);
  };
  return { core, quota, conn, events, send };
}

class FakeConnection implements Connection {
  readonly peer = {
    remote: '127.0.0.1:9',
    certificate: {
      name: 'mallory',
      identityKey: crypto.randomBytes(32),
      der: new Uint8Array([0x30, 0]),
      serial: '01',
    },
  };
  readonly frames: ServerFrame[] = [];
  closedWith: number | undefined;
  readonly #reader = new FrameReader({ direction: 'toClient', now: Date.now });
  readonly bufferedAmount = 0;
  send(block: Uint8Array): void {
    const f = this.#reader.push(block);
    if (f) this.frames.push(f);
  }
  close(code: number): void {
    this.closedWith = code;
  }
  pongs(): number[] {
    return this.frames.flatMap((f) => (f.type === 'pong' ? [f.timestamp] : []));
  }
}

describe('blocks waiting for the identity quota', () => {
  it('are decoded in arrival order, each after its own answer', async () => {
    const { core, quota, conn, send } = setup();
    send({ type: 'hello', protocolVersions: [1], timestamp: Date.now() });
    await until(() => conn.frames.some((f) => f.type === 'mailbox.empty'), 'welcome');
    const t0 = Date.now();
    for (let i = 0; i < 5; i++) send({ type: 'ping', timestamp: t0 + i });
    // One question at a time: the later blocks wait behind the first.
    await until(() => quota.asked.length === 1, 'first question');
    expect(conn.pongs()).toEqual([]);
    for (let i = 0; i < 5; i++) {
      await until(() => quota.asked.length === i + 1, `question ${i + 1}`);
      quota.asked[i]!(true);
      await until(() => conn.pongs().length === i + 1, `pong ${i + 1}`);
      expect(quota.asked.length).toBeLessThanOrEqual(i + 2);
    }
    expect(conn.pongs()).toEqual([0, 1, 2, 3, 4].map((i) => t0 + i));
    expect(conn.closedWith).toBeUndefined();
    core.shutdown();
  });

  it('a refusal closes the connection, audited; nothing held behind it is decoded', async () => {
    const { core, quota, conn, events, send } = setup();
    send({ type: 'hello', protocolVersions: [1], timestamp: Date.now() });
    await until(() => conn.frames.some((f) => f.type === 'mailbox.empty'), 'welcome');
    const t0 = Date.now();
    for (let i = 0; i < 3; i++) send({ type: 'ping', timestamp: t0 + i });
    await until(() => quota.asked.length === 1, 'first question');
    quota.asked[0]!(true);
    await until(() => quota.asked.length === 2, 'second question');
    quota.asked[1]!(false);
    await until(() => conn.closedWith !== undefined, 'closed');
    expect(conn.closedWith).toBe(CLOSE_POLICY);
    expect(conn.pongs()).toEqual([t0]);
    expect(quota.asked.length).toBe(2);
    expect(
      events.some(
        (e) => e.type === 'rate.flood' && e.code === 'identity-blocks' && e.identity === 'mallory',
      ),
    ).toBe(true);
    core.shutdown();
  });
});
