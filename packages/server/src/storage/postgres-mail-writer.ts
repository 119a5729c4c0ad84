/**
 * Group commit of new mail on PostgreSQL: submits that arrive while a transaction is
 * committing join the next one, so one WAL flush serves many messages, and the answer
 * "queued" still waits for the COMMIT that made the item durable.
 *
 * Order: one batch at a time per node, in call order, so this node's decisions
 * (duplicate, full, id) follow call order. Across nodes, each batch holds a
 * transaction-scoped advisory lock on every recipient it writes to until it commits:
 * a recipient's server ids (an identity column) grow in commit order, which is what lets
 * readers page by id without ever skipping a row, and the cap is counted under the lock.
 * Locks are taken in key order, so two nodes' batches cannot deadlock.
 *
 * Mail the relay hands over live may instead be held (see `SubmitOptions.holdMs`): a
 * batch decides such items and draws their ids under the same locks, in a transaction
 * that writes nothing but still flushes the WAL at COMMIT (its xid forces that), so an
 * id shown live is never drawn again after a database crash. Such an item is written
 * later, with that id, only if its hold ends without an ack. Before any batch inserts
 * new mail for a recipient, that recipient's held items are written first in the same
 * transaction (`WriterHooks.releaseFor`), so this node's mail for one recipient still
 * commits in id order.
 */
import type pg from 'pg';
import { ServerError } from '../errors.js';
import { storageError } from './postgres-pool.js';
import { buf } from './postgres-rows.js';
import { insertGroup } from './postgres-group-insert.js';
import type { Address, EnqueueResult, GroupEnqueueResult, NewGroupMail, NewMail } from './types.js';

/**
 * Most items in one transaction: bounds how long the recipients' locks are held and how
 * much one failed commit has to refuse. A few hundred amortise the flush well.
 */
const MAX_BATCH_ITEMS = 256;

/**
 * How a queued item is written: `insert` (decide, draw an id, store it), `hold` (decide
 * and draw a durable id, store nothing: the item is then held by the store), or `write`
 * (decided earlier while held: store it with its id).
 */
export type WriteMode = 'insert' | 'hold' | { readonly write: number };

/** One submitted item waiting for its batch. */
export interface Queued {
  readonly kind?: undefined;
  readonly mail: NewMail;
  readonly maxPerRecipient: number;
  mode: WriteMode;
  /**
   * The batch is decided (`insert`: its transaction is about to commit; `hold`: the
   * transaction drawing the id committed, and `held` tells whether the store must now
   * hold it; then `commit`/`fail` are never called).
   */
  readonly decide: (d: EnqueueResult, held: boolean) => void;
  /**
   * The batch failed before deciding: the submit rejects, nothing was stored (for a
   * `write` item, decided long before, this is its `fail`).
   */
  readonly refuse: (e: unknown) => void;
  /** The batch failed after deciding: `committed` rejects, nothing was stored. */
  readonly fail: (e: unknown) => void;
  /** COMMIT returned. */
  readonly commit: () => void;
}

/** A group upload waiting for its transaction (it runs alone, in call order). */
interface QueuedGroup {
  readonly kind: 'group';
  readonly mail: NewGroupMail;
  readonly maxPerRecipient: number;
  readonly decide: (d: GroupEnqueueResult) => void;
  readonly refuse: (e: unknown) => void;
  readonly fail: (e: unknown) => void;
  readonly commit: () => void;
}

/** Lock key of an address: its mailbox (one-bigint key space) or its receipts (class 1). */
export const addressKey = (a: Address): string => `${a.deviceId}:${a.name}`;

/** What the writer asks of the store that holds mail. */
export interface WriterHooks {
  /** Takes out the held items of these recipients, as `write` items, in id order. */
  releaseFor(recipientKeys: ReadonlySet<string>): Queued[];
  /** Items of a recipient held in memory (they count against its mailbox cap). */
  heldCount(recipientKey: string): number;
}

export class PostgresMailWriter {
  readonly #pool: pg.Pool;
  readonly #hooks: WriterHooks;
  readonly #queue: (Queued | QueuedGroup)[] = [];
  #running: Promise<void> | undefined;

  constructor(pool: pg.Pool, hooks: WriterHooks) {
    this.#pool = pool;
    this.#hooks = hooks;
  }

  /** Queues an item; the callbacks settle as its batch decides and commits. */
  push(item: Queued | QueuedGroup): void {
    this.#queue.push(item);
    this.#kick();
  }

  /** Resolves once nothing is queued or committing. */
  async drain(): Promise<void> {
    while (this.#running) await this.#running;
  }

  #kick(): void {
    if (this.#running || this.#queue.length === 0) return;
    // A group upload runs in a transaction of its own; single mail batches stop before
    // one, so every item is still decided in call order.
    const head = this.#queue[0] as Queued | QueuedGroup;
    let run: Promise<void>;
    if (head.kind === 'group') {
      // Held mail of its recipients has lower ids: written first, so each recipient's
      // commits stay in id order (the group runs on the next turn).
      const released = this.#hooks.releaseFor(new Set(head.mail.recipients.map(addressKey)));
      if (released.length > 0) {
        run = this.#runBatch(released);
      } else {
        this.#queue.shift();
        run = this.#runGroup(head);
      }
    } else {
      const end = this.#queue.findIndex((q) => q.kind === 'group');
      const n = Math.min(end < 0 ? this.#queue.length : end, MAX_BATCH_ITEMS);
      run = this.#runBatch(this.#plan(this.#queue.splice(0, n) as Queued[]));
    }
    this.#running = run.finally(() => {
      this.#running = undefined;
      this.#kick();
    });
  }

  /**
   * Fixes each item's mode for this batch. A recipient with new mail to insert gets its
   * held items written first (they have lower ids) and is not held for in this batch;
   * an item whose sender and client message id appear twice in the batch is inserted,
   * so the duplicate is decided under the locks like any other.
   */
  #plan(items: Queued[]): Queued[] {
    const inserting = new Set<string>();
    const seen = new Map<string, number>();
    for (const q of items) {
      if (q.mode === 'insert') inserting.add(addressKey(q.mail.recipient));
      const k = dedupKey(q.mail);
      seen.set(k, (seen.get(k) ?? 0) + 1);
    }
    for (const q of items) {
      if (
        q.mode === 'hold' &&
        (inserting.has(addressKey(q.mail.recipient)) || (seen.get(dedupKey(q.mail)) ?? 0) > 1)
      ) {
        q.mode = 'insert';
        inserting.add(addressKey(q.mail.recipient));
      }
    }
    const released = inserting.size > 0 ? this.#hooks.releaseFor(inserting) : [];
    return released.length > 0 ? [...released, ...items] : items;
  }

  async #runBatch(batch: readonly Queued[]): Promise<void> {
    const holds = batch.filter((q) => q.mode === 'hold');
    const writes = holds.length === 0 ? batch : batch.filter((q) => q.mode !== 'hold');
    // Disjoint recipients (see #plan), so the two transactions may run in either order.
    await Promise.all([
      holds.length > 0 ? this.#runHolds(holds) : undefined,
      writes.length > 0 ? this.#run(writes) : undefined,
    ]);
  }

  /** Decides `hold` items and draws their ids; nothing is stored. */
  async #runHolds(batch: readonly Queued[]): Promise<void> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (err) {
      const e = storageError(err);
      for (const q of batch) q.refuse(e);
      return;
    }
    let decisions: { decision: EnqueueResult; held: boolean }[];
    try {
      await client.query('BEGIN');
      await lockRecipients(client, batch);
      decisions = await decideHolds(client, batch, this.#hooks);
      await client.query('COMMIT');
      client.release();
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release(true);
      const e = storageError(err);
      for (const q of batch) q.refuse(e);
      return;
    }
    batch.forEach((q, i) => {
      const d = decisions[i] as { decision: EnqueueResult; held: boolean };
      q.decide(d.decision, d.held);
      // A duplicate of stored mail, or a refusal: nothing more to wait for.
      if (!d.held) q.commit();
    });
  }

  async #runGroup(q: QueuedGroup): Promise<void> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (err) {
      q.refuse(storageError(err));
      return;
    }
    let decided = false;
    try {
      await client.query('BEGIN');
      const decision = await insertGroup(client, q.mail, q.maxPerRecipient);
      q.decide(decision);
      decided = true;
      await client.query('COMMIT');
      client.release();
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release(true);
      (decided ? q.fail : q.refuse)(storageError(err));
      return;
    }
    q.commit();
  }

  async #run(batch: readonly Queued[]): Promise<void> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (err) {
      const e = storageError(err);
      for (const q of batch) q.refuse(e);
      return;
    }
    let decided = false;
    try {
      await client.query('BEGIN');
      await lockRecipients(client, batch);
      const held = batch.filter((q) => typeof q.mode === 'object');
      if (held.length > 0) await writeHeld(client, held);
      const inserts = held.length === 0 ? batch : batch.filter((q) => q.mode === 'insert');
      const decisions = inserts.length > 0 ? await decideBatch(client, inserts) : [];
      // Known before COMMIT, so the relay can hand mail over live while it commits.
      inserts.forEach((q, i) => q.decide(decisions[i] as EnqueueResult, false));
      decided = true;
      await client.query('COMMIT');
      client.release();
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      // A connection that failed mid-transaction may be broken: do not reuse it.
      client.release(true);
      const e = storageError(err);
      for (const q of batch) (decided ? q.fail : q.refuse)(e);
      return;
    }
    for (const q of batch) q.commit();
  }
}

const dedupKey = (m: NewMail): string =>
  `${m.sender.deviceId}:${m.sender.name}:${Buffer.from(m.clientMessageId).toString('hex')}`;

/** Takes the batch's recipient locks, in key order (see the file comment). */
async function lockRecipients(c: pg.PoolClient, batch: readonly Queued[]): Promise<void> {
  const keys = [...new Set(batch.map((q) => addressKey(q.mail.recipient)))].sort();
  await c.query({
    name: 'parley-mail-lock',
    text: `SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0)))
             FROM (SELECT k FROM unnest($1::text[]) AS k ORDER BY k) AS sorted`,
    values: [keys],
  });
}

/**
 * Stores held items with the ids they were shown with. One that meanwhile became a
 * duplicate (its sender's retry stored on another node) is left out: the stored copy
 * stands for it.
 */
async function writeHeld(c: pg.PoolClient, items: readonly Queued[]): Promise<void> {
  const rows = items.map((q) => q.mail);
  await c.query({
    name: 'parley-mail-write-held',
    text: `INSERT INTO mailbox (id, r_name, r_device, s_name, s_device, client_id, kind, payload, stored_at, expires_at)
           OVERRIDING SYSTEM VALUE
           SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::bigint[],
                                $6::bytea[], $7::text[], $8::bytea[], $9::bigint[], $10::bigint[])
           ON CONFLICT DO NOTHING`,
    values: [
      items.map((q) => (q.mode as { write: number }).write),
      rows.map((m) => m.recipient.name),
      rows.map((m) => m.recipient.deviceId),
      rows.map((m) => m.sender.name),
      rows.map((m) => m.sender.deviceId),
      rows.map((m) => buf(m.clientMessageId)),
      rows.map((m) => m.kind),
      rows.map((m) => buf(m.payload)),
      rows.map((m) => m.storedAt),
      rows.map((m) => m.expiresAt),
    ],
  });
}

/**
 * Decides `hold` items in call order (duplicate of stored mail, full mailbox counting
 * held items, or a new id), under the batch's locks. `pg_current_xact_id()` gives the
 * transaction an xid, so its COMMIT flushes the WAL, sequence records included.
 */
async function decideHolds(
  c: pg.PoolClient,
  batch: readonly Queued[],
  hooks: WriterHooks,
): Promise<{ decision: EnqueueResult; held: boolean }[]> {
  const mails = batch.map((q) => q.mail);
  const r = await c.query<{ id: number; dup: number | null; n: number }>({
    name: 'parley-mail-hold',
    text: `SELECT nextval(pg_get_serial_sequence('mailbox', 'id')) AS id,
                  (SELECT m.id FROM mailbox m
                    WHERE m.s_name = t.s_name AND m.s_device = t.s_device
                      AND m.client_id = t.client_id) AS dup,
                  (SELECT count(*) FROM mailbox m
                    WHERE m.r_name = t.r_name AND m.r_device = t.r_device)::bigint AS n,
                  pg_current_xact_id() AS xid
             FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::bytea[])
                  WITH ORDINALITY AS t(r_name, r_device, s_name, s_device, client_id, ord)
            ORDER BY t.ord`,
    values: [
      mails.map((m) => m.recipient.name),
      mails.map((m) => m.recipient.deviceId),
      mails.map((m) => m.sender.name),
      mails.map((m) => m.sender.deviceId),
      mails.map((m) => buf(m.clientMessageId)),
    ],
  });
  const added = new Map<string, number>();
  return batch.map((q, i) => {
    const row = r.rows[i];
    if (!row) throw new ServerError('STORAGE', 'hold decision row missing');
    if (row.dup !== null) {
      return { decision: { ok: true, serverMessageId: row.dup, duplicate: true }, held: false };
    }
    const rk = addressKey(q.mail.recipient);
    const earlier = added.get(rk) ?? 0;
    if (row.n + hooks.heldCount(rk) + earlier >= q.maxPerRecipient) {
      return { decision: { ok: false, reason: 'mailbox-full' }, held: false };
    }
    added.set(rk, earlier + 1);
    return { decision: { ok: true, serverMessageId: row.id, duplicate: false }, held: true };
  });
}

/**
 * Decides a whole batch in a fixed number of statements, in call order: an item is a
 * duplicate if its sender's client message id is stored already (or earlier in the
 * batch), else refused if its recipient's mailbox is full, else inserted. Runs under the
 * batch's recipient locks, so the counts cannot change underneath.
 */
async function decideBatch(c: pg.PoolClient, batch: readonly Queued[]): Promise<EnqueueResult[]> {
  const mails = batch.map((q) => q.mail);
  const stored = new Map<string, number>();
  const dupRows = await c.query<{
    s_name: string;
    s_device: number;
    client_id: Buffer;
    id: number;
  }>({
    name: 'parley-mail-dups',
    text: `SELECT m.s_name, m.s_device, m.client_id, m.id FROM mailbox m
             JOIN unnest($1::text[], $2::bigint[], $3::bytea[]) AS k(s_name, s_device, client_id)
               ON m.s_name = k.s_name AND m.s_device = k.s_device AND m.client_id = k.client_id`,
    values: [
      mails.map((m) => m.sender.name),
      mails.map((m) => m.sender.deviceId),
      mails.map((m) => buf(m.clientMessageId)),
    ],
  });
  for (const r of dupRows.rows) {
    stored.set(`${r.s_device}:${r.s_name}:${r.client_id.toString('hex')}`, r.id);
  }
  const recipients = [
    ...new Map(mails.map((m) => [addressKey(m.recipient), m.recipient])).values(),
  ];
  const counts = new Map<string, number>();
  const countRows = await c.query<{ r_name: string; r_device: number; n: number }>({
    name: 'parley-mail-counts',
    text: `SELECT m.r_name, m.r_device, count(*)::bigint AS n FROM mailbox m
             JOIN unnest($1::text[], $2::bigint[]) AS k(r_name, r_device)
               ON m.r_name = k.r_name AND m.r_device = k.r_device
            GROUP BY m.r_name, m.r_device`,
    values: [recipients.map((r) => r.name), recipients.map((r) => r.deviceId)],
  });
  for (const r of countRows.rows) counts.set(`${r.r_device}:${r.r_name}`, r.n);

  // Plan in call order: 'dup' (stored id known), 'dupOf' (an earlier item of the batch),
  // 'full', or an insert.
  type Plan =
    | { kind: 'dup'; id: number }
    | { kind: 'dupOf'; index: number }
    | { kind: 'full' }
    | { kind: 'insert' };
  const plans: Plan[] = [];
  const firstInBatch = new Map<string, number>();
  const toInsert: number[] = [];
  batch.forEach((q, i) => {
    const dk = dedupKey(q.mail);
    const storedId = stored.get(dk);
    const earlier = firstInBatch.get(dk);
    if (storedId !== undefined) plans.push({ kind: 'dup', id: storedId });
    else if (earlier !== undefined) plans.push({ kind: 'dupOf', index: earlier });
    else {
      const rk = addressKey(q.mail.recipient);
      const n = counts.get(rk) ?? 0;
      if (n >= q.maxPerRecipient) plans.push({ kind: 'full' });
      else {
        counts.set(rk, n + 1);
        firstInBatch.set(dk, i);
        toInsert.push(i);
        plans.push({ kind: 'insert' });
      }
    }
  });

  const ids = new Map<number, number>();
  if (toInsert.length > 0) {
    const rows = toInsert.map((i) => (batch[i] as Queued).mail);
    // ORDER BY the input position: identity values are drawn in that order, so ids
    // follow call order.
    const inserted = await c.query<{
      s_name: string;
      s_device: number;
      client_id: Buffer;
      id: number;
    }>({
      name: 'parley-mail-insert',
      text: `INSERT INTO mailbox (r_name, r_device, s_name, s_device, client_id, kind, payload, stored_at, expires_at)
             SELECT r_name, r_device, s_name, s_device, client_id, kind, payload, stored_at, expires_at
               FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::bytea[], $6::text[],
                           $7::bytea[], $8::bigint[], $9::bigint[])
                    WITH ORDINALITY AS t(r_name, r_device, s_name, s_device, client_id, kind, payload,
                                         stored_at, expires_at, n)
              ORDER BY n
             ON CONFLICT (s_name, s_device, client_id, r_name, r_device) DO NOTHING
             RETURNING s_name, s_device, client_id, id`,
      values: [
        rows.map((m) => m.recipient.name),
        rows.map((m) => m.recipient.deviceId),
        rows.map((m) => m.sender.name),
        rows.map((m) => m.sender.deviceId),
        rows.map((m) => buf(m.clientMessageId)),
        rows.map((m) => m.kind),
        rows.map((m) => buf(m.payload)),
        rows.map((m) => m.storedAt),
        rows.map((m) => m.expiresAt),
      ],
    });
    const byKey = new Map<string, number>();
    for (const r of inserted.rows) {
      byKey.set(`${r.s_device}:${r.s_name}:${r.client_id.toString('hex')}`, r.id);
    }
    for (const i of toInsert) {
      const mail = (batch[i] as Queued).mail;
      const id = byKey.get(dedupKey(mail));
      if (id !== undefined) {
        ids.set(i, id);
        continue;
      }
      // Already stored for this recipient (by a commit this batch's locks did not see):
      // a duplicate of that.
      const dup = await c.query<{ id: number }>(
        'SELECT id FROM mailbox WHERE s_name = $1 AND s_device = $2 AND client_id = $3',
        [mail.sender.name, mail.sender.deviceId, buf(mail.clientMessageId)],
      );
      const dupId = dup.rows[0]?.id;
      if (dupId === undefined) throw new ServerError('STORAGE', 'mail vanished during insert');
      plans[i] = { kind: 'dup', id: dupId };
    }
  }
  return plans.map((p, i): EnqueueResult => {
    switch (p.kind) {
      case 'dup':
        return { ok: true, serverMessageId: p.id, duplicate: true };
      case 'full':
        return { ok: false, reason: 'mailbox-full' };
      case 'insert':
        return { ok: true, serverMessageId: ids.get(i) as number, duplicate: false };
      case 'dupOf': {
        const first = plans[p.index] as Plan;
        const id = first.kind === 'dup' ? first.id : (ids.get(p.index) as number);
        return { ok: true, serverMessageId: id, duplicate: true };
      }
    }
  });
}
