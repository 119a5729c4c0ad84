/**
 * The SQLite search index (M38) beyond the contract: nothing of it is readable on disk
 * (database, WAL, shared memory), with a control showing the same scan does find the
 * tokens of an unencrypted FTS5 table; and a profile made before the index existed
 * (schema 1 or 2) gets its old messages indexed when it is opened.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import { afterAll, describe, expect, it } from 'vitest';
import { createPortableCrypto, toHex } from '@parley/crypto';
import { MIN_KDF_MEMORY_KIB } from '@parley/client';
import type { StoredMessage } from '@parley/client';
import { createProfile, openSqliteStore, PROFILE_DB_FILE } from '@parley/client-node';

const crypto = createPortableCrypto();
const root = mkdtempSync(join(tmpdir(), 'parley-search-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const cheap = { crypto, kdf: { memoryKiB: MIN_KDF_MEMORY_KIB, iterations: 1 } };

const msg = (id: string, text: string): StoredMessage => ({
  id,
  peer: 'bob',
  direction: 'in',
  text,
  sentAt: 1,
  storedAt: 2,
  status: 'received',
  shown: false,
});

/** Pieces of a word that a plaintext FTS5 index would hold (terms are prefix-compressed). */
function needles(word: string): Buffer[] {
  return [word, word.slice(2), word.slice(0, 6), word.toUpperCase()].map((w) => Buffer.from(w));
}

function filesOf(dbPath: string): { name: string; bytes: Buffer }[] {
  return ['', '-wal', '-shm']
    .map((suffix) => dbPath + suffix)
    .filter((p) => existsSync(p))
    .map((p) => ({ name: p, bytes: readFileSync(p) }));
}

describe('search index inside SQLCipher', () => {
  it('the word and its index tokens are not readable in the store file, WAL or shm', async () => {
    const word = 'quetzalcoatl';
    const dir = join(root, 'leak');
    const s = await createProfile(dir, 'pw', cheap);
    const batch = Array.from({ length: 200 }, (_, i) => ({
      op: 'message.put' as const,
      message: msg(`m${i}`, `${i % 7 === 0 ? word : 'filler'} number ${i} xylophone`),
    }));
    await s.commit(batch);
    expect((await s.searchMessages(word)).length).toBe(29);
    expect((await s.searchMessages('quetz*')).length).toBe(29);
    // Store still open: the index pages are in the WAL now, not yet checkpointed.
    const open = filesOf(join(dir, PROFILE_DB_FILE));
    expect(open.map((f) => f.name.slice(dir.length))).toContain(`/${PROFILE_DB_FILE}-wal`);
    for (const f of open) {
      for (const n of [...needles(word), ...needles('xylophone')])
        expect(f.bytes.includes(n), `${f.name} holds ${n.toString()}`).toBe(false);
    }
    await s.close();
    for (const f of filesOf(join(dir, PROFILE_DB_FILE))) {
      for (const n of needles(word)) expect(f.bytes.includes(n)).toBe(false);
    }

    // Control: the same scan finds the tokens in an unencrypted FTS5 table.
    const plain = new Database(join(root, 'plain.db'));
    plain.exec(`CREATE VIRTUAL TABLE t USING fts5(text, content='', contentless_delete=1)`);
    const ins = plain.prepare('INSERT INTO t(rowid, text) VALUES (?, ?)');
    for (const w of batch) ins.run(Number(w.message.id.slice(1)) + 1, w.message.text);
    plain.close();
    const control = readFileSync(join(root, 'plain.db'));
    expect(control.includes(Buffer.from('xylophone'))).toBe(true);
  });

  it('a deleted message leaves the index itself, not only the answers', async () => {
    const path = join(root, 'deleted.db');
    const key = crypto.randomBytes(32);
    const s = openSqliteStore(path, key, { create: true });
    await s.commit([
      { op: 'message.put', message: msg('d1', 'zanzibar once') },
      { op: 'message.put', message: { ...msg('d2', 'zanzibar twice'), peer: 'carol' } },
      { op: 'message.put', message: msg('k1', 'kept words') },
    ]);
    await s.commit([{ op: 'message.delete', peer: 'bob', direction: 'in', id: 'd1' }]);
    await s.commit([{ op: 'conversation.delete', peer: 'carol' }]);
    await s.close();
    const db = new Database(path);
    db.pragma(`cipher='sqlcipher'`);
    db.pragma('legacy=4');
    db.pragma(`key="x'${toHex(key)}'"`);
    // Straight at the FTS5 table, without the join to `messages` that hides stale rows.
    const rowids = (w: string): unknown[] =>
      db.prepare('SELECT rowid FROM message_index WHERE message_index MATCH ?').all(w);
    expect(rowids('zanzibar')).toEqual([]);
    expect(rowids('kept')).toHaveLength(1);
    // And no term is left behind in the index's own vocabulary (FTS5 secure-delete).
    db.exec(`CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, message_index, 'row')`);
    const terms = db.prepare('SELECT term FROM temp.vocab ORDER BY term').pluck().all();
    expect(terms).toEqual(['kept', 'words']);
    // Nor in the index's stored segments, where a plain delete leaves the old entry until
    // a merge happens to rewrite it.
    const blocks = db.prepare('SELECT block FROM message_index_data').pluck().all() as Buffer[];
    expect(blocks.some((b) => Buffer.from(b).includes(Buffer.from('zanzibar')))).toBe(false);
    expect(blocks.some((b) => Buffer.from(b).includes(Buffer.from('kept')))).toBe(true);
    db.close();
  });

  it.each([1, 2])('a schema-%i store (before search) is indexed when opened', async (version) => {
    const path = join(root, `old-${version}.db`);
    const key = crypto.randomBytes(32);
    const s = openSqliteStore(path, key, { create: true });
    await s.close();
    // Turn it back into a file of that schema holding a message, as an older client left it.
    const db = new Database(path);
    db.pragma(`cipher='sqlcipher'`);
    db.pragma('legacy=4');
    db.pragma(`key="x'${toHex(key)}'"`);
    db.exec(`DROP TRIGGER messages_index_insert; DROP TRIGGER messages_index_delete;
      DROP TRIGGER messages_index_update; DROP TABLE message_index;`);
    if (version < 2) db.exec('DROP INDEX messages_by_peer');
    db.prepare(
      `INSERT INTO messages (peer, direction, id, text, sent_at, stored_at, status, shown)
       VALUES ('bob', 'in', 'old1', 'written before search existed', 1, 2, 'received', 0)`,
    ).run();
    db.pragma(`user_version = ${version}`);
    db.close();

    const r = openSqliteStore(path, key, { create: false });
    expect((await r.searchMessages('existed')).map((m) => m.id)).toEqual(['old1']);
    await r.commit([{ op: 'message.put', message: msg('new1', 'existed again') }]);
    expect((await r.searchMessages('existed')).map((m) => m.id)).toEqual(['new1', 'old1']);
    await r.close();
  });
});
