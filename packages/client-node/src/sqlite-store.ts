/**
 * `ClientStore` on SQLCipher-compatible encrypted SQLite (M37): better-sqlite3 with
 * the SQLite3MultipleCiphers build, `cipher='sqlcipher'` (SQLCipher 4 page format), keyed
 * with a raw 256-bit key derived from the passphrase by Argon2id, so SQLCipher's own
 * PBKDF2 is not the cost a guesser pays. This module owns SQL; it knows nothing of
 * passphrases or headers (profile.ts does).
 */
import Database from 'better-sqlite3-multiple-ciphers';
import { toHex } from '@parley/crypto';
import { ClientError } from '@parley/client';
import { createSearchIndex, prepareSearch } from './search-index.js';
import { PUT_OUTBOX_SQL, outboxEntryOf, outboxParams, typeOutboxRows } from './outbox-table.js';
import type { OutboxRow } from './outbox-table.js';
import type {
  ClientStore,
  Contact,
  ConversationSummary,
  ListMessagesOptions,
  MessageStatus,
  OutboxEntry,
  SearchOptions,
  StoreWrite,
  StoredMessage,
  TrustState,
} from '@parley/client';

/** Bumped with every schema change; `migrate` upgrades older files in place. */
const SCHEMA_VERSION = 6;

const SCHEMA_V1 = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) STRICT;
CREATE TABLE sessions (peer TEXT NOT NULL, device INTEGER NOT NULL, state BLOB NOT NULL,
  PRIMARY KEY (peer, device)) STRICT;
CREATE TABLE secrets (kind TEXT NOT NULL, id INTEGER NOT NULL, value BLOB NOT NULL,
  PRIMARY KEY (kind, id)) STRICT;
CREATE TABLE contacts (name TEXT PRIMARY KEY, device INTEGER NOT NULL, identity_key BLOB NOT NULL,
  trust TEXT NOT NULL, previous_key BLOB, added_at INTEGER NOT NULL, updated_at INTEGER NOT NULL) STRICT;
CREATE TABLE messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, peer TEXT NOT NULL,
  direction TEXT NOT NULL, id TEXT NOT NULL, text TEXT NOT NULL, sent_at INTEGER NOT NULL,
  stored_at INTEGER NOT NULL, status TEXT NOT NULL, shown INTEGER NOT NULL,
  UNIQUE (peer, direction, id)) STRICT;
CREATE TABLE seen (key TEXT PRIMARY KEY) STRICT, WITHOUT ROWID;
CREATE TABLE outbox (id TEXT PRIMARY KEY, peer TEXT NOT NULL, device INTEGER NOT NULL,
  payload BLOB NOT NULL, created_at INTEGER NOT NULL, attempts INTEGER NOT NULL) STRICT;
`;

/** v2: history is paged per conversation (newest first, before a seq) without a scan. */
const SCHEMA_V2 = `
CREATE INDEX messages_by_peer ON messages (peer, seq);
`;

/** v4: disappearing messages (when each one is deleted) and timer-change events. */
function addExpiryColumns(db: Database.Database): void {
  const have = new Set(
    (db.pragma('table_info(messages)') as { name: string }[]).map((c) => c.name),
  );
  // Checked, so a file whose version number lags its columns still opens.
  if (!have.has('expires_at')) db.exec('ALTER TABLE messages ADD COLUMN expires_at INTEGER');
  if (!have.has('timer_ms')) db.exec('ALTER TABLE messages ADD COLUMN timer_ms INTEGER');
  db.exec(
    'CREATE INDEX IF NOT EXISTS messages_by_expiry ON messages (expires_at) WHERE expires_at IS NOT NULL',
  );
}

/**
 * v5: group conversations. A message's sender within a group and the "delivered to k of
 * n" record of an outgoing group message (JSON `{"of":n,"by":[name, …]}`); an outbox
 * entry's recipient list when it is one `group.send` upload (JSON array of names).
 * Existing rows are pairwise and keep NULL in all three.
 */
function addGroupColumns(db: Database.Database): void {
  const cols = (t: string): Set<string> =>
    new Set((db.pragma(`table_info(${t})`) as { name: string }[]).map((c) => c.name));
  const messages = cols('messages');
  if (!messages.has('sender')) db.exec('ALTER TABLE messages ADD COLUMN sender TEXT');
  if (!messages.has('group_delivery'))
    db.exec('ALTER TABLE messages ADD COLUMN group_delivery TEXT');
  if (!cols('outbox').has('recipients')) db.exec('ALTER TABLE outbox ADD COLUMN recipients TEXT');
}

interface MessageRow {
  seq: number;
  peer: string;
  direction: 'in' | 'out';
  id: string;
  text: string;
  sent_at: number;
  stored_at: number;
  status: MessageStatus;
  shown: number;
  expires_at: number | null;
  timer_ms: number | null;
  sender: string | null;
  group_delivery: string | null;
}
interface ContactRow {
  name: string;
  device: number;
  identity_key: Uint8Array;
  trust: TrustState;
  previous_key: Uint8Array | null;
  added_at: number;
  updated_at: number;
}
const bytes = (b: Uint8Array): Uint8Array =>
  new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));

function toMessage(r: MessageRow): StoredMessage {
  return {
    id: r.id,
    peer: r.peer,
    direction: r.direction,
    text: r.text,
    sentAt: r.sent_at,
    storedAt: r.stored_at,
    status: r.status,
    shown: r.shown !== 0,
    seq: r.seq,
    ...(r.expires_at === null ? {} : { expiresAt: r.expires_at }),
    ...(r.timer_ms === null ? {} : { timerMs: r.timer_ms }),
    ...(r.sender === null ? {} : { from: r.sender }),
    ...(r.group_delivery === null
      ? {}
      : { groupDelivery: JSON.parse(r.group_delivery) as StoredMessage['groupDelivery'] & {} }),
  };
}
function toContact(r: ContactRow): Contact {
  return {
    name: r.name,
    deviceId: r.device,
    identityKey: bytes(r.identity_key),
    trust: r.trust,
    ...(r.previous_key ? { previousIdentityKey: bytes(r.previous_key) } : {}),
    addedAt: r.added_at,
    updatedAt: r.updated_at,
  };
}

function isNotADb(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT';
}

export interface OpenSqliteOptions {
  /** Create the file (and schema); otherwise it must exist. */
  readonly create: boolean;
}

/**
 * Opens (or creates) the encrypted database at `path` with a raw 32-byte key. Throws
 * `ClientError('PROFILE_CORRUPT')` if the file does not decrypt to a database: the
 * caller has already checked the key, so that means damage, not a wrong passphrase.
 */
export function openSqliteStore(
  path: string,
  key: Uint8Array,
  options: OpenSqliteOptions,
): SqliteStore {
  let db: Database.Database;
  try {
    db = new Database(path, { fileMustExist: !options.create });
  } catch (err) {
    throw new ClientError('PROFILE_CORRUPT', `cannot open store ${path}`, { cause: err });
  }
  try {
    db.pragma(`cipher='sqlcipher'`);
    db.pragma('legacy=4');
    db.pragma(`key="x'${toHex(key)}'"`);
    // The first read is what actually decrypts page 1; NOTADB here means bad bytes.
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    if (!options.create) {
      const ok = db.pragma('quick_check', { simple: true });
      if (ok !== 'ok')
        throw new ClientError('PROFILE_CORRUPT', `store ${path} failed its integrity check`);
    }
    // WAL with FULL sync: a commit survives power loss, and readers never block the writer.
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    // Deleted history is zeroed inside the (encrypted) pages, not merely unlinked.
    db.pragma('secure_delete = ON');
    migrate(db);
  } catch (err) {
    db.close();
    if (err instanceof ClientError) throw err;
    if (isNotADb(err))
      throw new ClientError('PROFILE_CORRUPT', `store ${path} is damaged`, { cause: err });
    throw new ClientError('STORE', `cannot open store ${path}`, { cause: err });
  }
  return new SqliteStore(db);
}

function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new ClientError(
      'PROFILE_CORRUPT',
      `store schema ${version} is newer than this client (${SCHEMA_VERSION})`,
    );
  }
  if (version < SCHEMA_VERSION) {
    db.transaction(() => {
      if (version < 1) db.exec(SCHEMA_V1);
      if (version < 2) db.exec(SCHEMA_V2);
      // v3: the search index (search-index.ts), filled from the messages already stored.
      if (version < 3) createSearchIndex(db);
      if (version < 4) addExpiryColumns(db);
      if (version < 5) addGroupColumns(db);
      if (version < 6) typeOutboxRows(db);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
    }).immediate();
  }
}

/** The SQLite backend. Reads are synchronous underneath; the interface is async for IndexedDB. */
export class SqliteStore implements ClientStore {
  private readonly stmt;
  private readonly applyBatch: (writes: readonly StoreWrite[]) => void;
  private readonly applyBatches: (batches: readonly (readonly StoreWrite[])[]) => void;
  private readonly search: ReturnType<typeof prepareSearch>;
  private closed = false;
  /** Batches waiting for the next group commit. */
  private queued: {
    writes: readonly StoreWrite[];
    resolve: () => void;
    reject: (e: Error) => void;
  }[] = [];
  private flushScheduled = false;
  /** Prepared history reads, one per combination of filters. */
  private readonly pagedQueries = new Map<string, Database.Statement>();

  constructor(private readonly db: Database.Database) {
    const p = (sql: string) => db.prepare(sql);
    this.stmt = {
      getMeta: p('SELECT value FROM meta WHERE key = ?').pluck(),
      putMeta: p(
        'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
      ),
      delMeta: p('DELETE FROM meta WHERE key = ?'),
      getSession: p('SELECT state FROM sessions WHERE peer = ? AND device = ?').pluck(),
      putSession: p(
        'INSERT INTO sessions (peer, device, state) VALUES (?, ?, ?) ON CONFLICT(peer, device) DO UPDATE SET state = excluded.state',
      ),
      delSession: p('DELETE FROM sessions WHERE peer = ? AND device = ?'),
      getSecret: p('SELECT value FROM secrets WHERE kind = ? AND id = ?').pluck(),
      listSecretIds: p('SELECT id FROM secrets WHERE kind = ? ORDER BY id').pluck(),
      putSecret: p(
        'INSERT INTO secrets (kind, id, value) VALUES (?, ?, ?) ON CONFLICT(kind, id) DO UPDATE SET value = excluded.value',
      ),
      delSecret: p('DELETE FROM secrets WHERE kind = ? AND id = ?'),
      getContact: p('SELECT * FROM contacts WHERE name = ?'),
      listContacts: p('SELECT * FROM contacts ORDER BY name'),
      putContact: p(
        `INSERT INTO contacts (name, device, identity_key, trust, previous_key, added_at, updated_at)
         VALUES (@name, @device, @identity_key, @trust, @previous_key, @added_at, @updated_at)
         ON CONFLICT(name) DO UPDATE SET device = excluded.device, identity_key = excluded.identity_key,
           trust = excluded.trust, previous_key = excluded.previous_key, added_at = excluded.added_at,
           updated_at = excluded.updated_at`,
      ),
      getMessage: p('SELECT * FROM messages WHERE peer = ? AND direction = ? AND id = ?'),
      putMessage: p(
        `INSERT INTO messages (peer, direction, id, text, sent_at, stored_at, status, shown, expires_at, timer_ms, sender, group_delivery)
         VALUES (@peer, @direction, @id, @text, @sent_at, @stored_at, @status, @shown, @expires_at, @timer_ms, @sender, @group_delivery)
         ON CONFLICT(peer, direction, id) DO UPDATE SET text = excluded.text, sent_at = excluded.sent_at,
           stored_at = excluded.stored_at, status = excluded.status, shown = excluded.shown,
           expires_at = excluded.expires_at, timer_ms = excluded.timer_ms, sender = excluded.sender,
           group_delivery = excluded.group_delivery`,
      ),
      setStatus: p('UPDATE messages SET status = ? WHERE peer = ? AND direction = ? AND id = ?'),
      markShown: p(
        "UPDATE messages SET shown = 1 WHERE peer = ? AND direction = 'in' AND seq <= ? AND shown = 0",
      ),
      conversations: p(
        `SELECT m.peer AS peer, m.text AS text, m.stored_at AS at,
           (SELECT count(*) FROM messages u WHERE u.peer = m.peer AND u.direction = 'in' AND u.shown = 0) AS unread
         FROM messages m WHERE m.seq = (SELECT max(seq) FROM messages x WHERE x.peer = m.peer)
         ORDER BY m.seq DESC`,
      ),
      hasSeen: p('SELECT 1 FROM seen WHERE key = ?').pluck(),
      addSeen: p('INSERT OR IGNORE INTO seen (key) VALUES (?)'),
      listOutbox: p(`SELECT * FROM outbox WHERE state = 'pending' ORDER BY created_at, rowid`),
      getOutbox: p('SELECT * FROM outbox WHERE id = ?'),
      putOutbox: p(PUT_OUTBOX_SQL),
      sentOutbox: p(
        `UPDATE outbox SET state = 'sent', payload = x'' WHERE id = ? AND state = 'pending'`,
      ),
      delOutbox: p('DELETE FROM outbox WHERE id = ?'),
      delMessage: p('DELETE FROM messages WHERE peer = ? AND direction = ? AND id = ?'),
      delConversation: p('DELETE FROM messages WHERE peer = ?'),
    };
    this.search = prepareSearch(db);
    // better-sqlite3 transactions roll back if the function throws: all or nothing.
    this.applyBatch = db.transaction((writes: readonly StoreWrite[]) => {
      for (const w of writes) this.apply(w);
    });
    this.applyBatches = db.transaction((batches: readonly (readonly StoreWrite[])[]) => {
      for (const writes of batches) for (const w of writes) this.apply(w);
    });
  }

  private live(): void {
    if (this.closed) throw new ClientError('CLOSED', 'store is closed');
  }

  private apply(w: StoreWrite): void {
    const s = this.stmt;
    switch (w.op) {
      case 'meta.put':
        s.putMeta.run(w.key, w.value);
        return;
      case 'meta.delete':
        s.delMeta.run(w.key);
        return;
      case 'session.put':
        s.putSession.run(w.peer, w.deviceId, w.state);
        return;
      case 'session.delete':
        s.delSession.run(w.peer, w.deviceId);
        return;
      case 'secret.put':
        s.putSecret.run(w.kind, w.id, w.value);
        return;
      case 'secret.delete':
        s.delSecret.run(w.kind, w.id);
        return;
      case 'contact.put': {
        const c = w.contact;
        s.putContact.run({
          name: c.name,
          device: c.deviceId,
          identity_key: c.identityKey,
          trust: c.trust,
          previous_key: c.previousIdentityKey ?? null,
          added_at: c.addedAt,
          updated_at: c.updatedAt,
        });
        return;
      }
      case 'message.put': {
        const m = w.message;
        s.putMessage.run({
          peer: m.peer,
          direction: m.direction,
          id: m.id,
          text: m.text,
          sent_at: m.sentAt,
          stored_at: m.storedAt,
          status: m.status,
          shown: m.shown ? 1 : 0,
          expires_at: m.expiresAt ?? null,
          timer_ms: m.timerMs ?? null,
          sender: m.from ?? null,
          group_delivery: m.groupDelivery ? JSON.stringify(m.groupDelivery) : null,
        });
        return;
      }
      case 'message.status': {
        if (
          s.setStatus.run(w.status, w.peer, 'out', w.id).changes === 0 &&
          s.setStatus.run(w.status, w.peer, 'in', w.id).changes === 0
        ) {
          throw new ClientError('NOT_FOUND', `message.status: no message ${w.id}`);
        }
        return;
      }
      case 'message.shown':
        s.markShown.run(w.peer, w.uptoSeq);
        return;
      case 'message.delete':
        s.delMessage.run(w.peer, w.direction, w.id);
        return;
      case 'conversation.delete':
        s.delConversation.run(w.peer);
        return;
      case 'seen.add':
        s.addSeen.run(w.key);
        return;
      case 'outbox.put':
        s.putOutbox.run(...outboxParams(w.entry));
        return;
      case 'outbox.sent':
        s.sentOutbox.run(w.id);
        return;
      case 'outbox.delete':
        s.delOutbox.run(w.id);
        return;
    }
  }

  async getMeta(key: string): Promise<Uint8Array | undefined> {
    this.live();
    const v = this.stmt.getMeta.get(key) as Uint8Array | undefined;
    return v && bytes(v);
  }
  async getSession(peer: string, deviceId: number): Promise<Uint8Array | undefined> {
    this.live();
    const v = this.stmt.getSession.get(peer, deviceId) as Uint8Array | undefined;
    return v && bytes(v);
  }
  async getSecret(kind: string, id: number): Promise<Uint8Array | undefined> {
    this.live();
    const v = this.stmt.getSecret.get(kind, id) as Uint8Array | undefined;
    return v && bytes(v);
  }
  async listSecretIds(kind: string): Promise<number[]> {
    this.live();
    return this.stmt.listSecretIds.all(kind) as number[];
  }
  async getContact(name: string): Promise<Contact | undefined> {
    this.live();
    const r = this.stmt.getContact.get(name) as ContactRow | undefined;
    return r && toContact(r);
  }
  async listContacts(): Promise<Contact[]> {
    this.live();
    return (this.stmt.listContacts.all() as ContactRow[]).map(toContact);
  }
  async getMessage(
    peer: string,
    direction: 'in' | 'out',
    id: string,
  ): Promise<StoredMessage | undefined> {
    this.live();
    const r = this.stmt.getMessage.get(peer, direction, id) as MessageRow | undefined;
    return r && toMessage(r);
  }
  async listMessages(peer?: string, options: ListMessagesOptions = {}): Promise<StoredMessage[]> {
    this.live();
    // Filtered and paged in SQL (newest first, then reversed), so reading one screen of
    // a long history touches one page of rows, not the whole conversation.
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (peer !== undefined) {
      where.push('peer = ?');
      params.push(peer);
    }
    if (options.afterSeq !== undefined) {
      where.push('seq > ?');
      params.push(options.afterSeq);
    }
    if (options.beforeSeq !== undefined) {
      where.push('seq < ?');
      params.push(options.beforeSeq);
    }
    if (options.unshownOnly) where.push("direction = 'in' AND shown = 0");
    if (options.limit !== undefined) params.push(Math.max(0, Math.floor(options.limit)));
    const sql = `SELECT * FROM messages${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC${options.limit !== undefined ? ' LIMIT ?' : ''}`;
    let stmt = this.pagedQueries.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.pagedQueries.set(sql, stmt);
    }
    return (stmt.all(...params) as MessageRow[]).map(toMessage).reverse();
  }
  async listConversations(): Promise<ConversationSummary[]> {
    this.live();
    const rows = this.stmt.conversations.all() as {
      peer: string;
      text: string;
      at: number;
      unread: number;
    }[];
    return rows.map((r) => ({ peer: r.peer, lastText: r.text, lastAt: r.at, unread: r.unread }));
  }
  async searchMessages(query: string, options?: SearchOptions): Promise<StoredMessage[]> {
    this.live();
    return (this.search(query, options) as MessageRow[]).map(toMessage);
  }
  async hasSeen(key: string): Promise<boolean> {
    this.live();
    return this.stmt.hasSeen.get(key) !== undefined;
  }
  async listOutbox(): Promise<OutboxEntry[]> {
    this.live();
    return (this.stmt.listOutbox.all() as OutboxRow[]).map((r) => outboxEntryOf(r) as OutboxEntry);
  }
  async getOutbox(id: string): Promise<OutboxEntry | undefined> {
    this.live();
    const r = this.stmt.getOutbox.get(id) as OutboxRow | undefined;
    return r && (outboxEntryOf(r) as OutboxEntry);
  }
  /**
   * Group commit: batches committed in the same turn of the event loop share one
   * transaction and so one fsync (synchronous=FULL costs ~4 ms per commit here, which
   * would otherwise cap a busy client at a few hundred commits per second). Each batch
   * stays atomic: if the shared transaction fails, every batch is retried on its own
   * and only the failing one is rejected. A commit resolves once it is durable.
   */
  commit(writes: readonly StoreWrite[]): Promise<void> {
    try {
      this.live();
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return new Promise<void>((resolve, reject) => {
      this.queued.push({ writes, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const batches = this.queued;
    this.queued = [];
    if (batches.length === 0) return;
    if (this.closed) {
      for (const b of batches) b.reject(new ClientError('CLOSED', 'store is closed'));
      return;
    }
    try {
      this.applyBatches(batches.map((b) => b.writes));
      this.checkpointAfterDeletes(batches);
      for (const b of batches) b.resolve();
      return;
    } catch {
      // Fall through: find the failing batch by committing each alone.
    }
    for (const b of batches) {
      try {
        this.applyBatch(b.writes);
        b.resolve();
      } catch (err) {
        b.reject(
          err instanceof ClientError
            ? err
            : new ClientError('STORE', 'store write failed', { cause: err }),
        );
      }
    }
    this.checkpointAfterDeletes(batches);
  }

  /**
   * Re-encrypts every page under `key` (SQLCipher rekey; a passphrase change) and closes
   * the store. SQLite3MultipleCiphers rekeys only outside WAL mode, so the WAL is folded
   * in and the journal switched to DELETE for the rewrite, which runs as one transaction;
   * the connection is closed rather than reused (after a rekey it can no longer
   * checkpoint a WAL), and the next open switches back to WAL.
   */
  rekeyAndClose(key: Uint8Array): void {
    this.live();
    if (this.queued.length > 0) this.flush();
    this.closed = true;
    try {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
      this.db.pragma('journal_mode = DELETE');
      this.db.pragma(`rekey="x'${toHex(key)}'"`);
    } finally {
      this.db.close();
    }
  }

  /** A consistent image of the whole database, decrypted, in memory (backup.ts). */
  snapshot(): Buffer {
    this.live();
    if (this.queued.length > 0) this.flush();
    return this.db.serialize();
  }

  /**
   * Earlier versions of deleted rows live on in the WAL until a checkpoint copies the
   * zeroed pages back and truncates it, so a batch that deleted history checkpoints.
   */
  private checkpointAfterDeletes(batches: readonly { writes: readonly StoreWrite[] }[]): void {
    const deleted = (w: StoreWrite): boolean =>
      w.op === 'message.delete' || w.op === 'conversation.delete';
    if (!batches.some((b) => b.writes.some(deleted))) return;
    try {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      // The commit stands; the next checkpoint (at the latest on close) clears the WAL.
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Commits already accepted are written before the database closes.
    if (this.queued.length > 0) this.flush();
    this.closed = true;
    // Fold the WAL back so the profile is one file at rest.
    try {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    } finally {
      this.db.close();
    }
  }
}
