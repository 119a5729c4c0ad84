/**
 * The SQLite schema, statements and write operations shared by the relay's SQLite store
 * and its writer thread (`sqlite-writer.ts`). Write operations are plain functions of
 * (statements, arguments) so they can run on either side of a thread boundary; their
 * arguments and results are structured-cloneable.
 */
import Database from 'better-sqlite3';
import { ServerError } from '../errors.js';
import type {
  DeviceRecord,
  GroupCopy,
  MailItem,
  NewGroupMail,
  NewMail,
  PrekeyBundle,
  PrekeyUpload,
  Receipt,
  Address,
} from './types.js';
import { toDevice, toMail, toOneTime, toSigned } from './rows.js';
import type { DeviceRow, KeyRow, MailRow, UploadRow } from './rows.js';

/** Schema version stored in `PRAGMA user_version`; bump with a migration. */
export const SCHEMA_VERSION = 2;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS devices (
  name TEXT NOT NULL, device_id INTEGER NOT NULL, identity_key BLOB NOT NULL,
  certificate BLOB, registered_at INTEGER NOT NULL, PRIMARY KEY (name, device_id)
);
CREATE TABLE IF NOT EXISTS signed_prekeys (
  name TEXT NOT NULL, device_id INTEGER NOT NULL, kind TEXT NOT NULL, id INTEGER NOT NULL,
  public_key BLOB NOT NULL, signature BLOB NOT NULL, PRIMARY KEY (name, device_id, kind)
);
CREATE TABLE IF NOT EXISTS one_time_prekeys (
  name TEXT NOT NULL, device_id INTEGER NOT NULL, kind TEXT NOT NULL, id INTEGER NOT NULL,
  public_key BLOB NOT NULL, signature BLOB, PRIMARY KEY (name, device_id, kind, id)
);
CREATE TABLE IF NOT EXISTS mailbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  r_name TEXT NOT NULL, r_device INTEGER NOT NULL, s_name TEXT NOT NULL, s_device INTEGER NOT NULL,
  client_id BLOB NOT NULL, kind TEXT NOT NULL, payload BLOB NOT NULL,
  stored_at INTEGER NOT NULL, expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS mailbox_recipient ON mailbox (r_name, r_device, id);
CREATE INDEX IF NOT EXISTS mailbox_expiry ON mailbox (expires_at);
CREATE UNIQUE INDEX IF NOT EXISTS mailbox_dedup ON mailbox (s_name, s_device, client_id);
CREATE TABLE IF NOT EXISTS receipts (
  id INTEGER PRIMARY KEY AUTOINCREMENT, s_name TEXT NOT NULL, s_device INTEGER NOT NULL,
  client_id BLOB NOT NULL, status TEXT NOT NULL, server_id INTEGER NOT NULL, ts INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS receipts_sender ON receipts (s_name, s_device, id);
CREATE INDEX IF NOT EXISTS receipts_server_id ON receipts (server_id);
`;

/**
 * Steps after the base schema; version N is the state after MIGRATIONS[N - 2].
 * 2: group uploads. Their copies share the sender's client message id, so the
 * duplicate index becomes unique per recipient (a `send` retry still finds its row by
 * the index prefix), and uploads are remembered apart from their copies so a retry
 * after every copy was acked stores nothing either.
 */
const MIGRATIONS: readonly string[] = [
  `
DROP INDEX IF EXISTS mailbox_dedup;
CREATE UNIQUE INDEX IF NOT EXISTS mailbox_dedup_copy ON mailbox (s_name, s_device, client_id, r_name, r_device);
CREATE TABLE IF NOT EXISTS group_uploads (
  s_name TEXT NOT NULL, s_device INTEGER NOT NULL, client_id BLOB NOT NULL,
  first_id INTEGER NOT NULL, expires_at INTEGER NOT NULL, PRIMARY KEY (s_name, s_device, client_id)
);
CREATE INDEX IF NOT EXISTS group_uploads_expiry ON group_uploads (expires_at);
`,
];

export interface ReceiptRow {
  id: number;
  client_id: Buffer;
  status: string;
  server_id: number;
  ts: number;
}

export type { DeviceRow, KeyRow, MailRow } from './rows.js';
export { bytes, toDevice, toMail, toOneTime, toSigned } from './rows.js';

/** Opens the database with the relay's pragmas and schema. */
export function openDatabase(file: string, synchronous: 'full' | 'normal'): Database.Database {
  let db: Database.Database | undefined;
  try {
    db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma(synchronous === 'full' ? 'synchronous = FULL' : 'synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new ServerError('STORAGE', `database schema ${version} is newer than this relay`);
    }
    const d = db;
    d.transaction(() => {
      if (version === 0) d.exec(SCHEMA);
      for (let v = Math.max(version, 1) + 1; v <= SCHEMA_VERSION; v++) {
        d.exec(MIGRATIONS[v - 2] as string);
      }
      d.pragma(`user_version = ${SCHEMA_VERSION}`);
    })();
    return db;
  } catch (err) {
    db?.close();
    if (err instanceof ServerError) throw err;
    throw new ServerError('STORAGE', `cannot open database ${file}: ${(err as Error).message}`);
  }
}

/** Prepared statements of one connection. */
export interface Statements {
  readonly getDevice: Database.Statement<[string, number], DeviceRow>;
  readonly listDevices: Database.Statement<[string], DeviceRow>;
  readonly insertDevice: Database.Statement;
  readonly upsertDevice: Database.Statement;
  readonly deleteDeviceSigned: Database.Statement;
  readonly deleteDeviceOneTime: Database.Statement;
  readonly putSigned: Database.Statement;
  readonly getSigned: Database.Statement<[string, number, string], KeyRow>;
  readonly putOneTime: Database.Statement;
  readonly firstOneTime: Database.Statement<[string, number, string], KeyRow>;
  readonly deleteOneTime: Database.Statement;
  readonly countOneTime: Database.Statement<[string, number, string], { n: number }>;
  readonly insertMail: Database.Statement;
  readonly lastMailId: Database.Statement<[], { seq: number }>;
  readonly seedMailSeq: Database.Statement;
  readonly bumpMailSeq: Database.Statement;
  readonly findMail: Database.Statement<[string, number, Uint8Array], { id: number }>;
  readonly countMail: Database.Statement<[string, number], { n: number }>;
  readonly pending: Database.Statement<[string, number, number, number], MailRow>;
  readonly getMail: Database.Statement<[number, string, number], MailRow>;
  readonly deleteMail: Database.Statement;
  readonly expire: Database.Statement<[number], { s_name: string; s_device: number }>;
  readonly storedBySender: Database.Statement<[], { s_name: string; s_device: number; n: number }>;
  readonly addReceipt: Database.Statement;
  readonly trimReceipts: Database.Statement;
  readonly pendingReceipts: Database.Statement<[string, number, number, number], ReceiptRow>;
  readonly settleReceipt: Database.Statement;
  readonly findUpload: Database.Statement<[string, number, Uint8Array], UploadRow>;
  readonly insertUpload: Database.Statement;
  readonly expireUploads: Database.Statement;
}

export function prepareStatements(db: Database.Database): Statements {
  return {
    getDevice: db.prepare<[string, number], DeviceRow>(
      'SELECT * FROM devices WHERE name = ? AND device_id = ?',
    ),
    listDevices: db.prepare<[string], DeviceRow>(
      'SELECT * FROM devices WHERE name = ? ORDER BY device_id',
    ),
    insertDevice: db.prepare(
      'INSERT OR IGNORE INTO devices (name, device_id, identity_key, certificate, registered_at) VALUES (?, ?, ?, ?, ?)',
    ),
    upsertDevice: db.prepare(
      `INSERT INTO devices (name, device_id, identity_key, certificate, registered_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (name, device_id) DO UPDATE SET identity_key = excluded.identity_key, certificate = excluded.certificate`,
    ),
    deleteDeviceSigned: db.prepare('DELETE FROM signed_prekeys WHERE name = ? AND device_id = ?'),
    deleteDeviceOneTime: db.prepare(
      'DELETE FROM one_time_prekeys WHERE name = ? AND device_id = ?',
    ),
    putSigned: db.prepare(
      'INSERT OR REPLACE INTO signed_prekeys (name, device_id, kind, id, public_key, signature) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    getSigned: db.prepare<[string, number, string], KeyRow>(
      'SELECT id, public_key, signature FROM signed_prekeys WHERE name = ? AND device_id = ? AND kind = ?',
    ),
    putOneTime: db.prepare(
      'INSERT OR IGNORE INTO one_time_prekeys (name, device_id, kind, id, public_key, signature) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    firstOneTime: db.prepare<[string, number, string], KeyRow>(
      'SELECT id, public_key, signature FROM one_time_prekeys WHERE name = ? AND device_id = ? AND kind = ? ORDER BY rowid LIMIT 1',
    ),
    deleteOneTime: db.prepare(
      'DELETE FROM one_time_prekeys WHERE name = ? AND device_id = ? AND kind = ? AND id = ?',
    ),
    countOneTime: db.prepare<[string, number, string], { n: number }>(
      'SELECT COUNT(*) AS n FROM one_time_prekeys WHERE name = ? AND device_id = ? AND kind = ?',
    ),
    insertMail: db.prepare(
      `INSERT INTO mailbox (id, r_name, r_device, s_name, s_device, client_id, kind, payload, stored_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    lastMailId: db.prepare<[], { seq: number }>(
      "SELECT seq FROM sqlite_sequence WHERE name = 'mailbox'",
    ),
    seedMailSeq: db.prepare(
      "INSERT INTO sqlite_sequence (name, seq) SELECT 'mailbox', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'mailbox')",
    ),
    bumpMailSeq: db.prepare("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'mailbox'"),
    findMail: db.prepare<[string, number, Uint8Array], { id: number }>(
      'SELECT id FROM mailbox WHERE s_name = ? AND s_device = ? AND client_id = ?',
    ),
    countMail: db.prepare<[string, number], { n: number }>(
      'SELECT COUNT(*) AS n FROM mailbox WHERE r_name = ? AND r_device = ?',
    ),
    pending: db.prepare<[string, number, number, number], MailRow>(
      'SELECT * FROM mailbox WHERE r_name = ? AND r_device = ? AND id > ? ORDER BY id LIMIT ?',
    ),
    getMail: db.prepare<[number, string, number], MailRow>(
      'SELECT * FROM mailbox WHERE id = ? AND r_name = ? AND r_device = ?',
    ),
    deleteMail: db.prepare('DELETE FROM mailbox WHERE id = ?'),
    expire: db.prepare<[number], { s_name: string; s_device: number }>(
      'DELETE FROM mailbox WHERE expires_at <= ? RETURNING s_name, s_device',
    ),
    storedBySender: db.prepare<[], { s_name: string; s_device: number; n: number }>(
      'SELECT s_name, s_device, COUNT(*) AS n FROM mailbox GROUP BY s_name, s_device',
    ),
    addReceipt: db.prepare(
      'INSERT INTO receipts (s_name, s_device, client_id, status, server_id, ts) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    trimReceipts: db.prepare(
      `DELETE FROM receipts WHERE s_name = ? AND s_device = ? AND id NOT IN
       (SELECT id FROM receipts WHERE s_name = ? AND s_device = ? ORDER BY id DESC LIMIT ?)`,
    ),
    pendingReceipts: db.prepare<[string, number, number, number], ReceiptRow>(
      'SELECT id, client_id, status, server_id, ts FROM receipts WHERE s_name = ? AND s_device = ? AND id > ? ORDER BY id LIMIT ?',
    ),
    settleReceipt: db.prepare(
      'DELETE FROM receipts WHERE server_id = ? AND s_name = ? AND s_device = ?',
    ),
    findUpload: db.prepare<[string, number, Uint8Array], UploadRow>(
      'SELECT first_id FROM group_uploads WHERE s_name = ? AND s_device = ? AND client_id = ?',
    ),
    insertUpload: db.prepare(
      'INSERT INTO group_uploads (s_name, s_device, client_id, first_id, expires_at) VALUES (?, ?, ?, ?, ?)',
    ),
    expireUploads: db.prepare('DELETE FROM group_uploads WHERE expires_at <= ?'),
  };
}

/**
 * Write operations. Each runs inside the caller's group-commit transaction; those with
 * more than one write wrap themselves in a nested transaction (a savepoint), so a
 * failing one rolls back alone.
 */
export const WRITE_OPS = {
  registerDevice(
    s: Statements,
    _db: Database.Database,
    device: DeviceRecord,
  ): { created: boolean; device: DeviceRecord } {
    const info = s.insertDevice.run(
      device.name,
      device.deviceId,
      device.identityKey,
      device.certificate ?? null,
      device.registeredAt,
    );
    if (info.changes === 1) return { created: true, device };
    const row = s.getDevice.get(device.name, device.deviceId);
    if (!row) throw new ServerError('STORAGE', 'device vanished during registration');
    return { created: false, device: toDevice(row) };
  },

  upsertDevice(s: Statements, db: Database.Database, device: DeviceRecord): boolean {
    return db.transaction(() => {
      const current = s.getDevice.get(device.name, device.deviceId);
      const replaced =
        current !== undefined && Buffer.compare(current.identity_key, device.identityKey) !== 0;
      if (replaced) {
        s.deleteDeviceSigned.run(device.name, device.deviceId);
        s.deleteDeviceOneTime.run(device.name, device.deviceId);
      }
      s.upsertDevice.run(
        device.name,
        device.deviceId,
        device.identityKey,
        device.certificate ?? null,
        device.registeredAt,
      );
      return replaced;
    })();
  },

  putPrekeys(s: Statements, db: Database.Database, address: Address, upload: PrekeyUpload): void {
    const { name, deviceId } = address;
    db.transaction(() => {
      if (upload.identityDh) {
        // Stored beside the signed prekeys (kind 'idh', id 0): one per device.
        const k = upload.identityDh;
        s.putSigned.run(name, deviceId, 'idh', 0, k.publicKey, k.signature);
      }
      if (upload.signedPrekey) {
        const k = upload.signedPrekey;
        s.putSigned.run(name, deviceId, 'ec', k.id, k.publicKey, k.signature);
      }
      if (upload.pqLastResort) {
        const k = upload.pqLastResort;
        s.putSigned.run(name, deviceId, 'pq', k.id, k.publicKey, k.signature);
      }
      for (const k of upload.oneTime ?? []) {
        s.putOneTime.run(name, deviceId, 'ec', k.id, k.publicKey, k.signature ?? null);
      }
      for (const k of upload.oneTimePq ?? []) {
        s.putOneTime.run(name, deviceId, 'pq', k.id, k.publicKey, k.signature);
      }
    })();
  },

  takePrekeyBundle(
    s: Statements,
    db: Database.Database,
    address: Address,
  ): PrekeyBundle | undefined {
    const { name, deviceId } = address;
    return db.transaction((): PrekeyBundle | undefined => {
      const dev = s.getDevice.get(name, deviceId);
      const idh = s.getSigned.get(name, deviceId, 'idh');
      const signed = s.getSigned.get(name, deviceId, 'ec');
      const lastResort = s.getSigned.get(name, deviceId, 'pq');
      if (!dev || !idh || !signed || !lastResort) return undefined;
      const ot = s.firstOneTime.get(name, deviceId, 'ec');
      const otPq = s.firstOneTime.get(name, deviceId, 'pq');
      if (ot) s.deleteOneTime.run(name, deviceId, 'ec', ot.id);
      if (otPq) s.deleteOneTime.run(name, deviceId, 'pq', otPq.id);
      const identityDh = toSigned(idh);
      return {
        device: toDevice(dev),
        identityDh: { publicKey: identityDh.publicKey, signature: identityDh.signature },
        signedPrekey: toSigned(signed),
        pqPrekey: toSigned(otPq ?? lastResort),
        pqPrekeyIsLastResort: otPq === undefined,
        ...(ot ? { oneTimePrekey: toOneTime(ot) } : {}),
        remainingOneTime: (s.countOneTime.get(name, deviceId, 'ec') as { n: number }).n,
        remainingOneTimePq: (s.countOneTime.get(name, deviceId, 'pq') as { n: number }).n,
      };
    })();
  },

  /** Records that server ids up to `upTo` may have been handed out (see `submit`). */
  reserveIds(s: Statements, _db: Database.Database, upTo: number): void {
    s.seedMailSeq.run();
    s.bumpMailSeq.run(upTo);
  },

  /** Stores mail under the id the store assigned when it accepted it (see `submit`). */
  insertMail(s: Statements, _db: Database.Database, id: number, m: NewMail): void {
    s.insertMail.run(
      id,
      m.recipient.name,
      m.recipient.deviceId,
      m.sender.name,
      m.sender.deviceId,
      m.clientMessageId,
      m.kind,
      m.payload,
      m.storedAt,
      m.expiresAt,
    );
  },

  /**
   * Stores every copy of a group upload under the ids the store assigned (see
   * `submitGroup`) and remembers the upload, all in one savepoint: all or nothing.
   */
  insertGroup(
    s: Statements,
    db: Database.Database,
    copies: readonly GroupCopy[],
    m: NewGroupMail,
  ): void {
    db.transaction(() => {
      for (const c of copies) {
        s.insertMail.run(
          c.serverMessageId,
          c.recipient.name,
          c.recipient.deviceId,
          m.sender.name,
          m.sender.deviceId,
          m.clientMessageId,
          'group',
          m.payload,
          m.storedAt,
          m.expiresAt,
        );
      }
      const first = copies[0];
      if (first === undefined) throw new ServerError('STORAGE', 'group upload without copies');
      s.insertUpload.run(
        m.sender.name,
        m.sender.deviceId,
        m.clientMessageId,
        first.serverMessageId,
        m.expiresAt,
      );
    })();
  },

  ack(
    s: Statements,
    _db: Database.Database,
    recipient: Address,
    serverMessageId: number,
  ): MailItem | undefined {
    const row = s.getMail.get(serverMessageId, recipient.name, recipient.deviceId);
    if (!row) return undefined;
    s.deleteMail.run(serverMessageId);
    return toMail(row);
  },

  /** Deletes expired mail; returns the sender of each deleted item. */
  expire(s: Statements, _db: Database.Database, now: number): Address[] {
    s.expireUploads.run(now);
    return s.expire.all(now).map((r) => ({ name: r.s_name, deviceId: r.s_device }));
  },

  addReceipt(
    s: Statements,
    db: Database.Database,
    sender: Address,
    receipt: Receipt,
    maxPerSender: number,
  ): void {
    const { name, deviceId } = sender;
    db.transaction(() => {
      s.addReceipt.run(
        name,
        deviceId,
        receipt.clientMessageId,
        receipt.status,
        receipt.serverMessageId,
        receipt.timestamp,
      );
      s.trimReceipts.run(name, deviceId, name, deviceId, maxPerSender);
    })();
  },

  settleReceipt(
    s: Statements,
    _db: Database.Database,
    sender: Address,
    serverMessageId: number,
  ): number {
    return s.settleReceipt.run(serverMessageId, sender.name, sender.deviceId).changes;
  },
};

export type WriteOpName = keyof typeof WRITE_OPS;
type Rest<F> = F extends (s: Statements, db: Database.Database, ...args: infer A) => unknown
  ? A
  : never;
export type WriteArgs<K extends WriteOpName> = Rest<(typeof WRITE_OPS)[K]>;
export type WriteResult<K extends WriteOpName> = ReturnType<(typeof WRITE_OPS)[K]>;

/** One queued write as it crosses to the writer thread. */
export interface WriteRequest {
  readonly op: WriteOpName;
  readonly args: readonly unknown[];
}

/** Outcome of one write in a batch. */
export type WriteOutcome =
  { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly message: string };

/**
 * Mail that is stored and acknowledged by its recipient within the same batch (it was
 * handed over live while the previous commit ran) never needs to touch the disk: both
 * writes are dropped and the ack answers with the mail itself. Returns the results of
 * the dropped writes by batch index.
 */
function cancelDeliveredInBatch(batch: readonly WriteRequest[]): Map<number, unknown> {
  const inserts = new Map<number, { index: number; mail: NewMail }>();
  const out = new Map<number, unknown>();
  batch.forEach((w, index) => {
    if (w.op === 'insertMail') {
      const [id, mail] = w.args as [number, NewMail];
      inserts.set(id, { index, mail });
    } else if (w.op === 'ack') {
      const [recipient, id] = w.args as [Address, number];
      const ins = inserts.get(id);
      if (
        ins &&
        ins.mail.recipient.name === recipient.name &&
        ins.mail.recipient.deviceId === recipient.deviceId
      ) {
        inserts.delete(id);
        out.set(ins.index, undefined);
        const item: MailItem = { ...ins.mail, serverMessageId: id };
        out.set(index, item);
      }
    }
  });
  return out;
}

/**
 * Runs a batch in one transaction (one commit, one fsync with synchronous=FULL).
 * A failing op is reported alone; if the commit itself fails, every op fails.
 */
export function runBatch(
  db: Database.Database,
  s: Statements,
  batch: readonly WriteRequest[],
): WriteOutcome[] {
  const out: WriteOutcome[] = [];
  const cancelled = cancelDeliveredInBatch(batch);
  try {
    db.transaction(() => {
      for (const [i, w] of batch.entries()) {
        if (cancelled.has(i)) {
          out.push({ ok: true, value: cancelled.get(i) });
          continue;
        }
        try {
          const fn = WRITE_OPS[w.op] as (
            s: Statements,
            db: Database.Database,
            ...a: unknown[]
          ) => unknown;
          out.push({ ok: true, value: fn(s, db, ...w.args) });
        } catch (err) {
          out.push({ ok: false, message: (err as Error).message });
        }
      }
      // Ids of mail dropped above were handed out too: never reuse them after a restart.
      let maxId = 0;
      for (const w of batch) {
        if (w.op === 'insertMail') maxId = Math.max(maxId, w.args[0] as number);
        if (w.op === 'insertGroup') {
          for (const c of w.args[0] as readonly GroupCopy[])
            maxId = Math.max(maxId, c.serverMessageId);
        }
      }
      if (maxId > 0) {
        s.seedMailSeq.run();
        s.bumpMailSeq.run(maxId);
      }
    })();
  } catch (err) {
    const message = (err as Error).message;
    return batch.map(() => ({ ok: false, message }));
  }
  return out;
}
