import { describe, expect, it } from 'vitest';
import { decodeBusMessage, encodeBusMessage } from '../src/bus/codec.js';
import { LocalBus, LocalBusHub } from '../src/bus/local.js';
import type { BusMessage, BusSubscriber, NodeId } from '../src/bus/types.js';

const limits = { maxBlocksPerIdentity: 3, windowMs: 1_000, maxConnectionsPerIdentity: 2 };

function recorder(): BusSubscriber & { seen: [NodeId, BusMessage][]; left: NodeId[] } {
  const seen: [NodeId, BusMessage][] = [];
  const left: NodeId[] = [];
  return {
    seen,
    left,
    message: (origin, m) => seen.push([origin, m]),
    gap: () => undefined,
    nodeLeft: (n) => left.push(n),
  };
}

describe('bus messages', () => {
  const all: BusMessage[] = [
    { type: 'presence', event: 'join', device: { name: 'alice', deviceId: 1 } },
    { type: 'presence.sync' },
    { type: 'mail', recipient: { name: 'bob', deviceId: 2 }, serverMessageId: 7 },
    {
      type: 'receipt',
      sender: { name: 'alice', deviceId: 1 },
      clientMessageId: new Uint8Array([1, 2, 255]),
      status: 'delivered',
      serverMessageId: 9,
      timestamp: 1_700_000_000_000,
    },
    {
      type: 'prekeys.low',
      device: { name: 'bob', deviceId: 1 },
      remainingOneTime: 3,
      remainingOneTimePq: 0,
    },
    { type: 'crl.reloaded' },
  ];

  it('round-trip through the text codec', () => {
    for (const m of all) expect(decodeBusMessage(encodeBusMessage(m))).toEqual(m);
  });

  it('a malformed message is a typed error naming the field', () => {
    expect(() =>
      decodeBusMessage('{"type":"mail","recipient":{"name":"b"},"serverMessageId":1}'),
    ).toThrow(/recipient/);
    expect(() => decodeBusMessage('nope')).toThrow(expect.objectContaining({ code: 'BUS' }));
    expect(() => decodeBusMessage('{"type":"deliver"}')).toThrow(/unknown type/);
  });
});

describe('LocalBus', () => {
  it('a hub delivers to every other node, never back to the origin', () => {
    const hub = new LocalBusHub(limits, () => 0);
    const [a, b, c] = ['n1', 'n2', 'n3'].map((n) => hub.node(n)) as [LocalBus, LocalBus, LocalBus];
    const [ra, rb, rc] = [recorder(), recorder(), recorder()];
    a.subscribe(ra);
    b.subscribe(rb);
    c.subscribe(rc);
    a.publish({ type: 'crl.reloaded' });
    expect(ra.seen).toEqual([]);
    expect(rb.seen).toEqual([['n1', { type: 'crl.reloaded' }]]);
    expect(rc.seen).toEqual([['n1', { type: 'crl.reloaded' }]]);
    void b.close();
    expect(ra.left).toEqual(['n2']);
    expect(rc.left).toEqual(['n2']);
  });

  it('the quota of a hub holds across its nodes', () => {
    const hub = new LocalBusHub(limits, () => 0);
    const a = hub.node('n1');
    const b = hub.node('n2');
    expect(a.quota.acquireConnection('alice')).toBe(true);
    expect(b.quota.acquireConnection('alice')).toBe(true);
    expect(a.quota.acquireConnection('alice')).toBe(false);
    b.quota.releaseConnection('alice');
    expect(a.quota.acquireConnection('alice')).toBe(true);
    expect([a, b, a].map((n) => n.quota.takeBlock('alice'))).toEqual([true, true, true]);
    expect(b.quota.takeBlock('alice')).toBe(false);
  });

  it('a standalone bus publishes to nobody', () => {
    const bus = LocalBus.standalone('solo', limits, () => 0);
    const r = recorder();
    bus.subscribe(r);
    bus.publish({ type: 'presence.sync' });
    expect(r.seen).toEqual([]);
    expect(bus.health()).toEqual({ engine: 'local', ok: true });
  });
});
