/**
 * The storage contract every RelayStore backend must pass (memory, SQLite, and later
 * PostgreSQL: call `runStoreContract('postgres', () => openPg())` from its test file).
 */
import { describe, expect, it } from 'vitest';
import type { Address, NewGroupMail, NewMail, RelayStore } from '../src/storage/types.js';

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

function groupMail(
  i: number,
  recipients: readonly Address[],
  over: Partial<NewGroupMail> = {},
): NewGroupMail {
  return {
    sender: alice,
    clientMessageId: bytesOf(16, i),
    recipients,
    payload: bytesOf(300, i),
    storedAt: 2000 + i,
    expiresAt: 20_000 + i,
    ...over,
  };
}

/** Registers `n` member devices (group copies go to registered devices only). */
async function registerMembers(store: RelayStore, n: number): Promise<Address[]> {
  const out: Address[] = [];
  for (let i = 0; i < n; i++) {
    const a = { name: `member-${i}`, deviceId: 1 };
    await store.registerDevice({ ...a, identityKey: bytesOf(32, 50 + i), registeredAt: 1 });
    out.push(a);
  }
  return out;
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

    it('stores a group upload as one copy per registered device, in listed order, skipping unknown and full mailboxes', async () => {
      const { store } = await open();
      const members = await registerMembers(store, 4);
      const [m1, m2, m3, m4] = members as [Address, Address, Address, Address];
      // m4's mailbox is at the cap (2) already.
      await store.enqueue(mail(40, { recipient: m4 }), 2);
      await store.enqueue(mail(41, { recipient: m4 }), 2);
      const stranger = { name: 'nobody', deviceId: 1 };
      const sub = await store.submitGroup(
        groupMail(1, [m3, stranger, m1, m3, m2, m4]), // m3 twice: one copy
        2,
      );
      await sub.committed;
      const d = sub.decision;
      if (!d.ok || d.duplicate) throw new Error(`unexpected decision ${JSON.stringify(d)}`);
      expect(d.copies.map((c) => c.recipient)).toEqual([m3, m1, m2]);
      expect(d.unknown).toBe(1);
      expect(d.full).toBe(1);
      const ids = d.copies.map((c) => c.serverMessageId);
      expect([...ids].sort((a, b) => a - b)).toEqual(ids);
      expect(new Set(ids).size).toBe(3);
      for (const [i, r] of [m3, m1, m2].entries()) {
        const got = await store.pending(r, 0, 10);
        expect(got).toHaveLength(1);
        expect(got[0]).toMatchObject({
          serverMessageId: ids[i],
          kind: 'group',
          sender: alice,
          clientMessageId: bytesOf(16, 1),
          payload: bytesOf(300, 1),
        });
      }
      expect(await store.mailboxCount(m4)).toBe(2);
      expect(await store.mailboxCount(stranger)).toBe(0);
      // Nobody listed can take a copy: refused, nothing stored.
      const none = await store.submitGroup(groupMail(2, [stranger, m4]), 2);
      expect(none.decision).toEqual({ ok: false, reason: 'no-recipient', unknown: 1, full: 1 });
      expect(await store.mailboxCount(m4)).toBe(2);
      await store.close();
    });

    it('keeps server ids unique and in call order per recipient across single and group mail', async () => {
      const { store } = await open();
      const [m1, m2] = (await registerMembers(store, 2)) as [Address, Address];
      // Submitted without waiting, as the relay does for a sender's frames.
      const subs = await Promise.all([
        store.submit(mail(1, { recipient: m1 }), 100),
        store.submitGroup(groupMail(2, [m1, m2]), 100),
        store.submit(mail(3, { recipient: m2 }), 100),
        store.submitGroup(groupMail(4, [m2, m1]), 100),
        store.submit(mail(5, { recipient: m1 }), 100),
      ]);
      await Promise.all(subs.map((s) => s.committed));
      const all: number[] = [];
      for (const r of [m1, m2]) {
        const got = await store.pending(r, 0, 10);
        const ids = got.map((m) => m.serverMessageId);
        expect([...ids].sort((a, b) => a - b)).toEqual(ids);
        all.push(...ids);
        // Call order per recipient, told apart by the client message id's fill byte.
        expect(got.map((m) => m.clientMessageId[0])).toEqual(r === m1 ? [1, 2, 4, 5] : [2, 3, 4]);
        expect(got.map((m) => m.kind)).toEqual(
          r === m1 ? ['message', 'group', 'group', 'message'] : ['group', 'message', 'group'],
        );
      }
      expect(new Set(all).size).toBe(7);
      await store.close();
    });

    it('stores a retried group upload once, even after every copy was acked, until it expires', async () => {
      const { store } = await open();
      const members = await registerMembers(store, 3);
      const upload = groupMail(7, members, { expiresAt: 500 });
      // A retry while the first is still committing, and one after.
      const [first, during] = await Promise.all([
        store.submitGroup(upload, 10),
        store.submitGroup(upload, 10),
      ]);
      await Promise.all([first.committed, during.committed]);
      const d = first.decision;
      if (!d.ok || d.duplicate) throw new Error('first upload not stored');
      const firstId = d.copies[0]?.serverMessageId as number;
      expect(during.decision).toEqual({ ok: true, duplicate: true, serverMessageId: firstId });
      const after = await store.submitGroup(upload, 10);
      await after.committed;
      expect(after.decision).toEqual({ ok: true, duplicate: true, serverMessageId: firstId });
      for (const m of members) expect(await store.mailboxCount(m)).toBe(1);
      for (const c of d.copies)
        expect(await store.ack(c.recipient, c.serverMessageId)).toBeDefined();
      const afterAcks = await store.submitGroup(upload, 10);
      await afterAcks.committed;
      expect(afterAcks.decision).toEqual({ ok: true, duplicate: true, serverMessageId: firstId });
      for (const m of members) expect(await store.mailboxCount(m)).toBe(0);
      // Forgotten with its copies' expiry: the same id is then a new upload.
      await store.expire(500);
      const later = await store.submitGroup(upload, 10);
      await later.committed;
      expect(later.decision).toMatchObject({ ok: true, duplicate: false });
      await store.close();
    });

    it('stores all copies of a group upload or none', async () => {
      const { store } = await open();
      const members = await registerMembers(store, 4);
      // A row that the third copy would clash with (same sender, id and recipient).
      await store.enqueue(mail(9, { recipient: members[2] as Address }), 10);
      const outcome = await store
        .submitGroup(groupMail(9, members), 10)
        .then(
          (s) => s.committed.then(() => 'stored'),
          () => 'refused',
        )
        .catch(() => 'failed');
      expect(['refused', 'failed']).toContain(outcome);
      expect(await store.mailboxCount(members[0] as Address)).toBe(0);
      expect(await store.mailboxCount(members[1] as Address)).toBe(0);
      expect(await store.mailboxCount(members[2] as Address)).toBe(1);
      expect(await store.mailboxCount(members[3] as Address)).toBe(0);
      // Nothing was remembered either: the store is usable and the upload is new later.
      await store.ack(
        members[2] as Address,
        (await store.pending(members[2] as Address, 0, 1))[0]?.serverMessageId as number,
      );
      const again = await store.submitGroup(groupMail(9, members), 10);
      await again.committed;
      expect(again.decision).toMatchObject({ ok: true, duplicate: false });
      for (const m of members) expect(await store.mailboxCount(m)).toBe(1);
      await store.close();
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
