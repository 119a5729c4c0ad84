/**
 * The statements behind the PostgreSQL backend's group-committed small writes (see
 * `postgres-batcher.ts`): one statement per batch, one result per item in call order,
 * each item answered as if it had run alone.
 */
import type pg from 'pg';
import { buf, toMail, type MailRow } from './postgres-rows.js';
import type { Address, MailItem, Receipt } from './types.js';

type Query = <R extends pg.QueryResultRow>(
  text: string,
  values: unknown[],
) => Promise<pg.QueryResult<R>>;

export interface AckItem {
  readonly recipient: Address;
  readonly serverMessageId: number;
}

/** Deletes acked mail; an item gets its mail, or undefined (not its recipient's, or gone). */
export async function deleteAcked(
  q: Query,
  items: readonly AckItem[],
): Promise<(MailItem | undefined)[]> {
  const r = await q<MailRow>(
    `DELETE FROM mailbox m
      USING unnest($1::bigint[], $2::text[], $3::bigint[]) AS k(id, r_name, r_device)
      WHERE m.id = k.id AND m.r_name = k.r_name AND m.r_device = k.r_device
      RETURNING m.*`,
    [
      items.map((i) => i.serverMessageId),
      items.map((i) => i.recipient.name),
      items.map((i) => i.recipient.deviceId),
    ],
  );
  const key = (id: number, a: Address): string => `${id}:${a.deviceId}:${a.name}`;
  const deleted = new Map(
    r.rows.map((row) => [key(row.id, { name: row.r_name, deviceId: row.r_device }), row]),
  );
  return items.map((i) => {
    const k = key(i.serverMessageId, i.recipient);
    const row = deleted.get(k);
    if (!row) return undefined;
    // The same ack twice in one batch: the first one deleted it.
    deleted.delete(k);
    return toMail(row);
  });
}

export interface SettleItem {
  readonly sender: Address;
  readonly serverMessageId: number;
}

/** Deletes kept receipts by server id; an item gets how many of its sender's went. */
export async function settleReceipts(q: Query, items: readonly SettleItem[]): Promise<number[]> {
  const r = await q<{ server_id: number; s_name: string; s_device: number }>(
    `DELETE FROM receipts r
      USING unnest($1::bigint[], $2::text[], $3::bigint[]) AS k(server_id, s_name, s_device)
      WHERE r.server_id = k.server_id AND r.s_name = k.s_name AND r.s_device = k.s_device
      RETURNING r.server_id, r.s_name, r.s_device`,
    [
      items.map((i) => i.serverMessageId),
      items.map((i) => i.sender.name),
      items.map((i) => i.sender.deviceId),
    ],
  );
  const gone = new Map<string, number>();
  for (const row of r.rows) {
    const k = `${row.server_id}:${row.s_device}:${row.s_name}`;
    gone.set(k, (gone.get(k) ?? 0) + 1);
  }
  return items.map((i) => {
    const k = `${i.serverMessageId}:${i.sender.deviceId}:${i.sender.name}`;
    const n = gone.get(k) ?? 0;
    gone.delete(k);
    return n;
  });
}

export interface ReceiptItem {
  readonly sender: Address;
  readonly receipt: Receipt;
  readonly maxPerSender: number;
}

/**
 * Keeps receipts in call order, then trims each sender's to its newest `maxPerSender`,
 * under each sender's receipt lock (class 1), taken in key order so nodes cannot
 * deadlock. Runs inside the caller's transaction.
 */
export async function addReceipts(c: pg.PoolClient, items: readonly ReceiptItem[]): Promise<void> {
  const senders = new Map<string, { sender: Address; max: number }>();
  for (const i of items) {
    const k = `${i.sender.deviceId}:${i.sender.name}`;
    const s = senders.get(k);
    senders.set(k, { sender: i.sender, max: Math.min(s?.max ?? i.maxPerSender, i.maxPerSender) });
  }
  await c.query({
    name: 'parley-receipt-lock',
    text: `SELECT count(pg_advisory_xact_lock(1, hashtext(k)))
             FROM (SELECT k FROM unnest($1::text[]) AS k ORDER BY k) AS sorted`,
    values: [[...senders.keys()].sort()],
  });
  await c.query({
    name: 'parley-receipt-insert',
    text: `INSERT INTO receipts (s_name, s_device, client_id, status, server_id, ts)
           SELECT s_name, s_device, client_id, status, server_id, ts
             FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::text[], $5::bigint[], $6::bigint[])
                  WITH ORDINALITY AS t(s_name, s_device, client_id, status, server_id, ts, n)
            ORDER BY n`,
    values: [
      items.map((i) => i.sender.name),
      items.map((i) => i.sender.deviceId),
      items.map((i) => buf(i.receipt.clientMessageId)),
      items.map((i) => i.receipt.status),
      items.map((i) => i.receipt.serverMessageId),
      items.map((i) => i.receipt.timestamp),
    ],
  });
  const list = [...senders.values()];
  await c.query({
    name: 'parley-receipt-trim',
    text: `DELETE FROM receipts r USING (
             SELECT x.id FROM (
               SELECT rc.id, k.max,
                      row_number() OVER (PARTITION BY rc.s_name, rc.s_device ORDER BY rc.id DESC) AS rn
                 FROM receipts rc
                 JOIN unnest($1::text[], $2::bigint[], $3::bigint[]) AS k(s_name, s_device, max)
                   ON rc.s_name = k.s_name AND rc.s_device = k.s_device) AS x
              WHERE x.rn > x.max) AS d
           WHERE r.id = d.id`,
    values: [
      list.map((s) => s.sender.name),
      list.map((s) => s.sender.deviceId),
      list.map((s) => s.max),
    ],
  });
}
