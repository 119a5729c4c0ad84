/**
 * The SQLite `outbox` table: one row per outbox record (the client core's
 * outbox-records.ts owns what a record means), and its schema 6 upgrade from untyped
 * rows beside JSON meta records `outbox:<wire id>`.
 */
import type Database from 'better-sqlite3-multiple-ciphers';
import { LEGACY_OUTBOX_META_PREFIX, typedOutbox } from '@parley/client';
import type { LegacyOutboxEntry, OutboxEntry } from '@parley/client';

export interface OutboxRow {
  id: string;
  peer: string;
  device: number;
  payload: Uint8Array;
  created_at: number;
  attempts: number;
  recipients?: string | null;
  /** Absent in rows (and backup images) from before schema 6. */
  frame?: string;
  kind?: string;
  message?: string | null;
  state?: string;
}

export const PUT_OUTBOX_SQL = `INSERT INTO outbox (id, peer, device, payload, created_at, attempts, recipients, frame, kind, message, state)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT(id) DO UPDATE SET peer = excluded.peer, device = excluded.device, payload = excluded.payload,
    created_at = excluded.created_at, attempts = excluded.attempts, recipients = excluded.recipients,
    frame = excluded.frame, kind = excluded.kind, message = excluded.message, state = excluded.state`;

export function outboxParams(e: OutboxEntry): unknown[] {
  return [
    e.id,
    e.peer,
    e.deviceId,
    e.payload,
    e.createdAt,
    e.attempts,
    e.recipients ? JSON.stringify(e.recipients) : null,
    e.frame,
    e.kind,
    e.message ?? null,
    e.state,
  ];
}

const bytes = (b: Uint8Array): Uint8Array =>
  new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));

/** A row as an entry; a row from before schema 6 has no record fields (`typedOutbox` adds them). */
export function outboxEntryOf(r: OutboxRow): LegacyOutboxEntry {
  return {
    id: r.id,
    peer: r.peer,
    deviceId: r.device,
    payload: bytes(r.payload),
    createdAt: r.created_at,
    attempts: r.attempts,
    // Absent (not just NULL) in a backup image from before schema 5.
    ...(typeof r.recipients === 'string'
      ? { recipients: JSON.parse(r.recipients) as string[] }
      : {}),
    ...(typeof r.state === 'string'
      ? {
          frame: r.frame as OutboxEntry['frame'],
          kind: r.kind as OutboxEntry['kind'],
          ...(typeof r.message === 'string' ? { message: r.message } : {}),
          state: r.state as OutboxEntry['state'],
        }
      : {}),
  };
}

/**
 * v6: typed outbox records. Each row gains its record's fields (frame, envelope kind,
 * the message it delivers, pending or sent); each old meta record becomes its row's
 * fields, or a `sent` row when its entry had already left; the meta records go.
 */
export function typeOutboxRows(db: Database.Database): void {
  const cols = new Set((db.pragma('table_info(outbox)') as { name: string }[]).map((c) => c.name));
  const entries = (
    db.prepare('SELECT * FROM outbox ORDER BY created_at, rowid').all() as OutboxRow[]
  ).map(outboxEntryOf);
  if (!cols.has('frame'))
    db.exec(`ALTER TABLE outbox ADD COLUMN frame TEXT NOT NULL DEFAULT 'send'`);
  if (!cols.has('kind')) db.exec(`ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'msg'`);
  if (!cols.has('message')) db.exec('ALTER TABLE outbox ADD COLUMN message TEXT');
  if (!cols.has('state'))
    db.exec(`ALTER TABLE outbox ADD COLUMN state TEXT NOT NULL DEFAULT 'pending'`);
  const prefix = LEGACY_OUTBOX_META_PREFIX;
  const metaRows = db
    .prepare('SELECT key, value FROM meta WHERE substr(key, 1, ?) = ?')
    .all(prefix.length, prefix) as { key: string; value: Uint8Array }[];
  const records = new Map(metaRows.map((r) => [r.key.slice(prefix.length), bytes(r.value)]));
  const peerOf = db
    .prepare(`SELECT peer FROM messages WHERE direction = 'out' AND id = ? ORDER BY seq LIMIT 1`)
    .pluck();
  const typed = typedOutbox({
    entries,
    records,
    outgoingPeer: (id) => peerOf.get(id) as string | undefined,
  });
  const put = db.prepare(PUT_OUTBOX_SQL);
  for (const e of typed) put.run(...outboxParams(e));
  db.prepare('DELETE FROM meta WHERE substr(key, 1, ?) = ?').run(prefix.length, prefix);
}
