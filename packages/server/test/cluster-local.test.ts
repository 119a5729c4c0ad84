/**
 * Two relay cores in one process, one shared store, joined by an in-process bus hub:
 * what the mailbox router must do across nodes through `RelayBus` (the same contract a
 * Redis bus implements) — mail nudges after commit, receipts to a sender on another
 * node, presence, and the connection cap per identity over the whole cluster.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameReader, FrameWriter, type ClientFrame, type ServerFrame } from '@parley/wire';
import { LocalBus, LocalBusHub } from '../src/bus/local.js';
import type { BusMessage } from '../src/bus/types.js';
import { resolveConfig } from '../src/config.js';
import type { Connection } from '../src/connection.js';
import { RelayMetrics } from '../src/observability.js';
import { RelayCore } from '../src/relay.js';
import { MemoryStore } from '../src/storage/memory.js';
import { clientId, crypto, until } from './helpers.js';

class FakeConnection implements Connection {
  readonly reader = new FrameReader({ direction: 'toClient', now: Date.now });
  readonly frames: ServerFrame[] = [];
  closedWith: number | undefined;
  constructor(readonly peer: Connection['peer']) {}
  readonly bufferedAmount = 0;
  send(block: Uint8Array): void {
    const f = this.reader.push(block);
    if (f) this.frames.push(f);
  }
  close(code: number): void {
    this.closedWith = code;
  }
  of<T extends ServerFrame['type']>(type: T): Extract<ServerFrame, { type: T }>[] {
    return this.frames.filter((f): f is Extract<ServerFrame, { type: T }> => f.type === type);
  }
}

const keys = new Map<string, Uint8Array>();
const cert = (name: string) => {
  const identityKey = keys.get(name) ?? crypto.randomBytes(32);
  keys.set(name, identityKey);
  return { name, identityKey, der: new Uint8Array([0x30, 0]), serial: '01' };
};

const stops: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

function cluster(nodes: number, maxConnectionsPerIdentity = 4): RelayCore[] {
  const config = resolveConfig({}, { config: { limits: { maxConnectionsPerIdentity } } });
  const hub = new LocalBusHub(
    {
      maxBlocksPerIdentity: config.rateLimit.maxBlocksPerIdentity,
      windowMs: config.rateLimit.windowMs,
      maxConnectionsPerIdentity,
    },
    Date.now,
  );
  const store = new MemoryStore();
  const cores = Array.from({ length: nodes }, (_, i) => {
    const bus = hub.node(`n${i + 1}`);
    const core = new RelayCore({
      config,
      store,
      bus,
      audit: { write: () => undefined },
      metrics: new RelayMetrics(false),
      logger: pino({ level: 'silent' }),
      crypto,
      now: Date.now,
    });
    stops.push(async () => {
      core.shutdown();
      await bus.close();
    });
    return core;
  });
  return cores;
}

const writer = new FrameWriter();
function connect(core: RelayCore, name: string) {
  const conn = new FakeConnection({ remote: name, certificate: cert(name) });
  const session = core.accept(conn);
  const send = (f: ClientFrame): void => {
    for (const b of writer.write(f)) session.onMessage(b, true);
  };
  send({ type: 'hello', protocolVersions: [1], timestamp: Date.now() });
  return { conn, send, session };
}

const mail = (from: string, to: string, n: number): ClientFrame => ({
  type: 'send',
  clientMessageId: clientId(n),
  from: { name: from, deviceId: 1 },
  to: { name: to, deviceId: 1 },
  payload: new Uint8Array([n]),
});

describe('mailbox router across nodes (in-process bus)', () => {
  it('mail, receipts and presence cross nodes', async () => {
    const [n1, n2] = cluster(2) as [RelayCore, RelayCore];
    const alice = connect(n1, 'alice');
    await until(() => alice.conn.of('mailbox.empty').length > 0, 'alice ready');
    const bob = connect(n2, 'bob');
    await until(() => bob.conn.of('mailbox.empty').length > 0, 'bob ready');
    // Presence: alice (node 1) hears bob join on node 2; node 2 lists both.
    await until(
      () => alice.conn.of('presence').some((p) => p.event === 'join' && p.name === 'bob'),
      'bob joined',
    );
    bob.send({ type: 'presence.list', requestId: 5 });
    await until(() => bob.conn.of('presence.list.result').length > 0, 'list');
    expect(bob.conn.of('presence.list.result')[0]?.names).toEqual(['alice', 'bob']);

    for (const n of [1, 2, 3]) alice.send(mail('alice', 'bob', n));
    await until(() => bob.conn.of('deliver').length === 3, 'bob got all three');
    // In order, once each, from the shared store after the commit nudge.
    expect(bob.conn.of('deliver').map((d) => d.payload[0])).toEqual([1, 2, 3]);
    await until(() => alice.conn.of('receipt').length === 3, 'queued');
    expect(alice.conn.of('receipt').every((r) => r.status === 'queued')).toBe(true);

    // Bob (node 2) acks: alice (node 1) hears "delivered" as a kept receipt, which her ack
    // settles, so a later login of hers gets none.
    const first = bob.conn.of('deliver')[0]!;
    bob.send({ type: 'ack', serverMessageId: first.serverMessageId });
    await until(() => alice.conn.of('receipt.stored').length === 1, 'delivered across nodes');
    const r = alice.conn.of('receipt.stored')[0]!;
    expect(r).toMatchObject({ status: 'delivered', serverMessageId: first.serverMessageId });
    expect(r.clientMessageId).toEqual(clientId(1));
    alice.send({ type: 'ack', serverMessageId: r.serverMessageId });
    alice.send({ type: 'mailbox.fetch' });
    await until(() => alice.conn.of('mailbox.empty').length === 2, 'settled');
    const again = connect(n2, 'alice');
    await until(() => again.conn.of('mailbox.empty').length > 0, 'alice again');
    expect(again.conn.of('receipt.stored')).toEqual([]);
  });

  it('group copies reach recipients on both nodes, one queued per upload, and acks send no receipt', async () => {
    const [n1, n2] = cluster(2) as [RelayCore, RelayCore];
    const alice = connect(n1, 'alice');
    const near = connect(n1, 'near');
    const far = connect(n2, 'far');
    for (const c of [alice, near, far]) {
      await until(() => c.conn.of('mailbox.empty').length > 0, 'ready');
    }
    await until(
      () => alice.conn.of('presence').some((p) => p.event === 'join' && p.name === 'far'),
      'far joined',
    );
    for (const n of [1, 2]) {
      alice.send({
        type: 'group.send',
        clientMessageId: clientId(n),
        from: { name: 'alice', deviceId: 1 },
        to: [
          { name: 'far', deviceId: 1 },
          { name: 'near', deviceId: 1 },
        ],
        payload: new Uint8Array([n]),
      });
    }
    await until(
      () => far.conn.of('deliver').length === 2 && near.conn.of('deliver').length === 2,
      'copies on both nodes',
    );
    for (const c of [far, near]) {
      expect(c.conn.of('deliver').map((d) => [d.kind, d.payload[0]])).toEqual([
        ['group', 1],
        ['group', 2],
      ]);
    }
    await until(() => alice.conn.of('receipt').length === 2, 'one queued per upload');
    for (const c of [far, near]) {
      for (const d of c.conn.of('deliver'))
        c.send({ type: 'ack', serverMessageId: d.serverMessageId });
    }
    // A sync point behind the acks on each recipient: every ack was applied by then.
    for (const c of [far, near]) c.send({ type: 'mailbox.fetch' });
    await until(
      () => far.conn.of('mailbox.empty').length === 2 && near.conn.of('mailbox.empty').length === 2,
      'acks applied',
    );
    alice.send({ type: 'mailbox.fetch' });
    await until(() => alice.conn.of('mailbox.empty').length === 2, 'alice synced');
    expect(alice.conn.of('receipt').map((r) => r.status)).toEqual(['queued', 'queued']);
    expect(alice.conn.of('receipt.stored')).toEqual([]);
  });

  it('a node that goes away takes its presence with it', async () => {
    const [n1, n2] = cluster(2) as [RelayCore, RelayCore];
    const alice = connect(n1, 'alice');
    const bob = connect(n2, 'bob');
    await until(
      () => alice.conn.of('presence').some((p) => p.event === 'join' && p.name === 'bob'),
      'bob joined',
    );
    await n2.bus.close();
    await until(
      () => alice.conn.of('presence').some((p) => p.event === 'leave' && p.name === 'bob'),
      'bob left with his node',
    );
    alice.send({ type: 'presence.list', requestId: 1 });
    await until(() => alice.conn.of('presence.list.result').length > 0, 'list');
    expect(alice.conn.of('presence.list.result')[0]?.names).toEqual(['alice']);
    expect(bob.conn.closedWith).toBeUndefined();
  });

  it('the connection cap per identity holds over the cluster', async () => {
    const [n1, n2] = cluster(2, 1) as [RelayCore, RelayCore];
    const first = connect(n1, 'alice');
    await until(() => first.conn.of('welcome').length > 0, 'first in');
    const second = connect(n2, 'alice');
    await until(() => second.conn.closedWith !== undefined, 'second refused');
    expect(second.conn.of('error').map((e) => e.code)).toEqual(['rate_limited']);
    // The slot comes back when the first connection ends.
    first.session.close(1000);
    const third = connect(n2, 'alice');
    await until(() => third.conn.of('welcome').length > 0, 'third in');
  });

  it('a relay alone publishes nothing per message: only presence changes', async () => {
    const config = resolveConfig({}, {});
    const published: BusMessage['type'][] = [];
    const bus = LocalBus.standalone(
      'solo',
      { maxBlocksPerIdentity: 1_000, windowMs: 1_000, maxConnectionsPerIdentity: 4 },
      Date.now,
    );
    const publish = bus.publish.bind(bus);
    bus.publish = (m) => {
      published.push(m.type);
      publish(m);
    };
    const core = new RelayCore({
      config,
      store: new MemoryStore(),
      bus,
      audit: { write: () => undefined },
      metrics: new RelayMetrics(false),
      logger: pino({ level: 'silent' }),
      crypto,
      now: Date.now,
    });
    stops.push(() => core.shutdown());
    const alice = connect(core, 'alice');
    const bob = connect(core, 'bob');
    await until(() => bob.conn.of('mailbox.empty').length > 0, 'bob ready');
    for (const n of [1, 2, 3, 4]) alice.send(mail('alice', 'bob', n));
    await until(() => bob.conn.of('deliver').length === 4, 'delivered');
    for (const d of bob.conn.of('deliver'))
      bob.send({ type: 'ack', serverMessageId: d.serverMessageId });
    await until(
      () => alice.conn.of('receipt').filter((r) => r.status === 'delivered').length === 4,
      'receipts',
    );
    expect(published).toEqual(['presence.sync', 'presence', 'presence']);
  });
});
