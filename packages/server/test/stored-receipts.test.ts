/**
 * Receipts kept for an offline sender are delivered at least once (docs/wire.md
 * `receipt.stored`): the relay keeps them until the sender acks them, so a connection
 * that drops before the client applied them loses nothing. Real TLS 1.3 (mtls) on
 * 127.0.0.1, real SQLite in a temp dir.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientId, startHarness, TestClient, until, type Harness } from './helpers.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ auth: 'mtls' });
});
afterAll(async () => {
  await h.close();
});

/** Acks take effect before a later `mailbox.fetch` is answered: this waits for them. */
async function settled(c: TestClient): Promise<void> {
  c.send({ type: 'mailbox.fetch' });
  await c.next('mailbox.empty');
}

describe('receipts kept for an offline sender', () => {
  it('come again after a dropped connection until acked, then never again', async () => {
    const aliceCreds = await h.credentials('kalice');
    const bobCreds = await h.credentials('kbob');
    const bob0 = await TestClient.connect(h, bobCreds);
    await bob0.hello(); // bob is known to the relay from now on
    bob0.close();

    // Alice sends to offline bob: stored, "queued".
    const alice = await TestClient.connect(h, aliceCreds);
    await alice.hello();
    alice.send({
      type: 'send',
      clientMessageId: clientId(7),
      from: { name: 'kalice', deviceId: 1 },
      to: { name: 'kbob', deviceId: 1 },
      payload: new Uint8Array([42]),
    });
    const queued = await alice.next('receipt');
    expect(queued.status).toBe('queued');

    // Bob gets it; alice leaves before bob acks, so "delivered" must be kept for her.
    const bob = await TestClient.connect(h, bobCreds);
    await bob.hello();
    const d = await bob.next('deliver');
    expect(d.serverMessageId).toBe(queued.serverMessageId);
    await bob.next('mailbox.empty');
    alice.close();
    await until(
      () =>
        bob.frames.some((f) => f.type === 'presence' && f.event === 'leave' && f.name === 'kalice'),
      'alice offline',
    );
    bob.send({ type: 'ack', serverMessageId: d.serverMessageId });
    await settled(bob);

    // First connection: the kept receipt arrives marked, and the connection drops
    // before the client acks it.
    const a1 = await TestClient.connect(h, aliceCreds);
    await a1.hello();
    const r1 = await a1.next('receipt.stored');
    expect(r1.status).toBe('delivered');
    expect(r1.clientMessageId).toEqual(clientId(7));
    expect(r1.serverMessageId).toBe(queued.serverMessageId);
    await a1.next('mailbox.empty');
    expect(a1.has('receipt')).toBe(false); // a kept receipt comes only as receipt.stored
    a1.close();

    // Someone else acking that server id settles nothing of alice's.
    bob.send({ type: 'ack', serverMessageId: d.serverMessageId });
    await settled(bob);
    bob.close();

    // Second connection: the receipt comes again; this time the client acks it.
    const a2 = await TestClient.connect(h, aliceCreds);
    await a2.hello();
    const r2 = await a2.next('receipt.stored');
    expect(r2).toEqual(r1);
    // The login's backlog marker first, so that `settled` waits for the answer to its own
    // fetch (which comes after the ack took effect), not for this one.
    await a2.next('mailbox.empty');
    a2.send({ type: 'ack', serverMessageId: r2.serverMessageId });
    await settled(a2);
    a2.close();

    // Third connection: nothing left (the backlog marker comes after kept receipts).
    const a3 = await TestClient.connect(h, aliceCreds);
    await a3.hello();
    await a3.next('mailbox.empty');
    expect(a3.frames.filter((f) => f.type === 'receipt.stored' || f.type === 'receipt')).toEqual(
      [],
    );
    a3.close();
  });

  it('an ack that arrives just before the connection closes still settles the receipt', async () => {
    const aliceCreds = await h.credentials('calice');
    const bobCreds = await h.credentials('cbob');
    const bob = await TestClient.connect(h, bobCreds);
    await bob.hello();
    await bob.next('mailbox.empty');
    const alice = await TestClient.connect(h, aliceCreds);
    await alice.hello();
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) {
      alice.send({
        type: 'send',
        clientMessageId: clientId(20 + i),
        from: { name: 'calice', deviceId: 1 },
        to: { name: 'cbob', deviceId: 1 },
        payload: new Uint8Array([i]),
      });
      ids.push((await bob.next('deliver')).serverMessageId);
    }
    alice.close();
    await until(
      () =>
        bob.frames.some((f) => f.type === 'presence' && f.event === 'leave' && f.name === 'calice'),
      'alice offline',
    );
    for (const id of ids) bob.send({ type: 'ack', serverMessageId: id });
    await settled(bob);
    bob.close();

    const a1 = await TestClient.connect(h, aliceCreds);
    await a1.hello();
    const kept = [];
    for (let i = 0; i < 3; i++) kept.push(await a1.next('receipt.stored'));
    // Oldest first, all "delivered", with the sender's own message ids.
    expect(kept.map((r) => r.serverMessageId)).toEqual(ids);
    expect(kept.map((r) => r.clientMessageId[15])).toEqual([20, 21, 22]);
    expect(kept.every((r) => r.status === 'delivered')).toBe(true);
    // Ack two of them and drop the connection at once.
    a1.send({ type: 'ack', serverMessageId: ids[0] as number });
    a1.send({ type: 'ack', serverMessageId: ids[2] as number });
    a1.ws.close();
    await a1.waitClosed();

    // The acks were applied; only the unacked one comes again. (Bounded retry: the
    // relay applies the acks of a closed connection asynchronously.)
    let again: number[] = [];
    for (let attempt = 0; attempt < 20; attempt++) {
      const a = await TestClient.connect(h, aliceCreds);
      await a.hello();
      await a.next('mailbox.empty');
      again = a.frames.flatMap((f) => (f.type === 'receipt.stored' ? [f.serverMessageId] : []));
      a.close();
      if (again.length === 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(again).toEqual([ids[1]]);
  });
});
