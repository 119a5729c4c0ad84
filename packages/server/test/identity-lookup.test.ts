/**
 * docs/wire.md §4.2-4.3 as an outside client reads them, over real TLS 1.3 (mtls) on
 * 127.0.0.1 with real SQLite: `identity.lookup` takes no prekeys, `prekeys.upload` is
 * answered by `prekeys.stored`, and a client that sends `mailbox.fetch` after `welcome`
 * still gets each stored message once (the relay pushes the backlog by itself); the
 * retired `session.request` code is refused like any unknown frame.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeFrame, frameToBlocks } from '@parley/wire';
import {
  clientId,
  prekeyUpload,
  startHarness,
  TestClient,
  until,
  type Harness,
} from './helpers.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ auth: 'mtls' });
});
afterAll(async () => {
  await h.close();
});

/** The owner's one-time stock as the relay reports it: an empty upload is answered with it. */
async function stockOf(owner: TestClient): Promise<[number, number]> {
  owner.send({ type: 'prekeys.upload', oneTime: [], oneTimePq: [] });
  const s = await owner.next('prekeys.stored');
  return [s.remainingOneTime, s.remainingOneTimePq];
}

describe('identity.lookup and prekeys.stored', () => {
  it('answers an upload with prekeys.stored and the stock after it', async () => {
    const creds = await h.credentials('sdana');
    const dana = await TestClient.connect(h, creds);
    await dana.hello();
    dana.send(prekeyUpload(12, creds.identity));
    const stored = await dana.next('prekeys.stored');
    expect([stored.remainingOneTime, stored.remainingOneTimePq]).toEqual([12, 0]);
    // A refused upload (bad signature) gets `error`, not `prekeys.stored`, and stores nothing.
    const bad = prekeyUpload(3, creds.identity);
    const sig = bad.signedPrekey?.signature as Uint8Array;
    sig[0] = (sig[0] as number) ^ 1;
    dana.send(bad);
    expect((await dana.next('error')).code).toBe('failed');
    expect(dana.has('prekeys.stored')).toBe(false);
    expect(await stockOf(dana)).toEqual([12, 0]);
    dana.close();
  });

  it('returns the key, signed DH key and certificate without spending a prekey', async () => {
    const bobCreds = await h.credentials('ibob');
    const bob = await TestClient.connect(h, bobCreds);
    await bob.hello();
    bob.send(prekeyUpload(11, bobCreds.identity));
    await bob.next('prekeys.stored');
    const alice = await TestClient.connect(h, await h.credentials('ialice'));
    await alice.hello();
    for (let i = 0; i < 5; i++) {
      alice.send({ type: 'identity.lookup', requestId: 40 + i, name: 'ibob' });
      const r = await alice.next('identity.result');
      expect(r.requestId).toBe(40 + i);
      expect([r.name, r.deviceId]).toEqual(['ibob', 1]);
      expect(r.identityKey).toEqual(bobCreds.identity.publicKey);
      expect(r.certificate?.length).toBeGreaterThan(100);
    }
    expect(await stockOf(bob)).toEqual([11, 0]);
    // The bundle lookup it replaces does spend one.
    alice.send({ type: 'keys.lookup', requestId: 9, name: 'ibob' });
    const bundle = await alice.next('keys.bundle');
    expect(bundle.identityDh).toBeDefined();
    expect(await stockOf(bob)).toEqual([10, 0]);
    // Unknown names get the uniform answer (M13).
    alice.send({ type: 'identity.lookup', requestId: 77, name: 'nobody' });
    const e = await alice.next('error');
    expect([e.code, e.requestId]).toEqual(['failed', 77]);
    alice.close();
    bob.close();
  });
});

describe('stored mail reaches a docs-following client once', () => {
  it('a mailbox.fetch after welcome re-sends nothing that was pushed', async () => {
    const bobCreds = await h.credentials('mbob');
    const bob0 = await TestClient.connect(h, bobCreds);
    await bob0.hello();
    bob0.close();
    const alice = await TestClient.connect(h, await h.credentials('malice'));
    await alice.hello();
    for (let i = 0; i < 4; i++) {
      alice.send({
        type: 'send',
        clientMessageId: clientId(300 + i),
        from: { name: 'malice', deviceId: 1 },
        to: { name: 'mbob', deviceId: 1 },
        payload: new Uint8Array([i]),
      });
      expect((await alice.next('receipt')).status).toBe('queued');
    }
    alice.close();

    const bob = await TestClient.connect(h, bobCreds);
    await bob.hello();
    // Older docs told clients to ask for the backlog; the relay pushes it anyway, and a
    // fetch is only a sync point (its `mailbox.empty` may coincide with the push's).
    bob.send({ type: 'mailbox.fetch' });
    await bob.next('mailbox.empty');
    bob.send({ type: 'mailbox.fetch' });
    await bob.next('mailbox.empty');
    const ids = bob.frames.flatMap((f) => (f.type === 'deliver' ? [f.serverMessageId] : []));
    const payloads = bob.frames.flatMap((f) => (f.type === 'deliver' ? [f.payload[0]] : []));
    expect(payloads).toEqual([0, 1, 2, 3]);
    expect(new Set(ids).size).toBe(4);
    bob.close();

    // Unacked mail comes again on the next connection, once.
    const bob2 = await TestClient.connect(h, bobCreds);
    await bob2.hello();
    await bob2.next('mailbox.empty');
    await until(() => bob2.frames.filter((f) => f.type === 'deliver').length >= 4, 'redelivery');
    expect(bob2.frames.filter((f) => f.type === 'deliver')).toHaveLength(4);
    bob2.close();
  });
});

describe('retired frame codes', () => {
  it('a session.request (0x07) closes the connection as an unknown frame', async () => {
    const c = await TestClient.connect(h, await h.credentials('rcarol'));
    await c.hello();
    const bytes = encodeFrame({
      type: 'send',
      clientMessageId: clientId(1),
      from: { name: 'rcarol', deviceId: 1 },
      to: { name: 'rcarol', deviceId: 1 },
      payload: new Uint8Array(3),
    });
    bytes[0] = 0x07; // same fields as `send`, the retired code
    const [block] = frameToBlocks(bytes, { streamId: 1 });
    c.sendRaw(block as Uint8Array);
    expect(await c.waitClosed()).toBe(1008);
    expect(
      h.audit().some((r) => r.type === 'frame.malformed' && r.code === 'FRAME_UNKNOWN_TYPE'),
    ).toBe(true);
  });
});
