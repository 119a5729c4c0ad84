/**
 * PostgreSQL backend of {@link RelayStore} (`pg`), for relays that outgrow one machine:
 * any number of relay nodes may share one database.
 *
 * What holds across nodes, and how:
 * - One-time prekeys: taken with `FOR UPDATE SKIP LOCKED` and deleted in the same
 *   transaction, so concurrent lookups on any nodes never hand out one key twice.
 * - Server message ids: an identity column (a sequence: never reused, even after a
 *   crash). Mail for one recipient is inserted under a transaction-scoped advisory lock
 *   on that recipient, so its ids grow in commit order and a reader paging with
 *   `pending(afterId)` never skips a row that commits later; the mailbox cap is counted
 *   under the same lock. Inserts are group-committed (`postgres-mail-writer.ts`).
 * - Durability: `committed` (and so "queued") resolves only after COMMIT returned, with
 *   the server's default `synchronous_commit = on` (WAL flushed).
 * - Live mail may be held for its ack (`holdMs`, as on SQLite): its id is drawn durably
 *   and it is written only if no ack comes within the hold; "queued" waits for that.
 *
 * Errors of the database (unreachable, restarted) reject with `ServerError('STORAGE')`;
 * the pool drops broken connections and opens new ones, so the store recovers by itself
 * once the server is back.
 */
import type pg from 'pg';
import { ServerError } from '../errors.js';
import {
  PG_HEALTH_TIMEOUT_MS,
  openPool,
  storageError,
  type PostgresConnection,
  type PostgresHealth,
} from './postgres-pool.js';
import {
  buf,
  bytes,
  toDevice,
  toMail,
  toOneTime,
  toSigned,
  type DeviceRow,
  type KeyRow,
  type MailRow,
} from './postgres-rows.js';
import { HeldMail, type HeldItem } from './held-mail.js';
import {
  addReceipts,
  deleteAcked,
  settleReceipts,
  type AckItem,
  type ReceiptItem,
  type SettleItem,
} from './postgres-batch-writes.js';
import { PostgresBatcher } from './postgres-batcher.js';
import { addressKey, PostgresMailWriter, type Queued } from './postgres-mail-writer.js';
import { migrate } from './postgres-schema.js';
import type {
  Address,
  CommitOutcome,
  DeviceRecord,
  EnqueueResult,
  GroupSubmission,
  IdentityDhKey,
  MailItem,
  NewGroupMail,
  NewMail,
  OneTimePrekey,
  PrekeyBundle,
  PrekeyUpload,
  Receipt,
  RelayStore,
  SignedPrekey,
  StoredReceipt,
  Submission,
  SubmitOptions,
} from './types.js';

export {
  DEFAULT_PG_POOL_SIZE,
  type PostgresConnection,
  type PostgresHealth,
} from './postgres-pool.js';

/** The relay database on PostgreSQL. */
export class PostgresStore implements RelayStore {
  readonly #pool: pg.Pool;
  #closed = false;
  readonly #writer: PostgresMailWriter;
  /** Commits in flight by server id, so an ack that overtakes its commit waits for it. */
  readonly #committing = new Map<number, Promise<CommitOutcome>>();
  /** Live mail kept for its ack; written when the hold ends without one. */
  readonly #held: HeldMail;
  /**
   * New mail of this node not yet settled, by "device:name:client id" of its sender, so
   * a retry while it is held or committing gets the same id without a database read.
   */
  readonly #unsettled = new Map<string, { id: number; committed: Promise<CommitOutcome> }>();
  /** Acks and receipts, group-committed (one statement and WAL flush per batch). */
  readonly #acks = new PostgresBatcher<AckItem, MailItem | undefined>((items) =>
    deleteAcked((text, values) => this.#query(text, values), items),
  );
  readonly #receipts = new PostgresBatcher<ReceiptItem, undefined>(async (items) => {
    await this.#tx((c) => addReceipts(c, items));
    return items.map(() => undefined);
  });
  readonly #settles = new PostgresBatcher<SettleItem, number>((items) =>
    settleReceipts((text, values) => this.#query(text, values), items),
  );

  private constructor(pool: pg.Pool) {
    this.#pool = pool;
    this.#held = new HeldMail((due) => {
      for (const h of due) this.#writer.push(this.#writeItem(h));
    });
    this.#writer = new PostgresMailWriter(pool, {
      releaseFor: (keys) => {
        const out: Queued[] = [];
        for (const k of keys) for (const h of this.#held.release(k)) out.push(this.#writeItem(h));
        return out;
      },
      heldCount: (k) => this.#held.countFor(k),
    });
  }

  /** A held item as a `write` for the writer; its commit settles the held promise. */
  #writeItem(h: HeldItem): Queued {
    return {
      mail: h.mail,
      maxPerRecipient: Number.MAX_SAFE_INTEGER,
      mode: { write: h.id },
      decide: () => undefined,
      refuse: h.reject,
      fail: h.reject,
      commit: () => h.resolve('stored'),
    };
  }

  /** Writes held mail now: one recipient's, or all of it. */
  #releaseHeld(recipientKey?: string): void {
    for (const h of this.#held.release(recipientKey)) this.#writer.push(this.#writeItem(h));
  }

  /** Connects, applies migrations, and returns the store. Fails if the server is unreachable. */
  static async open(connection: PostgresConnection): Promise<PostgresStore> {
    const pool = openPool(connection);
    try {
      await migrate(pool);
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw storageError(err);
    }
    return new PostgresStore(pool);
  }

  async #query<R extends pg.QueryResultRow>(
    text: string,
    values: unknown[] = [],
  ): Promise<pg.QueryResult<R>> {
    if (this.#closed) throw new ServerError('STORAGE', 'store is closed');
    try {
      return await this.#pool.query<R>(text, values);
    } catch (err) {
      throw storageError(err);
    }
  }

  /** Runs `fn` in a transaction on one pool connection; resolves after COMMIT. */
  async #tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    if (this.#closed) throw new ServerError('STORAGE', 'store is closed');
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (err) {
      throw storageError(err);
    }
    try {
      await client.query('BEGIN');
      const out = await fn(client);
      await client.query('COMMIT');
      client.release();
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      // A connection that failed mid-transaction may be broken: do not reuse it.
      client.release(true);
      throw storageError(err);
    }
  }

  /** Reachability probe for `/healthz`, with pool figures for metrics. */
  async health(): Promise<PostgresHealth> {
    const figures = {
      totalConnections: this.#pool.totalCount,
      idleConnections: this.#pool.idleCount,
      waiting: this.#pool.waitingCount,
    };
    if (this.#closed) return { ok: false, error: 'store is closed', ...figures };
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        this.#pool.query('SELECT 1'),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error('health probe timed out')),
            PG_HEALTH_TIMEOUT_MS,
          );
        }),
      ]);
      return { ok: true, ...figures };
    } catch (err) {
      return { ok: false, error: storageError(err).message, ...figures };
    } finally {
      clearTimeout(timer);
    }
  }

  async registerDevice(device: DeviceRecord): Promise<{ created: boolean; device: DeviceRecord }> {
    const inserted = await this.#query(
      `INSERT INTO devices (name, device_id, identity_key, certificate, registered_at)
       VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name, device_id) DO NOTHING`,
      [
        device.name,
        device.deviceId,
        buf(device.identityKey),
        device.certificate ? buf(device.certificate) : null,
        device.registeredAt,
      ],
    );
    if (inserted.rowCount === 1) return { created: true, device };
    const existing = await this.getDevice(device);
    if (!existing) throw new ServerError('STORAGE', 'device vanished during registration');
    return { created: false, device: existing };
  }

  async upsertDevice(device: DeviceRecord): Promise<boolean> {
    const current = await this.getDevice(device);
    if (
      current &&
      Buffer.compare(current.identityKey, device.identityKey) === 0 &&
      (current.certificate === undefined
        ? device.certificate === undefined
        : device.certificate !== undefined &&
          Buffer.compare(current.certificate, device.certificate) === 0)
    ) {
      return false; // unchanged (the usual reconnect): no write
    }
    return this.#tx(async (c) => {
      // The row lock orders two relay nodes replacing the same device's key.
      const locked = await c.query<{ identity_key: Buffer }>(
        'SELECT identity_key FROM devices WHERE name = $1 AND device_id = $2 FOR UPDATE',
        [device.name, device.deviceId],
      );
      const old = locked.rows[0]?.identity_key;
      const replaced = old !== undefined && Buffer.compare(old, device.identityKey) !== 0;
      if (replaced) {
        // Prekeys signed by the old identity key would not verify with the new one.
        for (const table of ['signed_prekeys', 'one_time_prekeys']) {
          await c.query(`DELETE FROM ${table} WHERE name = $1 AND device_id = $2`, [
            device.name,
            device.deviceId,
          ]);
        }
      }
      await c.query(
        `INSERT INTO devices (name, device_id, identity_key, certificate, registered_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (name, device_id) DO UPDATE
           SET identity_key = excluded.identity_key, certificate = excluded.certificate`,
        [
          device.name,
          device.deviceId,
          buf(device.identityKey),
          device.certificate ? buf(device.certificate) : null,
          device.registeredAt,
        ],
      );
      return replaced;
    });
  }

  async getDevice(address: Address): Promise<DeviceRecord | undefined> {
    const r = await this.#query<DeviceRow>(
      'SELECT * FROM devices WHERE name = $1 AND device_id = $2',
      [address.name, address.deviceId],
    );
    const row = r.rows[0];
    return row ? toDevice(row) : undefined;
  }

  async listDevices(name: string): Promise<DeviceRecord[]> {
    const r = await this.#query<DeviceRow>(
      'SELECT * FROM devices WHERE name = $1 ORDER BY device_id',
      [name],
    );
    return r.rows.map(toDevice);
  }

  async putPrekeys(address: Address, upload: PrekeyUpload): Promise<void> {
    const { name, deviceId } = address;
    const signed: [string, SignedPrekey | IdentityDhKey | undefined, number][] = [
      // The identity DH key lives beside the signed prekeys (kind 'idh', id 0).
      ['idh', upload.identityDh, 0],
      ['ec', upload.signedPrekey, upload.signedPrekey?.id ?? 0],
      ['pq', upload.pqLastResort, upload.pqLastResort?.id ?? 0],
    ];
    const oneTime: [string, readonly OneTimePrekey[]][] = [
      ['ec', upload.oneTime ?? []],
      ['pq', upload.oneTimePq ?? []],
    ];
    await this.#tx(async (c) => {
      for (const [kind, k, id] of signed) {
        if (!k) continue;
        await c.query(
          `INSERT INTO signed_prekeys (name, device_id, kind, id, public_key, signature)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (name, device_id, kind) DO UPDATE
             SET id = excluded.id, public_key = excluded.public_key, signature = excluded.signature`,
          [name, deviceId, kind, id, buf(k.publicKey), buf(k.signature)],
        );
      }
      for (const [kind, keys] of oneTime) {
        if (keys.length === 0) continue;
        // One statement per batch; WITH ORDINALITY keeps upload order for hand-out order.
        await c.query(
          `INSERT INTO one_time_prekeys (name, device_id, kind, id, public_key, signature)
           SELECT $1, $2, $3, k.id, k.pk, k.sig
             FROM unnest($4::bigint[], $5::bytea[], $6::bytea[]) WITH ORDINALITY AS k(id, pk, sig, n)
            ORDER BY k.n
           ON CONFLICT DO NOTHING`,
          [
            name,
            deviceId,
            kind,
            keys.map((k) => k.id),
            keys.map((k) => buf(k.publicKey)),
            keys.map((k) => (k.signature ? buf(k.signature) : null)),
          ],
        );
      }
    });
  }

  takePrekeyBundle(address: Address): Promise<PrekeyBundle | undefined> {
    const { name, deviceId } = address;
    return this.#tx(async (c) => {
      const dev = (
        await c.query<DeviceRow>('SELECT * FROM devices WHERE name = $1 AND device_id = $2', [
          name,
          deviceId,
        ])
      ).rows[0];
      const signed = new Map(
        (
          await c.query<KeyRow>(
            'SELECT kind, id, public_key, signature FROM signed_prekeys WHERE name = $1 AND device_id = $2',
            [name, deviceId],
          )
        ).rows.map((r) => [r.kind, r]),
      );
      const idh = signed.get('idh');
      const spk = signed.get('ec');
      const lastResort = signed.get('pq');
      if (!dev || !idh || !spk || !lastResort) return undefined;
      // SKIP LOCKED: a key another lookup (on any node) is taking is passed over, never
      // waited for and never handed out twice; it is deleted before that lookup commits.
      const take = async (kind: string): Promise<KeyRow | undefined> =>
        (
          await c.query<KeyRow>(
            `WITH k AS (
               SELECT name, device_id, kind, id FROM one_time_prekeys
                WHERE name = $1 AND device_id = $2 AND kind = $3
                ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED)
             DELETE FROM one_time_prekeys o USING k
              WHERE o.name = k.name AND o.device_id = k.device_id AND o.kind = k.kind AND o.id = k.id
             RETURNING o.id, o.public_key, o.signature`,
            [name, deviceId, kind],
          )
        ).rows[0];
      const ot = await take('ec');
      const otPq = await take('pq');
      const left = await c.query<{ ec: number; pq: number }>(
        `SELECT count(*) FILTER (WHERE kind = 'ec')::bigint AS ec,
                count(*) FILTER (WHERE kind = 'pq')::bigint AS pq
           FROM one_time_prekeys WHERE name = $1 AND device_id = $2`,
        [name, deviceId],
      );
      const identityDh = toSigned(idh);
      return {
        device: toDevice(dev),
        identityDh: { publicKey: identityDh.publicKey, signature: identityDh.signature },
        signedPrekey: toSigned(spk),
        pqPrekey: toSigned(otPq ?? lastResort),
        pqPrekeyIsLastResort: otPq === undefined,
        ...(ot ? { oneTimePrekey: toOneTime(ot) } : {}),
        remainingOneTime: left.rows[0]?.ec ?? 0,
        remainingOneTimePq: left.rows[0]?.pq ?? 0,
      };
    });
  }

  async countPrekeys(address: Address): Promise<{ oneTime: number; oneTimePq: number }> {
    const r = await this.#query<{ ec: number; pq: number }>(
      `SELECT count(*) FILTER (WHERE kind = 'ec')::bigint AS ec,
              count(*) FILTER (WHERE kind = 'pq')::bigint AS pq
         FROM one_time_prekeys WHERE name = $1 AND device_id = $2`,
      [address.name, address.deviceId],
    );
    return { oneTime: r.rows[0]?.ec ?? 0, oneTimePq: r.rows[0]?.pq ?? 0 };
  }

  async getIdentityDh(address: Address): Promise<IdentityDhKey | undefined> {
    const r = await this.#query<KeyRow>(
      `SELECT id, public_key, signature FROM signed_prekeys
        WHERE name = $1 AND device_id = $2 AND kind = 'idh'`,
      [address.name, address.deviceId],
    );
    const row = r.rows[0];
    if (!row) return undefined;
    const k = toSigned(row);
    return { publicKey: k.publicKey, signature: k.signature };
  }

  async enqueue(mail: NewMail, maxPerRecipient: number): Promise<EnqueueResult> {
    const { decision, committed } = await this.submit(mail, maxPerRecipient);
    await committed;
    return decision;
  }

  /**
   * Queues the item for the next group commit (see `postgres-mail-writer.ts`). The
   * decision is known inside that transaction, before COMMIT; `committed` resolves
   * after it. With `holdMs` (and room under `MAX_HELD_BYTES`) the item is decided and
   * its id drawn durably, then held: an ack within `holdMs` settles it `acked` and it
   * is never written; otherwise it is written when the hold ends, when `writeNow` is
   * called, or before newer mail for the same recipient is inserted.
   */
  submit(mail: NewMail, maxPerRecipient: number, opts: SubmitOptions = {}): Promise<Submission> {
    if (this.#closed) return Promise.reject(new ServerError('STORAGE', 'store is closed'));
    const dk = `${mail.sender.deviceId}:${mail.sender.name}:${Buffer.from(mail.clientMessageId).toString('hex')}`;
    const unsettled = this.#unsettled.get(dk);
    if (unsettled) {
      return Promise.resolve({
        decision: { ok: true, serverMessageId: unsettled.id, duplicate: true },
        committed: unsettled.committed,
        idDurable: true,
      });
    }
    const holdMs = opts.holdMs ?? 0;
    const rKey = addressKey(mail.recipient);
    return new Promise<Submission>((resolve, reject) => {
      let settle!: (o: CommitOutcome) => void;
      let fail!: (e: unknown) => void;
      const committed = new Promise<CommitOutcome>((res, rej) => {
        settle = res;
        fail = rej;
      });
      // A caller may ignore `committed` (e.g. for a full mailbox): never an unhandled rejection.
      committed.catch(() => undefined);
      this.#writer.push({
        mail,
        maxPerRecipient,
        mode: holdMs > 0 && this.#held.hasRoomFor(mail.payload.length) ? 'hold' : 'insert',
        decide: (decision, held) => {
          if (decision.ok && !decision.duplicate) {
            const id = decision.serverMessageId;
            this.#committing.set(id, committed);
            this.#unsettled.set(dk, { id, committed });
            const forget = (): void => {
              this.#committing.delete(id);
              this.#unsettled.delete(dk);
            };
            committed.then(forget, forget);
            if (held) {
              this.#held.hold({
                id,
                mail,
                recipientKey: rKey,
                releaseAt: performance.now() + holdMs,
                resolve: settle,
                reject: fail,
              });
            }
          }
          // Sequence values are never reused (a held item's was drawn in a transaction
          // whose COMMIT flushed the WAL), so showing an id before its commit is safe.
          resolve({
            decision,
            committed,
            idDurable: true,
            ...(held ? { writeNow: () => this.#releaseHeld(rKey) } : {}),
          });
        },
        refuse: reject,
        commit: () => settle('stored'),
        fail,
      });
    });
  }

  /**
   * Queues the upload for a transaction of its own (see `postgres-group-insert.ts`);
   * like `submit`, decided before COMMIT and `committed` after it.
   */
  submitGroup(mail: NewGroupMail, maxPerRecipient: number): Promise<GroupSubmission> {
    if (this.#closed) return Promise.reject(new ServerError('STORAGE', 'store is closed'));
    return new Promise<GroupSubmission>((resolve, reject) => {
      let commit!: () => void;
      let fail!: (e: unknown) => void;
      const committed = new Promise<void>((res, rej) => {
        commit = res;
        fail = rej;
      });
      committed.catch(() => undefined);
      this.#writer.push({
        kind: 'group',
        mail,
        maxPerRecipient,
        decide: (decision) => {
          if (decision.ok && !decision.duplicate) {
            const stored = committed.then((): CommitOutcome => 'stored');
            stored.catch(() => undefined);
            for (const { serverMessageId: id } of decision.copies) {
              this.#committing.set(id, stored);
              const forget = (): boolean => this.#committing.delete(id);
              committed.then(forget, forget);
            }
          }
          resolve({ decision, committed, idDurable: true });
        },
        refuse: reject,
        commit,
        fail,
      });
    });
  }

  async pending(recipient: Address, afterId: number, limit: number): Promise<MailItem[]> {
    const r = await this.#query<MailRow>(
      `SELECT * FROM mailbox WHERE r_name = $1 AND r_device = $2 AND id > $3 ORDER BY id LIMIT $4`,
      [recipient.name, recipient.deviceId, afterId, limit],
    );
    return r.rows.map(toMail);
  }

  async ack(recipient: Address, serverMessageId: number): Promise<MailItem | undefined> {
    const held = this.#held.take(serverMessageId, addressKey(recipient));
    if (held) {
      // Acked before it needed writing: nothing to store, nothing to delete.
      held.resolve('acked');
      return { ...held.mail, serverMessageId };
    }
    // The recipient may have it live before its insert committed on this node (a held
    // item acked by someone else is not in the database: no need to wait for it).
    if (!this.#held.has(serverMessageId)) {
      await this.#committing.get(serverMessageId)?.catch(() => undefined);
    }
    return this.#acks.add({ recipient, serverMessageId });
  }

  async mailboxCount(recipient: Address): Promise<number> {
    const r = await this.#query<{ n: number }>(
      'SELECT count(*)::bigint AS n FROM mailbox WHERE r_name = $1 AND r_device = $2',
      [recipient.name, recipient.deviceId],
    );
    return r.rows[0]?.n ?? 0;
  }

  async expire(now: number): Promise<number> {
    await this.#query('DELETE FROM group_uploads WHERE expires_at <= $1', [now]);
    const r = await this.#query('DELETE FROM mailbox WHERE expires_at <= $1', [now]);
    return r.rowCount ?? 0;
  }

  async addReceipt(sender: Address, receipt: Receipt, maxPerSender: number): Promise<void> {
    if (this.#closed) throw new ServerError('STORAGE', 'store is closed');
    await this.#receipts.add({ sender, receipt, maxPerSender });
  }

  async pendingReceipts(
    sender: Address,
    afterReceiptId: number,
    limit: number,
  ): Promise<StoredReceipt[]> {
    const r = await this.#query<{
      id: number;
      client_id: Buffer;
      status: string;
      server_id: number;
      ts: number;
    }>(
      `SELECT id, client_id, status, server_id, ts FROM receipts
        WHERE s_name = $1 AND s_device = $2 AND id > $3 ORDER BY id LIMIT $4`,
      [sender.name, sender.deviceId, afterReceiptId, limit],
    );
    return r.rows.map((row) => ({
      receiptId: row.id,
      clientMessageId: bytes(row.client_id),
      status: row.status as 'queued' | 'delivered',
      serverMessageId: row.server_id,
      timestamp: row.ts,
    }));
  }

  settleReceipt(sender: Address, serverMessageId: number): Promise<number> {
    if (this.#closed) return Promise.reject(new ServerError('STORAGE', 'store is closed'));
    return this.#settles.add({ sender, serverMessageId });
  }

  /** Writes what is held, waits for commits in flight, then closes the pool. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#held.stop();
    this.#releaseHeld();
    await this.#writer.drain();
    await Promise.all([this.#acks.drain(), this.#receipts.drain(), this.#settles.drain()]);
    this.#closed = true;
    await this.#pool.end();
  }
}
