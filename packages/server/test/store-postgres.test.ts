/**
 * The store contract on a real PostgreSQL server, plus what matters once several relay
 * nodes (several stores, each with its own pool) share one database.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresStore } from '../src/storage/postgres.js';
import type { Address, NewMail } from '../src/storage/types.js';
import { startPostgres, type TestPostgres } from './pg-server.js';
import { runStoreContract } from './store-contract.js';

let server: TestPostgres;
const opened: PostgresStore[] = [];
beforeAll(async () => {
  server = await startPostgres();
}, 120_000);
afterAll(async () => {
  for (const s of opened) await s.close().catch(() => undefined);
  await server?.destroy();
}, 60_000);

async function openStore(url: string, poolSize = 4): Promise<PostgresStore> {
  const s = await PostgresStore.open({ url, poolSize });
  opened.push(s);
  return s;
}

runStoreContract('postgres', async () => {
  const url = server.url(await server.createDatabase());
  return { store: await openStore(url), reopen: () => openStore(url) };
});

const bob: Address = { name: 'bob', deviceId: 1 };
const mail = (sender: string, i: number, over: Partial<NewMail> = {}): NewMail => ({
  recipient: bob,
  sender: { name: sender, deviceId: 1 },
  clientMessageId: new Uint8Array(16).fill(i % 256).map((b, j) => (j === 0 ? i >> 8 : b)),
  kind: 'message',
  payload: new Uint8Array([i & 255, i >> 8]),
  storedAt: 1,
  expiresAt: 2 ** 40,
  ...over,
});

describe('PostgresStore shared by several nodes', () => {
  const NODES = 3;
  const nodes = async (): Promise<PostgresStore[]> => {
    const url = server.url(await server.createDatabase('nodes'));
    const out: PostgresStore[] = [];
    // Opened at once: migrations must serialise, not collide.
    out.push(...(await Promise.all(Array.from({ length: NODES }, () => openStore(url)))));
    return out;
  };

  it('hands out each one-time prekey once under concurrent lookups on several nodes', async () => {
    const [a, b, c] = (await nodes()) as [PostgresStore, PostgresStore, PostgresStore];
    await a.registerDevice({ ...bob, identityKey: new Uint8Array(32).fill(7), registeredAt: 1 });
    const KEYS = 40;
    await a.putPrekeys(bob, {
      identityDh: { publicKey: new Uint8Array(32).fill(5), signature: new Uint8Array(64) },
      signedPrekey: { id: 1, publicKey: new Uint8Array(32).fill(1), signature: new Uint8Array(64) },
      pqLastResort: { id: 2, publicKey: new Uint8Array(32).fill(2), signature: new Uint8Array(64) },
      oneTime: Array.from({ length: KEYS }, (_, i) => ({
        id: 1000 + i,
        publicKey: new Uint8Array(32).fill(i),
      })),
      oneTimePq: Array.from({ length: KEYS / 2 }, (_, i) => ({
        id: 2000 + i,
        publicKey: new Uint8Array(32).fill(i),
        signature: new Uint8Array(64),
      })),
    });
    const bundles = await Promise.all(
      Array.from({ length: 60 }, (_, i) => [a, b, c][i % 3]!.takePrekeyBundle(bob)),
    );
    const ec = bundles.flatMap((x) => (x?.oneTimePrekey ? [x.oneTimePrekey.id] : []));
    const pq = bundles.flatMap((x) => (x && !x.pqPrekeyIsLastResort ? [x.pqPrekey.id] : []));
    expect(ec).toHaveLength(KEYS);
    expect(new Set(ec).size).toBe(KEYS);
    expect(pq).toHaveLength(KEYS / 2);
    expect(new Set(pq).size).toBe(KEYS / 2);
    expect(bundles.every((x) => x !== undefined)).toBe(true);
    expect(await c.countPrekeys(bob)).toEqual({ oneTime: 0, oneTimePq: 0 });
  });

  it('server ids are unique and each sender keeps its order when nodes insert at once', async () => {
    const stores = await nodes();
    const PER_NODE = 40;
    // Each node carries one sender and sends its messages in order (awaiting each).
    const sent = await Promise.all(
      stores.map(async (s, n) => {
        const ids: number[] = [];
        for (let i = 0; i < PER_NODE; i++) {
          const r = await s.enqueue(mail(`sender${n}`, i), 10_000);
          if (!r.ok || r.duplicate) throw new Error('not stored');
          ids.push(r.serverMessageId);
        }
        return ids;
      }),
    );
    const all = sent.flat();
    expect(new Set(all).size).toBe(NODES * PER_NODE);
    for (const ids of sent) expect([...ids].sort((x, y) => x - y)).toEqual(ids);
    const pending = await stores[0]!.pending(bob, 0, 10_000);
    expect(pending.map((m) => m.serverMessageId)).toEqual([...all].sort((x, y) => x - y));
    for (let n = 0; n < NODES; n++) {
      const mine = pending.filter((m) => m.sender.name === `sender${n}`);
      expect(mine.map((m) => m.payload[0])).toEqual(
        Array.from({ length: PER_NODE }, (_, i) => i & 255),
      );
    }
  });

  it('a reader paging by server id while nodes insert never skips an item', async () => {
    const stores = await nodes();
    const PER_NODE = 40;
    let writing = true;
    const writers = Promise.all(
      stores.map(async (s, n) => {
        await Promise.all(
          Array.from({ length: PER_NODE }, (_, i) => s.enqueue(mail(`w${n}`, i), 10_000)),
        );
      }),
    ).finally(() => {
      writing = false;
    });
    const seen: number[] = [];
    let cursor = 0;
    // Bounded: the writers finish, then one last page drains the rest.
    for (let round = 0; round < 100_000; round++) {
      const done = !writing;
      const page = await stores[round % NODES]!.pending(bob, cursor, 7);
      for (const m of page) seen.push(m.serverMessageId);
      cursor = page.at(-1)?.serverMessageId ?? cursor;
      if (done && page.length < 7) break;
    }
    await writers;
    expect(seen).toHaveLength(NODES * PER_NODE);
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('the mailbox cap holds across nodes and a retry on another node is a duplicate', async () => {
    const stores = await nodes();
    const CAP = 10;
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => stores[i % NODES]!.enqueue(mail('s', i), CAP)),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(CAP);
    expect(await stores[1]!.mailboxCount(bob)).toBe(CAP);
    const first = results.findIndex((r) => r.ok);
    const original = results[first]!;
    // The same client message id retried through each node: stored once, same id.
    const retries = await Promise.all(stores.map((s) => s.enqueue(mail('s', first), CAP)));
    for (const r of retries) expect(r).toEqual({ ...original, duplicate: true });
  });

  it('a group upload retried on several nodes at once is stored once, one copy per member beside other mail', async () => {
    const stores = await nodes();
    const members: Address[] = Array.from({ length: 20 }, (_, i) => ({
      name: `m${i}`,
      deviceId: 1,
    }));
    for (const m of members) {
      await stores[0]!.registerDevice({ ...m, identityKey: new Uint8Array(32), registeredAt: 1 });
    }
    const upload = (i: number, to: readonly Address[]) => ({
      sender: { name: 'alice', deviceId: 1 },
      clientMessageId: new Uint8Array(16).fill(i),
      recipients: to,
      payload: new Uint8Array([i]),
      storedAt: 1,
      expiresAt: 2 ** 40,
    });
    // The same upload through every node at once, while another upload in the reverse
    // order of members and single mail to them are being stored too.
    const [groups, singles] = await Promise.all([
      Promise.all([
        ...stores.map((s) => s.submitGroup(upload(1, members), 100)),
        stores[1]!.submitGroup(upload(2, [...members].reverse()), 100),
      ]),
      Promise.all(
        members.map((m, i) => stores[i % 3]!.submit(mail('carol', i, { recipient: m }), 100)),
      ),
    ]);
    await Promise.all([...groups, ...singles].map((x) => x.committed));
    const firsts = groups.slice(0, stores.length).map((x) => x.decision);
    const firstIds = firsts.flatMap((d) =>
      d.ok && !d.duplicate ? [d.copies[0]?.serverMessageId] : [],
    );
    expect(firstIds).toHaveLength(1);
    for (const d of firsts) {
      if (d.ok && d.duplicate) expect(d.serverMessageId).toBe(firstIds[0]);
    }
    for (const m of members) {
      const got = await stores[2]!.pending(m, 0, 10);
      expect(new Set(got.map((x) => x.serverMessageId)).size).toBe(got.length);
      // One copy of each upload and the single message, nothing twice.
      expect(
        got
          .filter((x) => x.kind === 'group')
          .map((x) => x.payload[0])
          .sort(),
      ).toEqual([1, 2]);
      expect(got.filter((x) => x.kind === 'message')).toHaveLength(1);
    }
  });

  it('expiry on one node removes the mail for every node', async () => {
    const [a, b] = (await nodes()) as [PostgresStore, PostgresStore];
    await a.enqueue(mail('s', 1, { expiresAt: 50 }), 10);
    await b.enqueue(mail('s', 2, { expiresAt: 100 }), 10);
    await a.enqueue(mail('s', 3, { expiresAt: 100 }), 10);
    expect(await b.expire(50)).toBe(1);
    expect(await a.expire(50)).toBe(0);
    expect((await a.pending(bob, 0, 10)).map((m) => m.payload[0])).toEqual([2, 3]);
    expect(await b.expire(100)).toBe(2);
    expect(await a.mailboxCount(bob)).toBe(0);
  });

  it('decides each item of one group commit as if alone, in call order', async () => {
    const [s] = (await nodes()) as [PostgresStore];
    // The first call commits alone; the rest queue behind it and share one transaction.
    const [first, ...rest] = await Promise.all([
      s.enqueue(mail('x', 1), 3),
      s.enqueue(mail('x', 2), 3),
      s.enqueue(mail('x', 2), 3),
      s.enqueue(mail('x', 3), 3),
      s.enqueue(mail('x', 4), 3),
      s.enqueue(mail('x', 1), 3),
    ]);
    const id = (r: typeof first | undefined): number => (r?.ok === true ? r.serverMessageId : -1);
    const [two, twoAgain, three, four, oneAgain] = rest;
    expect(first).toMatchObject({ ok: true, duplicate: false });
    expect(two).toMatchObject({ ok: true, duplicate: false });
    expect(id(two)).toBeGreaterThan(id(first));
    expect(twoAgain).toEqual({ ok: true, serverMessageId: id(two), duplicate: true });
    expect(three).toMatchObject({ ok: true, duplicate: false });
    expect(id(three)).toBeGreaterThan(id(two));
    expect(four).toEqual({ ok: false, reason: 'mailbox-full' });
    // A retry of stored mail is answered as such even when the mailbox is full.
    expect(oneAgain).toEqual({ ok: true, serverMessageId: id(first), duplicate: true });
    expect((await s.pending(bob, 0, 10)).map((m) => m.payload[0])).toEqual([1, 2, 3]);
  });

  it("an ack that overtakes its item's commit on the same node still deletes it", async () => {
    const [s] = (await nodes()) as [PostgresStore];
    for (let i = 0; i < 5; i++) {
      // The id is known before COMMIT returned (the relay hands the item over live then).
      const sub = await s.submit(mail('live', i), 10);
      const id = sub.decision.ok ? sub.decision.serverMessageId : -1;
      const acked = await s.ack(bob, id);
      expect(acked?.serverMessageId).toBe(id);
      await expect(sub.committed).resolves.toBe('stored');
    }
    expect(await s.mailboxCount(bob)).toBe(0);
  });
});

describe('PostgresStore holding live mail for its ack', () => {
  const carol: Address = { name: 'carol', deviceId: 1 };
  const idOf = (s: { decision: { ok: boolean } }): number =>
    'serverMessageId' in s.decision ? (s.decision.serverMessageId as number) : -1;
  const fresh = async (): Promise<{ store: PostgresStore; url: string }> => {
    const url = server.url(await server.createDatabase('held'));
    return { store: await openStore(url), url };
  };

  it('an ack within the hold cancels the write: nothing ever reaches the database', async () => {
    const { store, url } = await fresh();
    const s = await store.submit(mail('alice', 1), 10, { holdMs: 60_000 });
    expect(s.idDurable).toBe(true);
    expect(await store.mailboxCount(bob)).toBe(0);
    const item = await store.ack(bob, idOf(s));
    expect(item?.payload).toEqual(new Uint8Array([1, 0]));
    await expect(s.committed).resolves.toBe('acked');
    // A second ack finds nothing; someone else's ack of the id finds nothing either.
    expect(await store.ack(bob, idOf(s))).toBeUndefined();
    expect(await store.ack(carol, idOf(s))).toBeUndefined();
    await store.close();
    const again = await openStore(url);
    expect(await again.mailboxCount(bob)).toBe(0);
  });

  it('only the recipient can ack held mail; without an ack it is stored when the hold ends', async () => {
    const { store, url } = await fresh();
    const s = await store.submit(mail('alice', 2), 10, { holdMs: 30 });
    expect(await store.ack(carol, idOf(s))).toBeUndefined();
    await expect(s.committed).resolves.toBe('stored');
    expect((await store.pending(bob, 0, 10)).map((m) => m.serverMessageId)).toEqual([idOf(s)]);
    // A retry of a held-then-stored message is a duplicate with the original id, on this
    // node and on another one.
    const retry = await store.submit(mail('alice', 2), 10, { holdMs: 30 });
    expect(retry.decision).toEqual({ ok: true, serverMessageId: idOf(s), duplicate: true });
    const other = await openStore(url);
    const there = await other.submit(mail('alice', 2), 10, { holdMs: 30 });
    expect(there.decision).toEqual({ ok: true, serverMessageId: idOf(s), duplicate: true });
    await store.close();
    expect(await other.mailboxCount(bob)).toBe(1);
  });

  it("keeps one recipient's commits in id order when held and unheld mail mix", async () => {
    const { store } = await fresh();
    const order: number[] = [];
    const held = await store.submit(mail('alice', 3), 10, { holdMs: 60_000 });
    const other = await store.submit(mail('alice', 4, { recipient: carol }), 10, {
      holdMs: 60_000,
    });
    const unheld = await store.submit(mail('alice', 5), 10);
    expect(idOf(unheld)).toBeGreaterThan(idOf(held));
    const track = (x: typeof held): Promise<void> =>
      x.committed.then((o) => {
        expect(o).toBe('stored');
        order.push(idOf(x));
      });
    // Bob's unheld mail writes his earlier held mail first; Carol's stays held.
    await Promise.all([track(held), track(unheld)]);
    expect(order).toEqual([idOf(held), idOf(unheld)]);
    expect((await store.pending(bob, 0, 10)).map((m) => m.serverMessageId)).toEqual([
      idOf(held),
      idOf(unheld),
    ]);
    expect(await store.mailboxCount(carol)).toBe(0);
    // Closing writes what is still held: nothing accepted is lost on shutdown.
    await store.close();
    await expect(other.committed).resolves.toBe('stored');
  });

  it("writeNow ends the recipient's holds at once, in id order; held mail counts against the cap", async () => {
    const { store } = await fresh();
    const a = await store.submit(mail('alice', 6), 2, { holdMs: 60_000 });
    const b = await store.submit(mail('alice', 7), 2, { holdMs: 60_000 });
    const c = await store.submit(mail('alice', 8, { recipient: carol }), 2, { holdMs: 60_000 });
    const full = await store.submit(mail('alice', 9), 2, { holdMs: 60_000 });
    expect(full.decision).toEqual({ ok: false, reason: 'mailbox-full' });
    b.writeNow?.();
    await expect(a.committed).resolves.toBe('stored');
    await expect(b.committed).resolves.toBe('stored');
    expect((await store.pending(bob, 0, 10)).map((m) => m.serverMessageId)).toEqual([
      idOf(a),
      idOf(b),
    ]);
    expect((await store.ack(bob, idOf(b)))?.serverMessageId).toBe(idOf(b));
    expect(await store.mailboxCount(bob)).toBe(1);
    // Carol's stays held until her ack, which then leaves nothing to delete.
    expect((await store.ack(carol, idOf(c)))?.serverMessageId).toBe(idOf(c));
    await expect(c.committed).resolves.toBe('acked');
    expect(await store.mailboxCount(carol)).toBe(0);
  });

  it('a held id is never drawn again, by this node or another', async () => {
    const { store, url } = await fresh();
    const other = await openStore(url);
    const held = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        store.submit(mail('h', i, { recipient: carol }), 100, { holdMs: 60_000 }),
      ),
    );
    const stored = await Promise.all(
      Array.from({ length: 20 }, (_, i) => other.enqueue(mail('s', i), 100)),
    );
    const ids = [...held.map(idOf), ...stored.map((r) => (r.ok ? r.serverMessageId : -1))];
    expect(ids.every((id) => id > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    for (const h of held) expect(h.decision).toMatchObject({ ok: true, duplicate: false });
  });
});

describe('PostgresStore group-committed acks and receipts', () => {
  it('concurrent acks, receipts and settles are each answered as if alone', async () => {
    const s = await openStore(server.url(await server.createDatabase('small')));
    const alice: Address = { name: 'alice', deviceId: 1 };
    const ids: number[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await s.enqueue(mail('alice', i), 100);
      ids.push(r.ok ? r.serverMessageId : -1);
    }
    // The same ack twice, someone else's ack, and acks of distinct items, all at once.
    const [first, twice, other, ...rest] = await Promise.all([
      s.ack(bob, ids[0]!),
      s.ack(bob, ids[0]!),
      s.ack(alice, ids[1]!),
      ...ids.slice(1).map((id) => s.ack(bob, id)),
    ]);
    expect([first?.serverMessageId, twice, other]).toEqual([ids[0], undefined, undefined]);
    expect(rest.map((m) => m?.serverMessageId)).toEqual(ids.slice(1));
    expect(await s.mailboxCount(bob)).toBe(0);

    // Twenty receipts for one sender at once, at most five kept: the newest five.
    const receipt = (n: number) => ({
      clientMessageId: new Uint8Array(16).fill(n),
      status: 'delivered' as const,
      serverMessageId: 1000 + n,
      timestamp: n,
    });
    await Promise.all(Array.from({ length: 20 }, (_, n) => s.addReceipt(alice, receipt(n), 5)));
    const kept = await s.pendingReceipts(alice, 0, 100);
    expect(kept.map((r) => r.serverMessageId)).toEqual([1015, 1016, 1017, 1018, 1019]);
    const settled = await Promise.all([
      s.settleReceipt(alice, 1015),
      s.settleReceipt(alice, 1015),
      s.settleReceipt(bob, 1016),
      s.settleReceipt(alice, 1016),
    ]);
    expect(settled).toEqual([1, 0, 0, 1]);
    expect((await s.pendingReceipts(alice, 0, 100)).map((r) => r.serverMessageId)).toEqual([
      1017, 1018, 1019,
    ]);
  });
});
