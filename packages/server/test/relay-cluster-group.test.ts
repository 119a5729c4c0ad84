/**
 * Group uploads across relay nodes on one PostgreSQL and one Redis: a recipient
 * connected to another node than the sender gets its copy live (nudged over the bus),
 * an offline one gets it at login on either node, and a retry through another node
 * stores nothing new.
 */
import type { ClientFrame, ServerFrame } from '@parley/wire';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cluster, connect, type Cluster } from './cluster-harness.js';
import { clientId, until, type TestClient } from './helpers.js';
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

type Deliver = Extract<ServerFrame, { type: 'deliver' }>;
const addr = (name: string) => ({ name, deviceId: 1 });
const delivers = (c: TestClient): Deliver[] =>
  c.frames.filter((f): f is Deliver => f.type === 'deliver');

function groupSend(from: string, to: string[], n: number): ClientFrame {
  return {
    type: 'group.send',
    clientMessageId: clientId(n),
    from: addr(from),
    to: to.map(addr),
    payload: new Uint8Array(200).fill(n),
  };
}

function autoAck(c: TestClient): () => void {
  const acked = new Set<number>();
  const timer = setInterval(() => {
    for (const f of delivers(c)) {
      if (acked.has(f.serverMessageId) || c.closed) continue;
      acked.add(f.serverMessageId);
      c.send({ type: 'ack', serverMessageId: f.serverMessageId });
    }
  }, 10);
  return () => clearInterval(timer);
}

describe('group uploads across two relay nodes', () => {
  it('a recipient on the other node receives live; an offline one at login; a retry through the other node stores nothing new', async () => {
    const c = await cluster(pg, redis);
    clusters.push(c);
    const [n1, n2] = [await c.start(1), await c.start(2)];
    const tls = {
      sender: await c.creds('sender'),
      far: await c.creds('far'),
      near: await c.creds('near'),
      away: await c.creds('away'),
    };
    // Every member registers once; `away` then goes offline.
    const away = await connect(n2.port, tls.away);
    away.close();
    await away.waitClosed();
    const far = await connect(n2.port, tls.far);
    const near = await connect(n1.port, tls.near);
    const stops = [autoAck(far), autoAck(near)];
    let sender = await connect(n1.port, tls.sender);
    // Node 1 must have heard over the bus that `far` is on node 2 before it can nudge it.
    for (let i = 0; ; i++) {
      sender.send({ type: 'presence.list', requestId: i });
      const r = await sender.next('presence.list.result', 10_000);
      if (r.names.includes('far')) break;
      if (i > 200) throw new Error('node 1 never saw far');
      await new Promise((res) => setTimeout(res, 50));
    }

    sender.send(groupSend('sender', ['far', 'near', 'away'], 1));
    const queued = await sender.next('receipt', 20_000);
    expect(queued.status).toBe('queued');
    await until(() => delivers(far).length === 1 && delivers(near).length === 1, 'copies', 20_000);
    for (const m of [far, near]) {
      expect(delivers(m)[0]).toMatchObject({ kind: 'group', from: addr('sender') });
      expect(delivers(m)[0]?.payload).toEqual(new Uint8Array(200).fill(1));
    }
    expect(queued.serverMessageId).toBe(delivers(far)[0]?.serverMessageId);

    // The sender moves to node 2 and retries the same upload: same receipt, no copy.
    sender.close();
    sender = await connect(n2.port, tls.sender);
    sender.send(groupSend('sender', ['far', 'near', 'away'], 1));
    const again = await sender.next('receipt', 20_000);
    expect(again.serverMessageId).toBe(queued.serverMessageId);
    // A marker behind it: copies arrive in order, so a second copy would come first.
    sender.send(groupSend('sender', ['far', 'near', 'away'], 2));
    await sender.next('receipt', 20_000);
    await until(() => delivers(far).length === 2 && delivers(near).length === 2, 'marker', 20_000);
    for (const m of [far, near]) expect(delivers(m).map((d) => d.payload[0])).toEqual([1, 2]);

    const back = await connect(n1.port, tls.away);
    expect(delivers(back).map((d) => [d.kind, d.payload[0]])).toEqual([
      ['group', 1],
      ['group', 2],
    ]);
    expect(sender.frames.some((f) => f.type === 'error')).toBe(false);
    for (const s of stops) s();
    for (const m of [sender, far, near, back]) m.close();
  }, 240_000);
});
