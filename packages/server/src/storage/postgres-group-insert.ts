/**
 * One group upload on PostgreSQL, inside the transaction the mail writer opened for it
 * alone: every copy and the upload record commit together or not at all.
 *
 * Locks, in this order (so no two transactions wait on each other in a cycle): the
 * upload's own key (class 2), which makes two nodes handling the same retry serialise
 * on the duplicate check, then every recipient's mailbox key in key order, as the
 * writer's batches of single mail take them, so each recipient's ids still grow in
 * commit order and its cap is counted under the lock.
 */
import type pg from 'pg';
import { ServerError } from '../errors.js';
import { deviceKey, distinctRecipients, uploadKey } from './group-mail.js';
import { buf, type UploadRow } from './postgres-rows.js';
import type { Address, GroupCopy, GroupEnqueueResult, NewGroupMail } from './types.js';

/** Advisory lock class of group upload keys (class 1 is receipts, see postgres.ts). */
const UPLOAD_LOCK_CLASS = 2;

/** Decides and inserts the upload; the caller commits. */
export async function insertGroup(
  c: pg.PoolClient,
  mail: NewGroupMail,
  maxPerRecipient: number,
): Promise<GroupEnqueueResult> {
  const { sender } = mail;
  const clientId = buf(mail.clientMessageId);
  await c.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [
    UPLOAD_LOCK_CLASS,
    uploadKey(sender, mail.clientMessageId),
  ]);
  const known = await c.query<UploadRow>(
    'SELECT first_id FROM group_uploads WHERE s_name = $1 AND s_device = $2 AND client_id = $3',
    [sender.name, sender.deviceId, clientId],
  );
  const firstKnown = known.rows[0]?.first_id;
  if (firstKnown !== undefined) return { ok: true, duplicate: true, serverMessageId: firstKnown };

  const listed = distinctRecipients(mail);
  const names = listed.map((r) => r.name);
  const devices = listed.map((r) => r.deviceId);
  await c.query(
    `SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0)))
       FROM (SELECT k FROM unnest($1::text[]) AS k ORDER BY k) AS sorted`,
    [listed.map(deviceKey)],
  );
  const registered = new Set(
    (
      await c.query<{ name: string; device_id: number }>({
        name: 'parley-group-devices',
        text: `SELECT d.name, d.device_id FROM devices d
                 JOIN unnest($1::text[], $2::bigint[]) AS k(name, device_id)
                   ON d.name = k.name AND d.device_id = k.device_id`,
        values: [names, devices],
      })
    ).rows.map((r) => deviceKey({ name: r.name, deviceId: r.device_id })),
  );
  const counts = new Map(
    (
      await c.query<{ r_name: string; r_device: number; n: number }>({
        name: 'parley-group-counts',
        text: `SELECT m.r_name, m.r_device, count(*)::bigint AS n FROM mailbox m
                 JOIN unnest($1::text[], $2::bigint[]) AS k(r_name, r_device)
                   ON m.r_name = k.r_name AND m.r_device = k.r_device
                GROUP BY m.r_name, m.r_device`,
        values: [names, devices],
      })
    ).rows.map((r) => [deviceKey({ name: r.r_name, deviceId: r.r_device }), r.n]),
  );
  let unknown = 0;
  let full = 0;
  const take: Address[] = [];
  for (const r of listed) {
    const k = deviceKey(r);
    if (!registered.has(k)) unknown++;
    else if ((counts.get(k) ?? 0) >= maxPerRecipient) full++;
    else take.push(r);
  }
  if (take.length === 0) return { ok: false, reason: 'no-recipient', unknown, full };

  // ORDER BY the input position: identity values are drawn in that order, so ids
  // follow the listed order.
  const inserted = await c.query<{ r_name: string; r_device: number; id: number }>({
    name: 'parley-group-insert',
    text: `INSERT INTO mailbox (r_name, r_device, s_name, s_device, client_id, kind, payload, stored_at, expires_at)
           SELECT t.r_name, t.r_device, $3, $4, $5, 'group', $6, $7, $8
             FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS t(r_name, r_device, n)
            ORDER BY t.n
           RETURNING r_name, r_device, id`,
    values: [
      take.map((r) => r.name),
      take.map((r) => r.deviceId),
      sender.name,
      sender.deviceId,
      clientId,
      buf(mail.payload),
      mail.storedAt,
      mail.expiresAt,
    ],
  });
  const ids = new Map(
    inserted.rows.map((r) => [deviceKey({ name: r.r_name, deviceId: r.r_device }), r.id]),
  );
  const copies: GroupCopy[] = take.map((recipient) => {
    const id = ids.get(deviceKey(recipient));
    if (id === undefined) throw new ServerError('STORAGE', 'group copy vanished during insert');
    return { recipient, serverMessageId: id };
  });
  await c.query(
    `INSERT INTO group_uploads (s_name, s_device, client_id, first_id, expires_at)
     VALUES ($1, $2, $3, $4, $5)`,
    [
      sender.name,
      sender.deviceId,
      clientId,
      (copies[0] as GroupCopy).serverMessageId,
      mail.expiresAt,
    ],
  );
  return { ok: true, duplicate: false, copies, unknown, full };
}
