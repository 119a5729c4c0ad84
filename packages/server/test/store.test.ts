import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryStore } from '../src/storage/memory.js';
import { SqliteStore } from '../src/storage/sqlite.js';
import type { NewMail } from '../src/storage/types.js';
import { runStoreContract } from './store-contract.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

runStoreContract('memory', () => Promise.resolve({ store: new MemoryStore() }));
runStoreContract('sqlite (writer thread)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-store-'));
  dirs.push(dir);
  const file = join(dir, 'relay.db');
  return {
    store: await SqliteStore.open(file),
    reopen: () => SqliteStore.open(file),
  };
});
runStoreContract('sqlite (inline)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-store-'));
  dirs.push(dir);
  const file = join(dir, 'relay.db');
  return Promise.resolve({
    store: new SqliteStore(file),
    reopen: () => Promise.resolve(new SqliteStore(file)),
  });
});

describe('SqliteStore server ids', () => {
  it('never hands out again an id shown before its mail was committed (crash)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-store-'));
    dirs.push(dir);
    const file = join(dir, 'relay.db');
    const first = await SqliteStore.open(file);
    const mail = (i: number): NewMail => ({
      recipient: { name: 'bob', deviceId: 1 },
      sender: { name: 'alice', deviceId: 1 },
      clientMessageId: new Uint8Array(16).fill(i),
      kind: 'message',
      payload: new Uint8Array([i]),
      storedAt: 1,
      expiresAt: 2 ** 40,
    });
    // Once the first reservation is durable, ids may be shown early.
    const warm = await first.submit(mail(1), 100);
    await warm.committed;
    const early = await first.submit(mail(2), 100);
    expect(early.idDurable).toBe(true);
    const shown = early.decision.ok ? early.decision.serverMessageId : -1;
    // "Crash": a second process opens the database before that mail is committed.
    const second = new SqliteStore(file);
    const after = await second.enqueue(mail(3), 100);
    expect(after.ok && after.serverMessageId > shown).toBe(true);
    await second.close();
    await early.committed;
    await first.close();
  });
});

describe('SqliteStore holding live mail for its ack', () => {
  const mail = (i: number, to = 'bob'): NewMail => ({
    recipient: { name: to, deviceId: 1 },
    sender: { name: 'alice', deviceId: 1 },
    clientMessageId: new Uint8Array(16).fill(i),
    kind: 'message',
    payload: new Uint8Array([i, i, i]),
    storedAt: 1,
    expiresAt: 2 ** 40,
  });
  const bob = { name: 'bob', deviceId: 1 };
  const open = async (): Promise<{ store: SqliteStore; file: string }> => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-store-'));
    dirs.push(dir);
    const file = join(dir, 'relay.db');
    const store = await SqliteStore.open(file);
    // Let the first id reservation commit, so ids are durable and holding is allowed.
    await (
      await store.submit(mail(0, 'warm'), 10)
    ).committed;
    return { store, file };
  };
  const idOf = (s: { decision: { ok: boolean } }): number =>
    'serverMessageId' in s.decision ? (s.decision.serverMessageId as number) : -1;

  it('an ack within the hold cancels the write: nothing ever reaches the database', async () => {
    const { store, file } = await open();
    const s = await store.submit(mail(1), 10, { holdMs: 60_000 });
    const item = await store.ack(bob, idOf(s));
    expect(item?.payload).toEqual(new Uint8Array([1, 1, 1]));
    await expect(s.committed).resolves.toBe('acked');
    // A second ack finds nothing; someone else's ack of the id finds nothing either.
    expect(await store.ack(bob, idOf(s))).toBeUndefined();
    await store.close();
    const again = await SqliteStore.open(file);
    expect(await again.mailboxCount(bob)).toBe(0);
    await again.close();
  });

  it('only the recipient can ack held mail; without an ack it is stored when the hold ends', async () => {
    const { store, file } = await open();
    const s = await store.submit(mail(2), 10, { holdMs: 30 });
    expect(await store.ack({ name: 'mallory', deviceId: 1 }, idOf(s))).toBeUndefined();
    await expect(s.committed).resolves.toBe('stored');
    expect((await store.pending(bob, 0, 10)).map((m) => m.serverMessageId)).toEqual([idOf(s)]);
    // A retry of a held-then-stored message is a duplicate with the original id.
    const retry = await store.submit(mail(2), 10, { holdMs: 30 });
    expect([retry.decision, idOf(retry)]).toEqual([
      { ok: true, serverMessageId: idOf(s), duplicate: true },
      idOf(s),
    ]);
    await store.close();
    const again = await SqliteStore.open(file);
    expect(await again.mailboxCount(bob)).toBe(1);
    await again.close();
  });

  it("keeps one recipient's commits in id order when held and unheld mail mix", async () => {
    const { store } = await open();
    const order: number[] = [];
    const held = await store.submit(mail(3), 10, { holdMs: 60_000 });
    const other = await store.submit(mail(4, 'carol'), 10, { holdMs: 60_000 });
    const unheld = await store.submit(mail(5), 10);
    const track = (x: typeof held): Promise<void> =>
      x.committed.then((o) => {
        expect(o).toBe('stored');
        order.push(idOf(x));
      });
    // Bob's unheld mail releases his earlier held mail first; Carol's stays held.
    await Promise.all([track(held), track(unheld)]);
    expect(order).toEqual([idOf(held), idOf(unheld)]);
    expect(await store.mailboxCount({ name: 'carol', deviceId: 1 })).toBe(0);
    // Closing writes what is still held: nothing accepted is lost on shutdown.
    await store.close();
    await expect(other.committed).resolves.toBe('stored');
  });
});

describe('SqliteStore duplicate detection without a lookup per message', () => {
  const mail = (i: number, expiresAt = 2 ** 40): NewMail => ({
    recipient: { name: 'bob', deviceId: 1 },
    sender: { name: 'alice', deviceId: 1 },
    clientMessageId: new Uint8Array(16).fill(i),
    kind: 'message',
    payload: new Uint8Array([i]),
    storedAt: 1,
    expiresAt,
  });
  const bob = { name: 'bob', deviceId: 1 };

  it('still finds a retry of stored mail after a restart, an ack and an expiry', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-store-'));
    dirs.push(dir);
    const file = join(dir, 'relay.db');
    const first = await SqliteStore.open(file);
    const a = await first.enqueue(mail(1), 10);
    await first.close();
    // The per-sender count is rebuilt from the database on open.
    const second = await SqliteStore.open(file);
    expect(await second.enqueue(mail(1), 10)).toEqual({ ...a, duplicate: true });
    // Once acked, the mail is gone: a retry is new mail (the recipient drops repeats).
    const id = a.ok ? a.serverMessageId : -1;
    expect((await second.ack(bob, id))?.serverMessageId).toBe(id);
    const again = await second.enqueue(mail(1), 10);
    expect(again.ok && !again.duplicate && again.serverMessageId > id).toBe(true);
    // Stored mail of a sender keeps being checked until expiry removes it.
    const b = await second.enqueue(mail(2, 50), 10);
    expect(await second.enqueue(mail(2, 50), 10)).toEqual({ ...b, duplicate: true });
    expect(await second.expire(60)).toBe(1);
    const c = await second.enqueue(mail(2, 50), 10);
    expect(c.ok && !c.duplicate).toBe(true);
    await second.close();
  });
});

describe('SqliteStore schema migration', () => {
  it('opens a schema 1 database, keeps its mail and its retry detection, and stores group copies', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-store-'));
    dirs.push(dir);
    const file = join(dir, 'relay.db');
    const v1 = new Database(file);
    v1.exec(readFileSync(new URL('./fixtures/relay-schema-v1.sql', import.meta.url), 'utf8'));
    v1.pragma('user_version = 1');
    const key = Buffer.alloc(32, 1);
    for (const name of ['bob', 'carol']) {
      v1.prepare(
        'INSERT INTO devices (name, device_id, identity_key, certificate, registered_at) VALUES (?, 1, ?, NULL, 1)',
      ).run(name, key);
    }
    v1.prepare(
      `INSERT INTO mailbox (r_name, r_device, s_name, s_device, client_id, kind, payload, stored_at, expires_at)
       VALUES ('bob', 1, 'alice', 1, ?, 'message', ?, 1, ?)`,
    ).run(Buffer.alloc(16, 3), Buffer.from([3]), 2 ** 40);
    v1.close();

    const store = await SqliteStore.open(file);
    const old = await store.pending({ name: 'bob', deviceId: 1 }, 0, 10);
    expect(old.map((m) => [m.kind, m.payload[0]])).toEqual([['message', 3]]);
    // A retry of the stored message is still recognised after the index changed.
    const retry = await store.enqueue(
      {
        recipient: { name: 'bob', deviceId: 1 },
        sender: { name: 'alice', deviceId: 1 },
        clientMessageId: new Uint8Array(16).fill(3),
        kind: 'message',
        payload: new Uint8Array([3]),
        storedAt: 2,
        expiresAt: 2 ** 40,
      },
      10,
    );
    expect(retry).toMatchObject({ ok: true, duplicate: true });
    // Two copies under one client message id: possible only with the schema 2 index.
    const group = await store.submitGroup(
      {
        sender: { name: 'alice', deviceId: 1 },
        clientMessageId: new Uint8Array(16).fill(4),
        recipients: [
          { name: 'bob', deviceId: 1 },
          { name: 'carol', deviceId: 1 },
        ],
        payload: new Uint8Array([4]),
        storedAt: 3,
        expiresAt: 2 ** 40,
      },
      10,
    );
    await group.committed;
    expect(group.decision).toMatchObject({ ok: true, duplicate: false });
    expect(await store.mailboxCount({ name: 'carol', deviceId: 1 })).toBe(1);
    await store.close();
    const db = new Database(file, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(2);
    db.close();
  });
});
