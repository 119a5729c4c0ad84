/**
 * Relay behaviour over real TLS 1.3 with mutual authentication on 127.0.0.1: identity
 * binding, key directory, mailbox, receipts, presence, admin endpoints.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientId, prekeyUpload, startHarness, TestClient, type Harness } from './helpers.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ auth: 'mtls' });
});
afterAll(async () => {
  await h.close();
});

describe('relay (mtls)', () => {
  it('binds the connection to the certificate CN and welcomes it', async () => {
    const creds = await h.credentials('carol');
    const c = await TestClient.connect(h, creds);
    const welcome = await c.hello();
    expect(welcome.name).toBe('carol');
    expect(welcome.deviceId).toBe(1);
    expect(welcome.limits.blockBytes).toBe(4096);
    expect(welcome.sessionToken.length).toBe(0); // mtls: no session tokens (certificate per handshake)
    await c.next('mailbox.empty');
    expect(h.audit().some((r) => r.type === 'auth.ok' && r.identity === 'carol')).toBe(true);
    c.close();
  });

  it('hands out the CA-certified key and each one-time prekey once, then warns the owner', async () => {
    const bobCreds = await h.credentials('kbob');
    const bob = await TestClient.connect(h, bobCreds);
    await bob.hello();
    // No one-time keys yet: the owner is told at login.
    expect((await bob.next('prekeys.low')).remainingOneTime).toBe(0);
    bob.send(prekeyUpload(11, bobCreds.identity));
    const alice = await TestClient.connect(h, await h.credentials('kalice'));
    await alice.hello();
    const seen = new Set<number>();
    for (let i = 0; i < 3; i++) {
      alice.send({ type: 'keys.lookup', requestId: i, name: 'kbob' });
      const b = await alice.next('keys.bundle');
      expect(b.requestId).toBe(i);
      expect(b.certificate?.length).toBeGreaterThan(100);
      expect(b.oneTimePrekey).toBeDefined();
      seen.add(b.oneTimePrekey?.id ?? -1);
    }
    expect(seen.size).toBe(3);
    // After the second lookup 9 < 10 remain: the owner is told to replenish, each time.
    expect((await bob.next('prekeys.low')).remainingOneTime).toBe(9);
    expect((await bob.next('prekeys.low')).remainingOneTime).toBe(8);
    // Unknown names get the same generic answer as names without keys (M13).
    alice.send({ type: 'keys.lookup', requestId: 77, name: 'nobody' });
    const e1 = await alice.next('error');
    alice.send({ type: 'keys.lookup', requestId: 78, name: 'kalice' });
    const e2 = await alice.next('error');
    expect([e1.code, e1.requestId]).toEqual(['failed', 77]);
    expect([e2.code, e2.requestId]).toEqual(['failed', 78]);
    alice.close();
    bob.close();
  });

  it('mail acked by an online recipient at once is never stored: the sender hears only "delivered"', async () => {
    const alice = await TestClient.connect(h, await h.credentials('lalice'));
    await alice.hello();
    const bob = await TestClient.connect(h, await h.credentials('lbob'));
    await bob.hello();
    await bob.next('mailbox.empty');
    const acked = async (): Promise<number> => {
      const text = await (await fetch(`http://127.0.0.1:${h.relay.adminPort}/metrics`)).text();
      return Number(/parley_messages_total\{outcome="acked-live"\} (\d+)/.exec(text)?.[1] ?? 0);
    };
    const before = await acked();
    for (let i = 0; i < 3; i++) {
      alice.send({
        type: 'send',
        clientMessageId: clientId(50 + i),
        from: { name: 'lalice', deviceId: 1 },
        to: { name: 'lbob', deviceId: 1 },
        payload: new Uint8Array([i]),
      });
      const d = await bob.next('deliver');
      expect(d.payload).toEqual(new Uint8Array([i]));
      bob.send({ type: 'ack', serverMessageId: d.serverMessageId });
      const r = await alice.next('receipt');
      // "delivered" comes first and alone: no "queued" was sent before it.
      expect([r.status, r.clientMessageId]).toEqual(['delivered', clientId(50 + i)]);
    }
    expect((await acked()) - before).toBe(3);
    alice.close();
    bob.close();
  });

  it('relays to an online recipient with queued and delivered receipts', async () => {
    const alice = await TestClient.connect(h, await h.credentials('ralice'));
    await alice.hello();
    const bob = await TestClient.connect(h, await h.credentials('rbob'));
    await bob.hello();
    const payload = crypto.getRandomValues(new Uint8Array(10_000)); // three blocks
    alice.send({
      type: 'send',
      clientMessageId: clientId(1),
      from: { name: 'ralice', deviceId: 1 },
      to: { name: 'rbob', deviceId: 1 },
      payload,
    });
    const queued = await alice.next('receipt');
    expect(queued.status).toBe('queued');
    const d = await bob.next('deliver');
    expect(d.payload).toEqual(payload);
    expect(d.from).toEqual({ name: 'ralice', deviceId: 1 });
    expect(d.kind).toBe('message');
    expect(d.serverMessageId).toBe(queued.serverMessageId);
    bob.send({ type: 'ack', serverMessageId: d.serverMessageId });
    const delivered = await alice.next('receipt');
    expect(delivered.status).toBe('delivered');
    expect(delivered.clientMessageId).toEqual(clientId(1));
    // A session's end is relayed the same way, with its kind.
    alice.send({
      type: 'session.terminate',
      clientMessageId: clientId(2),
      from: { name: 'ralice', deviceId: 1 },
      to: { name: 'rbob', deviceId: 1 },
      payload: new Uint8Array([1, 2, 3]),
    });
    expect((await bob.next('deliver')).kind).toBe('session.terminate');
    alice.close();
    bob.close();
  });

  it('stores mail for an offline recipient, delivers it in order, and receipts reach an offline sender', async () => {
    const aliceCreds = await h.credentials('oalice');
    const bobCreds = await h.credentials('obob');
    // Bob must be known to the relay (he connected once).
    const bob0 = await TestClient.connect(h, bobCreds);
    await bob0.hello();
    bob0.close();
    const alice = await TestClient.connect(h, aliceCreds);
    await alice.hello();
    for (let i = 0; i < 5; i++) {
      alice.send({
        type: 'send',
        clientMessageId: clientId(100 + i),
        from: { name: 'oalice', deviceId: 1 },
        to: { name: 'obob', deviceId: 1 },
        payload: new Uint8Array([i]),
      });
    }
    for (let i = 0; i < 5; i++) expect((await alice.next('receipt')).status).toBe('queued');
    alice.close();

    const bob = await TestClient.connect(h, bobCreds);
    await bob.hello();
    const got: number[] = [];
    for (let i = 0; i < 5; i++) {
      const d = await bob.next('deliver');
      got.push(d.payload[0] as number);
      bob.send({ type: 'ack', serverMessageId: d.serverMessageId });
    }
    expect(got).toEqual([0, 1, 2, 3, 4]);
    await bob.next('mailbox.empty');
    // A fetch is a sync point: acked mail is gone and nothing is sent again.
    bob.send({ type: 'mailbox.fetch' });
    await bob.next('mailbox.empty');
    expect(bob.has('deliver')).toBe(false);
    bob.close();

    const alice2 = await TestClient.connect(h, aliceCreds);
    await alice2.hello();
    const receipts = [];
    for (let i = 0; i < 5; i++) receipts.push(await alice2.next('receipt.stored'));
    expect(receipts.map((r) => r.status)).toEqual(Array(5).fill('delivered'));
    expect(receipts.map((r) => r.clientMessageId[15])).toEqual([100, 101, 102, 103, 104]);
    alice2.close();
  });

  it('drops a frame with a spoofed sender silently, audits it, and keeps serving', async () => {
    const mallory = await TestClient.connect(h, await h.credentials('mallory'));
    await mallory.hello();
    const victim = await TestClient.connect(h, await h.credentials('victim'));
    await victim.hello();
    await victim.next('mailbox.empty');
    mallory.send({
      type: 'send',
      clientMessageId: clientId(9),
      from: { name: 'victim', deviceId: 1 },
      to: { name: 'victim', deviceId: 1 },
      payload: new Uint8Array([6, 6, 6]),
    });
    // The connection stays usable: a ping is answered after the dropped frame.
    mallory.send({ type: 'ping', timestamp: Date.now() });
    await mallory.next('pong');
    expect(mallory.has('receipt')).toBe(false);
    expect(mallory.has('error')).toBe(false);
    expect(victim.has('deliver')).toBe(false);
    expect(h.audit().some((r) => r.type === 'sender.spoofed' && r.identity === 'mallory')).toBe(
      true,
    );
    mallory.close();
    victim.close();
  });

  it('announces presence and lists who is online', async () => {
    const p1 = await TestClient.connect(h, await h.credentials('pone'));
    await p1.hello();
    const p2 = await TestClient.connect(h, await h.credentials('ptwo'));
    await p2.hello();
    const join = await p1.next('presence');
    expect([join.event, join.name]).toEqual(['join', 'ptwo']);
    p1.send({ type: 'presence.list', requestId: 5 });
    const list = await p1.next('presence.list.result');
    expect(list.names).toContain('pone');
    expect(list.names).toContain('ptwo');
    p2.close();
    let leave;
    do leave = await p1.next('presence');
    while (leave.name !== 'ptwo');
    expect(leave.event).toBe('leave');
    p1.close();
  });

  it('stops broadcasting presence above the configured number of people online', async () => {
    const small = await startHarness({
      auth: 'mtls',
      config: { limits: { presenceBroadcastMaxOnline: 2 } },
    });
    try {
      const a = await TestClient.connect(small, await small.credentials('pa'));
      await a.hello();
      const b = await TestClient.connect(small, await small.credentials('pb'));
      await b.hello();
      expect((await a.next('presence')).name).toBe('pb');
      const c = await TestClient.connect(small, await small.credentials('pc'));
      await c.hello();
      // Three online now: no broadcast; the list still answers.
      a.send({ type: 'presence.list', requestId: 1 });
      expect((await a.next('presence.list.result')).names).toEqual(['pa', 'pb', 'pc']);
      expect(a.has('presence')).toBe(false);
      for (const x of [a, b, c]) x.close();
    } finally {
      await small.close();
    }
  });

  it('serves /healthz and /metrics on the admin listener', async () => {
    const base = `http://127.0.0.1:${h.relay.adminPort}`;
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/parley_blocks_received_total \d+/);
    expect(metrics).toContain('parley_audit_records_total');
  });
});
