/**
 * The storage contract every RelayStore backend must pass (memory, SQLite, and later
 * PostgreSQL: call `runStoreContract('postgres', () => openPg())` from its test file).
 */
import { describe, expect, it } from 'vitest';
import type { Address, NewMail, RelayStore } from '../src/storage/types.js';

const alice: Address = { name: 'alice', deviceId: 1 };
const bob: Address = { name: 'bob', deviceId: 1 };
const bytesOf = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);

function mail(i: number, over: Partial<NewMail> = {}): NewMail {
  return {
    recipient: bob,
    sender: alice,
    clientMessageId: bytesOf(16, i),
    kind: 'message',
    payload: bytesOf(100 + i, i),
    storedAt: 1000 + i,
    expiresAt: 10_000 + i,
    ...over,
  };
}

export function runStoreContract(
  backend: string,
  open: () => Promise<{ store: RelayStore; reopen?: () => Promise<RelayStore> }>,
): void {
  describe(`RelayStore contract: ${backend}`, () => {
    it('registers a device once and never replaces its key on register', async () => {
      const { store } = await open();
      const k1 = bytesOf(32, 1);
      const r1 = await store.registerDevice({ ...alice, identityKey: k1, registeredAt: 5 });
      expect(r1.created).toBe(true);
      const r2 = await store.registerDevice({
        ...alice,
        identityKey: bytesOf(32, 2),
        registeredAt: 6,
      });
      expect(r2.created).toBe(false);
      expect(r2.device.identityKey).toEqual(k1);
      expect((await store.getDevice(alice))?.identityKey).toEqual(k1);
      expect(await store.getDevice(bob)).toBeUndefined();
      await store.upsertDevice({
        ...alice,
        identityKey: bytesOf(32, 3),
        certificate: bytesOf(9, 9),
        registeredAt: 7,
      });
      const d = await store.getDevice(alice);
      expect(d?.identityKey).toEqual(bytesOf(32, 3));
      expect(d?.certificate).toEqual(bytesOf(9, 9));
      expect((await store.listDevices('alice')).map((x) => x.deviceId)).toEqual([1]);
      await store.close();
    });

    it("a new identity key for a device drops the old key's prekeys; a new certificate alone keeps them", async () => {
      const { store } = await open();
      const carol = { name: 'carol', deviceId: 1 };
      const sig = (n: number) => ({ id: n, publicKey: bytesOf(32, n), signature: bytesOf(64, n) });
      expect(
        await store.upsertDevice({ ...carol, identityKey: bytesOf(32, 1), registeredAt: 1 }),
      ).toBe(false);
      await store.putPrekeys(carol, {
        identityDh: { publicKey: bytesOf(32, 4), signature: bytesOf(64, 4) },
        signedPrekey: sig(1),
        pqLastResort: sig(2),
        oneTime: [{ id: 3, publicKey: bytesOf(32, 3) }],
      });
      const renewed = {
        ...carol,
        identityKey: bytesOf(32, 1),
        certificate: bytesOf(9, 1),
        registeredAt: 2,
      };
      expect(await store.upsertDevice(renewed)).toBe(false);
      expect((await store.countPrekeys(carol)).oneTime).toBe(1);
      expect(
        await store.upsertDevice({ ...carol, identityKey: bytesOf(32, 2), registeredAt: 3 }),
      ).toBe(true);
      expect((await store.countPrekeys(carol)).oneTime).toBe(0);
      expect(await store.takePrekeyBundle(carol)).toBeUndefined();
      expect((await store.getDevice(carol))?.identityKey).toEqual(bytesOf(32, 2));
      await store.close();
    });

    it('hands out each one-time prekey once, then falls back to the last-resort PQ key', async () => {
      const { store } = await open();
      await store.registerDevice({ ...bob, identityKey: bytesOf(32, 7), registeredAt: 1 });
      expect(await store.takePrekeyBundle(bob)).toBeUndefined();
      await store.putPrekeys(bob, {
        signedPrekey: { id: 1, publicKey: bytesOf(32, 1), signature: bytesOf(64, 1) },
        pqLastResort: { id: 2, publicKey: bytesOf(1184, 2), signature: bytesOf(64, 2) },
      });
      // No bundle until the identity DH key is there too.
      expect(await store.takePrekeyBundle(bob)).toBeUndefined();
      await store.putPrekeys(bob, {
        identityDh: { publicKey: bytesOf(32, 5), signature: bytesOf(64, 5) },
        oneTime: [
          { id: 10, publicKey: bytesOf(32, 10) },
          { id: 11, publicKey: bytesOf(32, 11) },
        ],
        oneTimePq: [{ id: 20, publicKey: bytesOf(1184, 20), signature: bytesOf(64, 20) }],
      });
      // Re-uploading an id already present must not duplicate it.
      await store.putPrekeys(bob, { oneTime: [{ id: 10, publicKey: bytesOf(32, 10) }] });
      expect(await store.countPrekeys(bob)).toEqual({ oneTime: 2, oneTimePq: 1 });
      const seen = new Set<number>();
      const b1 = await store.takePrekeyBundle(bob);
      expect(b1?.pqPrekey.id).toBe(20);
      expect(b1?.pqPrekeyIsLastResort).toBe(false);
      expect(b1?.remainingOneTime).toBe(1);
      seen.add(b1?.oneTimePrekey?.id ?? -1);
      const b2 = await store.takePrekeyBundle(bob);
      expect(b2?.pqPrekey.id).toBe(2);
      expect(b2?.pqPrekeyIsLastResort).toBe(true);
      seen.add(b2?.oneTimePrekey?.id ?? -1);
      expect(seen).toEqual(new Set([10, 11]));
      const b3 = await store.takePrekeyBundle(bob);
      expect(b3?.oneTimePrekey).toBeUndefined();
      expect(b3?.signedPrekey.publicKey).toEqual(bytesOf(32, 1));
      expect(b3?.device.identityKey).toEqual(bytesOf(32, 7));
      expect(b3?.identityDh).toEqual({ publicKey: bytesOf(32, 5), signature: bytesOf(64, 5) });
      expect(await store.countPrekeys(bob)).toEqual({ oneTime: 0, oneTimePq: 0 });
      await store.close();
    });

    it('reads the identity DH key without consuming any prekey', async () => {
      const { store } = await open();
      await store.registerDevice({ ...bob, identityKey: bytesOf(32, 7), registeredAt: 1 });
      expect(await store.getIdentityDh(bob)).toBeUndefined();
      await store.putPrekeys(bob, {
        identityDh: { publicKey: bytesOf(32, 5), signature: bytesOf(64, 5) },
        oneTime: [{ id: 10, publicKey: bytesOf(32, 10) }],
        oneTimePq: [{ id: 20, publicKey: bytesOf(32, 20), signature: bytesOf(64, 20) }],
      });
      for (let i = 0; i < 3; i++) {
        expect(await store.getIdentityDh(bob)).toEqual({
          publicKey: bytesOf(32, 5),
          signature: bytesOf(64, 5),
        });
      }
      expect(await store.countPrekeys(bob)).toEqual({ oneTime: 1, oneTimePq: 1 });
      await store.close();
    });

    it('concurrent lookups never share a one-time key', async () => {
      const { store } = await open();
      await store.registerDevice({ ...bob, identityKey: bytesOf(32, 7), registeredAt: 1 });
      await store.putPrekeys(bob, {
        identityDh: { publicKey: bytesOf(32, 5), signature: bytesOf(64, 5) },
        signedPrekey: { id: 1, publicKey: bytesOf(32, 1), signature: bytesOf(64, 1) },
        pqLastResort: { id: 2, publicKey: bytesOf(32, 2), signature: bytesOf(64, 2) },
        oneTime: Array.from({ length: 20 }, (_, i) => ({ id: 100 + i, publicKey: bytesOf(32, i) })),
      });
      const bundles = await Promise.all(
        Array.from({ length: 30 }, () => store.takePrekeyBundle(bob)),
      );
      const ids = bundles.map((b) => b?.oneTimePrekey?.id).filter((x) => x !== undefined);
      expect(ids).toHaveLength(20);
      expect(new Set(ids).size).toBe(20);
      await store.close();
    });

    it('keeps mail in order, deletes only on ack by the recipient, and enforces the cap', async () => {
      const { store } = await open();
      const results = await Promise.all([1, 2, 3, 4].map((i) => store.enqueue(mail(i), 3)));
      expect(results.map((r) => r.ok)).toEqual([true, true, true, false]);
      const ids = results.flatMap((r) => (r.ok ? [r.serverMessageId] : []));
      expect([...ids].sort((a, b) => a - b)).toEqual(ids);
      const pending = await store.pending(bob, 0, 10);
      expect(pending.map((m) => m.serverMessageId)).toEqual(ids);
      expect(pending[1]?.payload).toEqual(bytesOf(102, 2));
      expect(pending[1]?.clientMessageId).toEqual(bytesOf(16, 2));
      expect(pending[1]?.sender).toEqual(alice);
      expect(await store.pending(bob, ids[0] as number, 10)).toHaveLength(2);
      expect(await store.pending(alice, 0, 10)).toHaveLength(0);
      // Only the recipient can ack.
      expect(await store.ack(alice, ids[0] as number)).toBeUndefined();
      const acked = await store.ack(bob, ids[0] as number);
      expect(acked?.clientMessageId).toEqual(bytesOf(16, 1));
      expect(await store.ack(bob, ids[0] as number)).toBeUndefined();
      expect(await store.mailboxCount(bob)).toBe(2);
      // Server ids are never reused after deletion.
      const r = await store.enqueue(mail(9), 3);
      expect(r.ok && r.serverMessageId > (ids[2] as number)).toBe(true);
      await store.close();
    });

    it('stores a retried client message id once and returns the original server id', async () => {
      const { store } = await open();
      const [a, b] = await Promise.all([store.enqueue(mail(1), 10), store.enqueue(mail(1), 10)]);
      const c = await store.enqueue(mail(1), 10);
      expect(a).toMatchObject({ ok: true, duplicate: false });
      const id = a.ok ? a.serverMessageId : -1;
      expect(b).toEqual({ ok: true, serverMessageId: id, duplicate: true });
      expect(c).toEqual({ ok: true, serverMessageId: id, duplicate: true });
      // Another sender may use the same id.
      const d = await store.enqueue(mail(1, { sender: { name: 'carol', deviceId: 1 } }), 10);
      expect(d).toMatchObject({ ok: true, duplicate: false });
      expect(await store.mailboxCount(bob)).toBe(2);
      await store.close();
    });

    it('submit decides in call order before the commit; acks may overtake the commit', async () => {
      const { store, reopen } = await open();
      const a = await store.submit(mail(1), 10);
      const b = await store.submit(mail(2), 10);
      const again = await store.submit(mail(1), 10);
      expect(a.decision).toMatchObject({ ok: true, duplicate: false });
      expect(b.decision).toMatchObject({ ok: true, duplicate: false });
      const idA = a.decision.ok ? a.decision.serverMessageId : -1;
      const idB = b.decision.ok ? b.decision.serverMessageId : -1;
      expect(idB).toBeGreaterThan(idA);
      expect(again.decision).toEqual({ ok: true, serverMessageId: idA, duplicate: true });
      // The recipient got `a` live and acks it before (or as) it is committed.
      const acked = await store.ack(bob, idA);
      expect(acked?.clientMessageId).toEqual(bytesOf(16, 1));
      await Promise.all([a.committed, b.committed, again.committed]);
      expect((await store.pending(bob, 0, 10)).map((m) => m.serverMessageId)).toEqual([idB]);
      const full = await store.submit(mail(3), 1);
      expect(full.decision).toEqual({ ok: false, reason: 'mailbox-full' });
      if (reopen) {
        await store.close();
        const again2 = await reopen();
        // Ids handed out are never reused, even for mail that never reached the disk.
        const c = await again2.enqueue(mail(4), 10);
        expect(c.ok && c.serverMessageId > idB).toBe(true);
        await again2.close();
      } else {
        await store.close();
      }
    });

    it('expires mail at its expiry time', async () => {
      const { store } = await open();
      await store.enqueue(mail(1, { expiresAt: 50 }), 10);
      await store.enqueue(mail(2, { expiresAt: 100 }), 10);
      expect(await store.expire(49)).toBe(0);
      expect(await store.expire(50)).toBe(1);
      expect((await store.pending(bob, 0, 10)).map((m) => m.expiresAt)).toEqual([100]);
      await store.close();
    });

    it('keeps receipts for offline senders, bounded, until settled by server id', async () => {
      const { store } = await open();
      for (let i = 0; i < 5; i++) {
        await store.addReceipt(
          alice,
          {
            clientMessageId: bytesOf(16, i),
            status: i % 2 ? 'delivered' : 'queued',
            serverMessageId: 100 + i,
            timestamp: i,
          },
          3,
        );
      }
      const got = await store.pendingReceipts(alice, 0, 10);
      expect(got.map((r) => r.serverMessageId)).toEqual([102, 103, 104]);
      expect(got[1]?.status).toBe('delivered');
      expect(got[1]?.clientMessageId).toEqual(bytesOf(16, 3));
      expect(await store.pendingReceipts(bob, 0, 10)).toHaveLength(0);
      // Reading is not consuming (at-least-once): a second read sees the same receipts.
      expect((await store.pendingReceipts(alice, 0, 10)).map((r) => r.serverMessageId)).toEqual([
        102, 103, 104,
      ]);
      // The cursor pages in storage order.
      const first = got[0]?.receiptId as number;
      expect((await store.pendingReceipts(alice, first, 1)).map((r) => r.serverMessageId)).toEqual([
        103,
      ]);
      // Only the sender's own receipt with that server id goes.
      expect(await store.settleReceipt(bob, 103)).toBe(0);
      expect(await store.settleReceipt(alice, 103)).toBe(1);
      expect(await store.settleReceipt(alice, 103)).toBe(0);
      expect((await store.pendingReceipts(alice, 0, 10)).map((r) => r.serverMessageId)).toEqual([
        102, 104,
      ]);
      await store.close();
    });

    it('keeps an unsettled receipt across reopening and forgets a settled one (durable backends)', async () => {
      const { store, reopen } = await open();
      if (!reopen) {
        expect(reopen).toBeUndefined();
        await store.close();
        return;
      }
      for (const id of [7, 8]) {
        const receipt = {
          clientMessageId: bytesOf(16, id),
          status: 'delivered' as const,
          serverMessageId: id,
          timestamp: id,
        };
        await store.addReceipt(alice, receipt, 10);
      }
      expect(await store.pendingReceipts(alice, 0, 10)).toHaveLength(2);
      expect(await store.settleReceipt(alice, 7)).toBe(1);
      await store.close();
      const again = await reopen();
      expect((await again.pendingReceipts(alice, 0, 10)).map((r) => r.serverMessageId)).toEqual([
        8,
      ]);
      await again.close();
    });

    it('survives reopening (durable backends)', async () => {
      const { store, reopen } = await open();
      if (!reopen) {
        expect(reopen).toBeUndefined();
        await store.close();
        return;
      }
      await store.registerDevice({ ...bob, identityKey: bytesOf(32, 7), registeredAt: 1 });
      const r = await store.enqueue(mail(1), 10);
      expect(r.ok).toBe(true);
      await store.close();
      const again = await reopen();
      expect((await again.pending(bob, 0, 10)).map((m) => m.payload)).toEqual([bytesOf(101, 1)]);
      expect((await again.getDevice(bob))?.identityKey).toEqual(bytesOf(32, 7));
      await again.close();
    });
  });
}
