/**
 * The Redis bus and the Redis quota against a real redis-server: messages cross between
 * nodes in order and never echo; the quota holds once across nodes (two nodes do not
 * get twice the limit); Redis restarted under running nodes: unhealthy, then usable
 * again by itself, with `gap()` on the subscriber.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBus } from '../src/bus/engine.js';
import { LocalQuota } from '../src/bus/local.js';
import { reserveShare } from '../src/bus/redis-quota.js';
import type { BusMessage, BusSubscriber, NodeId, RelayBus } from '../src/bus/types.js';
import { ServerError } from '../src/errors.js';
import { RelayMetrics } from '../src/observability.js';
import { until } from './helpers.js';
import { startRedis, type TestRedis } from './redis-server.js';

let redis: TestRedis;
const open: RelayBus[] = [];
let prefixSeq = 0;

beforeAll(async () => {
  redis = await startRedis();
}, 60_000);
afterAll(async () => {
  for (const b of open) await b.close();
  await redis?.destroy();
}, 30_000);

const logger = pino({ level: 'silent' });
const limits = { maxBlocksPerIdentity: 500, windowMs: 60_000, maxConnectionsPerIdentity: 3 };

/** `n` nodes on one Redis, with a key prefix of their own (tests do not share state). */
async function nodes(n: number, lim = limits): Promise<RelayBus[]> {
  const keyPrefix = `t${++prefixSeq}:`;
  const out: RelayBus[] = [];
  for (let i = 1; i <= n; i++) {
    const bus = await openBus(
      { engine: 'redis', redis: { host: redis.host, port: redis.port, keyPrefix } },
      {
        dataDir: '/nonexistent',
        nodeId: `node${i}`,
        logger,
        metrics: new RelayMetrics(false),
        limits: lim,
        now: Date.now,
      },
    );
    open.push(bus);
    out.push(bus);
  }
  return out;
}

function recorder(): BusSubscriber & {
  seen: [NodeId, BusMessage][];
  left: NodeId[];
  gaps: number;
} {
  const r = {
    seen: [] as [NodeId, BusMessage][],
    left: [] as NodeId[],
    gaps: 0,
    message: (origin: NodeId, m: BusMessage) => r.seen.push([origin, m]),
    gap: () => void r.gaps++,
    nodeLeft: (node: NodeId) => r.left.push(node),
  };
  return r;
}

const mail = (id: number): BusMessage => ({
  type: 'mail',
  recipient: { name: 'bob', deviceId: 1 },
  serverMessageId: id,
});

/** Lets the quota's background reconciliation with Redis run. */
const turn = (): Promise<void> => new Promise((r) => setTimeout(r, 1));

describe('Redis bus', () => {
  it('carries messages between nodes both ways, in order, never back to their origin', async () => {
    const [a, b, c] = await nodes(3);
    const [ra, rb, rc] = [recorder(), recorder(), recorder()];
    a!.subscribe(ra);
    b!.subscribe(rb);
    c!.subscribe(rc);
    for (let i = 1; i <= 50; i++) a!.publish(mail(i));
    const receipt: BusMessage = {
      type: 'receipt',
      sender: { name: 'alice', deviceId: 1 },
      clientMessageId: new Uint8Array([9, 0, 255]),
      status: 'delivered',
      serverMessageId: 7,
      timestamp: 1_700_000_000_000,
    };
    b!.publish(receipt);
    await until(() => rb.seen.length === 50 && rc.seen.length === 51, 'bus messages', 10_000);
    await until(() => ra.seen.length === 1, 'receipt on node 1', 10_000);
    expect(rb.seen.map(([o, m]) => [o, m.type === 'mail' ? m.serverMessageId : -1])).toEqual(
      Array.from({ length: 50 }, (_, i) => ['node1', i + 1]),
    );
    expect(ra.seen).toEqual([['node2', receipt]]);
    expect(rc.seen.filter(([o]) => o === 'node2')).toEqual([['node2', receipt]]);
    expect(await a!.health()).toEqual({ engine: 'redis', ok: true });
  }, 30_000);

  it('reports a node that stopped without a word as left', async () => {
    const [a, b] = await nodes(2);
    const ra = recorder();
    a!.subscribe(ra);
    b!.publish(mail(1));
    await until(() => ra.seen.length === 1, 'first message', 10_000);
    // close() stops heartbeats exactly as a crash does; it sends no leave.
    await b!.close();
    await until(() => ra.left.includes('node2'), 'nodeLeft(node2)', 15_000);
  }, 30_000);

  it('holds the flood limit once across two nodes, not twice', async () => {
    const [a, b] = await nodes(2);
    // Control: two in-process quotas (two nodes without a shared bus) admit twice.
    const local = [new LocalQuota(limits, Date.now), new LocalQuota(limits, Date.now)];
    let localAdmitted = 0;
    for (let i = 0; i < 2000; i++) if (local[i % 2]!.takeBlock('mallory')) localAdmitted++;
    expect(localAdmitted).toBe(2 * limits.maxBlocksPerIdentity);

    // Answers come synchronously from a node's reserve, or as a promise when it must
    // ask Redis first; both count.
    const verdicts: (boolean | Promise<boolean>)[] = [];
    for (let i = 0; i < 2000; i++) {
      verdicts.push((i % 2 === 0 ? a! : b!).quota.takeBlock('mallory'));
      if (i % 10 === 9) await turn();
    }
    const answers = await Promise.all(verdicts);
    expect(verdicts.some((v) => v === true)).toBe(true);
    const admitted = answers.filter((ok) => ok).length;
    // Reserved ahead, never counted after the fact: no overshoot at all. The slack is
    // below the limit, at most the share each node reserved and did not spend.
    expect(admitted).toBeLessThanOrEqual(limits.maxBlocksPerIdentity);
    expect(admitted).toBeGreaterThanOrEqual(
      limits.maxBlocksPerIdentity - 2 * reserveShare(limits.maxBlocksPerIdentity),
    );
    // Another identity is not affected.
    expect(await a!.quota.takeBlock('alice')).toBe(true);
  }, 30_000);

  it('holds the connection cap across nodes and gives slots back', async () => {
    const [a, b] = await nodes(2);
    const grants = [
      await a!.quota.acquireConnection('carol'),
      await b!.quota.acquireConnection('carol'),
      await a!.quota.acquireConnection('carol'),
      await b!.quota.acquireConnection('carol'),
    ];
    expect(grants).toEqual([true, true, true, false]);
    a!.quota.releaseConnection('carol');
    await until(() => true, 'noop');
    let again = false;
    for (let i = 0; i < 100 && !again; i++) {
      again = await b!.quota.acquireConnection('carol');
      if (!again) await new Promise((r) => setTimeout(r, 10));
    }
    expect(again).toBe(true);
    expect(await a!.quota.acquireConnection('carol')).toBe(false);
  }, 30_000);

  it('Redis restarted under running nodes: unhealthy, recovers by itself, gap() on the subscriber', async () => {
    const [a, b] = await nodes(2);
    const rb = recorder();
    b!.subscribe(rb);
    a!.publish(mail(1));
    await until(() => rb.seen.length === 1, 'before the outage', 10_000);

    await redis.stop();
    for (let i = 0; (await a!.health()).ok; i++) {
      if (i > 200) throw new Error('bus stayed healthy with Redis stopped');
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(await a!.health()).toMatchObject({ engine: 'redis', ok: false });
    // Published meanwhile: kept, not thrown.
    a!.publish(mail(2));
    a!.publish(mail(3));
    // The quota falls back to this node alone instead of refusing everyone.
    expect(await a!.quota.takeBlock('dave')).toBe(true);
    expect(await a!.quota.acquireConnection('dave')).toBe(true);

    await redis.start();
    for (let i = 0; !(await a!.health()).ok || !(await b!.health()).ok; i++) {
      if (i > 400) throw new Error('bus did not recover after Redis restarted');
      await new Promise((r) => setTimeout(r, 25));
    }
    await until(() => rb.gaps >= 1, 'gap() on the subscriber', 15_000);
    // The queued publishes went out once Redis took them; whether node 2 had subscribed
    // again by then is a race pub/sub does not settle (at most once), which is what its
    // gap() is for. What follows the recovery arrives, in order after whatever did.
    a!.publish(mail(4));
    await until(
      () => rb.seen.some(([, m]) => m.type === 'mail' && m.serverMessageId === 4),
      'after recovery',
      15_000,
    );
    const ids = rb.seen.map(([, m]) => (m.type === 'mail' ? m.serverMessageId : -1));
    expect(ids[0]).toBe(1);
    expect(ids.at(-1)).toBe(4);
    expect([...ids].sort((x, y) => x - y)).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  }, 60_000);

  it('a relay bus that cannot reach Redis, or read its password file, does not open', async () => {
    const opts = {
      dataDir: '/nonexistent',
      nodeId: 'x',
      logger,
      metrics: new RelayMetrics(false),
      limits,
      now: Date.now,
    };
    await redis.stop();
    try {
      await expect(
        openBus(
          { engine: 'redis', redis: { host: redis.host, port: redis.port, keyPrefix: 'p:' } },
          opts,
        ),
      ).rejects.toMatchObject({ code: 'BUS' });
    } finally {
      await redis.start();
    }
    const err = await openBus(
      {
        engine: 'redis',
        redis: { host: redis.host, port: redis.port, passwordFile: 'missing', keyPrefix: 'p:' },
      },
      opts,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServerError);
    expect((err as ServerError).message).toContain('bus.redis.passwordFile');
  }, 60_000);
});
