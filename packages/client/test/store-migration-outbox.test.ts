/**
 * A store written before typed outbox records (schema 5) opens in this one: every
 * outbox row gains its record's facts (from its JSON meta record `outbox:<wire id>`, or
 * by the rule for rows from before those records), a record whose entry already left
 * becomes a `sent` record, and the old meta keys are gone.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import { afterAll, describe, expect, it } from 'vitest';
import { createPortableCrypto, toHex, utf8Encode } from '@parley/crypto';
import { openSqliteStore } from '@parley/client-node';

const crypto = createPortableCrypto();
const root = mkdtempSync(join(tmpdir(), 'parley-migrate-outbox-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const G = 'group:00112233445566778899aabbccddeeff';
const record = (o: object): Buffer => Buffer.from(utf8Encode(JSON.stringify(o)));

describe('store migration to typed outbox records (schema 6)', () => {
  it('converts schema-5 outbox rows and meta records', async () => {
    const path = join(root, 'v5.db');
    const key = crypto.randomBytes(32);
    await openSqliteStore(path, key, { create: true }).close();
    const db = new Database(path);
    db.pragma(`cipher='sqlcipher'`);
    db.pragma('legacy=4');
    db.pragma(`key="x'${toHex(key)}'"`);
    // Back to what a schema-5 client wrote: untyped rows, records under meta keys.
    db.exec(`ALTER TABLE outbox DROP COLUMN frame; ALTER TABLE outbox DROP COLUMN kind;
      ALTER TABLE outbox DROP COLUMN message; ALTER TABLE outbox DROP COLUMN state;`);
    db.prepare(
      `INSERT INTO messages (peer, direction, id, text, sent_at, stored_at, status, shown)
       VALUES ('bob', 'out', 'm1', 'hello', 1, 1, 'sending', 1), ('bob', 'out', 'm0', 'earlier', 0, 0, 'queued', 1)`,
    ).run();
    const row = db.prepare(
      `INSERT INTO outbox (id, peer, device, payload, created_at, attempts, recipients) VALUES (?, ?, 1, x'01', ?, 0, ?)`,
    );
    row.run('m1', 'bob', 1, null); // a first encryption from before records
    row.run('t1', 'bob', 2, null); // a session end from before records
    row.run('w2', 'bob', 3, null); // a re-send after a repair
    row.run('g1', G, 4, '["bob","carol"]');
    const meta = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
    meta.run('outbox:w2', record({ frame: 'send', kind: 'msg', message: 'm1' }));
    meta.run('outbox:g1', record({ frame: 'group.send', kind: 'msg', message: 'g1' }));
    // Its entry went on the relay's `queued`; the device receipt is still to come.
    meta.run('outbox:w0', record({ frame: 'send', kind: 'msg', message: 'm0' }));
    meta.run('outbox:r1', record({ frame: 'send', kind: 'rcpt', message: null }));
    meta.run('outbox-note', Buffer.from([7])); // not an outbox record: kept
    db.pragma('user_version = 5');
    db.close();

    const s = openSqliteStore(path, key, { create: false });
    expect(
      (await s.listOutbox()).map((e) => [
        e.id,
        e.peer,
        e.frame,
        e.kind,
        e.message ?? null,
        e.state,
      ]),
    ).toEqual([
      ['m1', 'bob', 'send', 'msg', 'm1', 'pending'],
      ['t1', 'bob', 'session.terminate', 'end', null, 'pending'],
      ['w2', 'bob', 'send', 'msg', 'm1', 'pending'],
      ['g1', G, 'group.send', 'msg', 'g1', 'pending'],
    ]);
    expect((await s.getOutbox('g1'))?.recipients).toEqual(['bob', 'carol']);
    expect(await s.getOutbox('w0')).toMatchObject({
      peer: 'bob',
      frame: 'send',
      kind: 'msg',
      message: 'm0',
      state: 'sent',
    });
    const r1 = await s.getOutbox('r1');
    expect(r1).toMatchObject({ frame: 'send', kind: 'rcpt', state: 'sent' });
    expect(r1?.message).toBeUndefined();
    for (const id of ['m1', 'w2', 'g1', 'w0', 'r1'])
      expect(await s.getMeta(`outbox:${id}`)).toBeUndefined();
    expect(await s.getMeta('outbox-note')).toEqual(new Uint8Array([7]));
    // The converted records take the new writes like any other.
    await s.commit([
      { op: 'outbox.sent', id: 'm1' },
      { op: 'outbox.delete', id: 'w0' },
    ]);
    await s.close();
    const r = openSqliteStore(path, key, { create: false });
    expect((await r.listOutbox()).map((e) => e.id)).toEqual(['t1', 'w2', 'g1']);
    expect((await r.getOutbox('m1'))?.state).toBe('sent');
    expect(await r.getOutbox('w0')).toBeUndefined();
    await r.close();
  });
});
