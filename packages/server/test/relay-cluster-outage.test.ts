/**
 * PostgreSQL restarted while three relay processes run on it (and on one Redis): every
 * node reports unhealthy, refuses the messages sent meanwhile with the retryable
 * `server_error` (for that message only; connections and processes stay up), and
 * recovers without a restart of its own; the clients retry the refused messages and
 * nothing acknowledged "queued" before the outage is lost or delivered twice.
 */
import type { ServerFrame } from '@parley/wire';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  autoAck,
  cluster,
  connect,
  receiptOf,
  scrape,
  send,
  untilHealth,
  type Cluster,
} from './cluster-harness.js';
import { until, type TestClient } from './helpers.js';
import { startPostgres, type TestPostgres } from './pg-server.js';
import { startRedis, type TestRedis } from './redis-server.js';

let pg: TestPostgres;
let redis: TestRedis;
const clusters: Cluster[] = [];

beforeAll(async () => {
  [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
}, 120_000);
afterAll(async () => {
  for (const c of clusters) await c.destroy();
  await Promise.all([pg?.destroy(), redis?.destroy()]);
}, 60_000);

/** The refusal of message `n` (an `error` correlated by its client message id). */
async function refusalOf(c: TestClient, n: number): Promise<ServerFrame> {
  let found: ServerFrame | undefined;
  await until(
    () => {
      found = c.frames.find((f) => f.type === 'error' && f.clientMessageId?.[15] === n);
      return found !== undefined || c.closed;
    },
    `refusal of ${n}`,
    30_000,
  );
  if (!found) throw new Error(`connection closed before the refusal of ${n}`);
  return found;
}

describe('PostgreSQL restarted under several relay nodes', () => {
  it('every node unhealthy, retryable refusals, recovery without a restart, nothing lost', async () => {
    const c = await cluster(pg, redis);
    clusters.push(c);
    const nodes = [await c.start(1), await c.start(2), await c.start(3)];
    const [aliceTls, bobTls, carolTls] = [
      await c.creds('alice'),
      await c.creds('bob'),
      await c.creds('carol'),
    ];
    (await connect(nodes[2]!.port, carolTls)).close(); // carol is known, then offline
    const alice = await connect(nodes[0]!.port, aliceTls);
    const bob = await connect(nodes[1]!.port, bobTls);
    const [aliceGot, bobGot] = [autoAck(alice), autoAck(bob)];
    send(alice, 'alice', 'bob', 1);
    send(alice, 'alice', 'carol', 4);
    await until(() => bobGot.got().includes(1), 'delivered before the outage', 20_000);
    await until(() => receiptOf(alice, 4, 'queued'), 'queued for carol before the outage', 20_000);

    await pg.stop();
    for (const n of nodes) {
      expect(await untilHealth(n.adminPort, 503)).toMatchObject({
        status: 'unavailable',
        storage: { engine: 'postgres', ok: false },
        bus: { engine: 'redis', ok: true },
      });
      expect(await scrape(n.adminPort)).toContain('parley_storage_up{engine="postgres"} 0');
    }
    // Sent meanwhile, on two nodes: refused for that message only, "try again".
    send(alice, 'alice', 'bob', 2);
    send(bob, 'bob', 'alice', 3);
    expect(await refusalOf(alice, 2)).toMatchObject({ type: 'error', code: 'server_error' });
    expect(await refusalOf(bob, 3)).toMatchObject({ type: 'error', code: 'server_error' });
    expect(receiptOf(alice, 2, 'queued') || receiptOf(bob, 3, 'queued')).toBe(false);
    expect(alice.closed || bob.closed).toBe(false);

    await pg.start();
    for (const n of nodes) {
      await untilHealth(n.adminPort, 200);
      expect(await scrape(n.adminPort)).toContain('parley_storage_up{engine="postgres"} 1');
    }
    // The clients retry what was refused (same ids); the relays take it now.
    send(alice, 'alice', 'bob', 2);
    send(bob, 'bob', 'alice', 3);
    await until(() => bobGot.got().includes(2), 'retried 2 delivered across nodes', 30_000);
    await until(() => aliceGot.got().includes(3), 'retried 3 delivered across nodes', 30_000);
    // What was "queued" before the outage is still there, once.
    const carol = await connect(nodes[1]!.port, carolTls);
    const carolGot = carol.frames.flatMap((f: ServerFrame) =>
      f.type === 'deliver' ? [f.payload[0] as number] : [],
    );
    expect(carolGot).toEqual([4]);
    expect(bobGot.got()).toEqual([1, 2]);
    expect(aliceGot.got()).toEqual([3]);
    for (const n of nodes) expect(n.child.exitCode).toBeNull();
    alice.close();
    bob.close();
    carol.close();
  }, 240_000);
});
