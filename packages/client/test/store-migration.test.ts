/**
 * A store written by a client before group conversations (schema 4) opens in this one:
 * its pairwise history and outbox are kept as they were, and group fields round-trip.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import { afterAll, describe, expect, it } from 'vitest';
import { createPortableCrypto, toHex } from '@parley/crypto';
import { openSqliteStore } from '@parley/client-node';

const crypto = createPortableCrypto();
const root = mkdtempSync(join(tmpdir(), 'parley-migrate-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('store migration to group conversations (schema 5)', () => {
  it('keeps a schema-4 store and stores group fields after it', async () => {
    const path = join(root, 'v4.db');
    const key = crypto.randomBytes(32);
    await openSqliteStore(path, key, { create: true }).close();
    const db = new Database(path);
    db.pragma(`cipher='sqlcipher'`);
    db.pragma('legacy=4');
    db.pragma(`key="x'${toHex(key)}'"`);
    // Back to what a schema-4 client wrote: no group columns, one message, one outbox entry.
    db.exec(`ALTER TABLE messages DROP COLUMN sender; ALTER TABLE messages DROP COLUMN group_delivery;
      ALTER TABLE outbox DROP COLUMN recipients; ALTER TABLE outbox DROP COLUMN frame;
      ALTER TABLE outbox DROP COLUMN kind; ALTER TABLE outbox DROP COLUMN message;
      ALTER TABLE outbox DROP COLUMN state;`);
    db.prepare(
      `INSERT INTO messages (peer, direction, id, text, sent_at, stored_at, status, shown)
       VALUES ('bob', 'in', 'old1', 'from before groups', 1, 2, 'received', 0)`,
    ).run();
    db.prepare(
      `INSERT INTO outbox (id, peer, device, payload, created_at, attempts) VALUES ('o1', 'bob', 1, x'01', 3, 0)`,
    ).run();
    db.pragma('user_version = 4');
    db.close();

    const s = openSqliteStore(path, key, { create: false });
    const old = await s.getMessage('bob', 'in', 'old1');
    expect(old?.text).toBe('from before groups');
    expect(old?.from).toBeUndefined();
    expect(old?.groupDelivery).toBeUndefined();
    const [entry] = await s.listOutbox();
    expect(entry?.id).toBe('o1');
    expect(entry?.recipients).toBeUndefined();
    await s.commit([
      {
        op: 'message.put',
        message: {
          id: 'g1',
          peer: 'group:00112233445566778899aabbccddeeff',
          direction: 'in',
          from: 'carol',
          text: 'in a group',
          sentAt: 4,
          storedAt: 5,
          status: 'received',
          shown: false,
        },
      },
      {
        op: 'outbox.put',
        entry: {
          id: 'o2',
          peer: 'group:00112233445566778899aabbccddeeff',
          deviceId: 1,
          payload: new Uint8Array([2]),
          createdAt: 6,
          attempts: 0,
          recipients: ['bob', 'carol'],
          frame: 'group.send',
          kind: 'msg',
          message: 'o2',
          state: 'pending',
        },
      },
    ]);
    await s.close();
    const r = openSqliteStore(path, key, { create: false });
    const g = await r.getMessage('group:00112233445566778899aabbccddeeff', 'in', 'g1');
    expect(g?.from).toBe('carol');
    expect((await r.listOutbox()).map((e) => e.recipients ?? null)).toEqual([
      null,
      ['bob', 'carol'],
    ]);
    expect((await r.listConversations()).map((c) => c.peer)).toEqual([
      'group:00112233445566778899aabbccddeeff',
      'bob',
    ]);
    await r.close();
  });
});
