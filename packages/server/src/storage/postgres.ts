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
 *   under the same lock.
 * - Durability: `committed` (and so "queued") resolves only after COMMIT returned, with
 *   the server's default `synchronous_commit = on` (WAL flushed).
 *
 * Errors of the database (unreachable, restarted) reject with `ServerError('STORAGE')`;
 * the pool drops broken connections and opens new ones, so the store recovers by itself
 * once the server is back.
 */
import pg from 'pg';
import { ServerError } from '../errors.js';
import {
  PG_HEALTH_TIMEOUT_MS,
  poolConfig,
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
import { migrate } from './postgres-schema.js';
import type {
  Address,
  CommitOutcome,
  DeviceRecord,
  EnqueueResult,
  IdentityDhKey,
  MailItem,
  NewMail,
  OneTimePrekey,
  PrekeyBundle,
  PrekeyUpload,
  Receipt,
  RelayStore,
  SignedPrekey,
  StoredReceipt,
  Submission,
} from './types.js';

export {
  DEFAULT_PG_POOL_SIZE,
  type PostgresConnection,
  type PostgresHealth,
} from './postgres-pool.js';

const rKey = (a: Address): string => `${a.deviceId}:${a.name}`;

/** The relay database on PostgreSQL. */
export class PostgresStore implements RelayStore {
  readonly #pool: pg.Pool;
  #closed = false;
  /**
   * Per recipient on this node, the decision of the last submit: the next one starts
   * after it, so decisions (duplicate, full, id) follow call order on this node. Other
   * nodes are ordered by the advisory lock in the database.
   */
  readonly #lastDecision = new Map<string, Promise<unknown>>();
  /** Commits in flight by server id, so an ack that overtakes its commit waits for it. */
  readonly #committing = new Map<number, Promise<CommitOutcome>>();

  private constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  /** Connects, applies migrations, and returns the store. Fails if the server is unreachable. */
  static async open(connection: PostgresConnection): Promise<PostgresStore> {
    const pool = new pg.Pool(poolConfig(connection));
    // An idle connection's error (server restart) must not crash the process; the pool
    // has already dropped that connection.
    pool.on('error', (err) => connection.onPoolError?.(err));
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

  async upsertDevice(device: DeviceRecord): Promise<void> {
    // Unchanged (the usual reconnect) writes nothing.
    await this.#query(
      `INSERT INTO devices (name, device_id, identity_key, certificate, registered_at)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (name, device_id) DO UPDATE
         SET identity_key = excluded.identity_key, certificate = excluded.certificate
         WHERE devices.identity_key IS DISTINCT FROM excluded.identity_key
            OR devices.certificate IS DISTINCT FROM excluded.certificate`,
      [
        device.name,
        device.deviceId,
        buf(device.identityKey),
        device.certificate ? buf(device.certificate) : null,
        device.registeredAt,
      ],
    );
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
   * One transaction per item: lock the recipient, find a duplicate, count, insert. The
   * decision is known after the insert, before COMMIT; `committed` resolves after it.
   * This backend does not hold mail in memory (`holdMs` is ignored): it always stores.
   */
  submit(mail: NewMail, maxPerRecipient: number): Promise<Submission> {
    if (this.#closed) return Promise.reject(new ServerError('STORAGE', 'store is closed'));
    const key = rKey(mail.recipient);
    const previous = this.#lastDecision.get(key) ?? Promise.resolve();
    let decide!: (d: EnqueueResult) => void;
    let refuse!: (e: unknown) => void;
    const decided = new Promise<EnqueueResult>((resolve, reject) => {
      decide = resolve;
      refuse = reject;
    });
    const turn = previous.then(
      () => undefined,
      () => undefined,
    );
    const committed = turn.then(() =>
      this.#tx(async (c) => {
        await c.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [key]);
        const inserted = await c.query<{ id: number }>(
          `INSERT INTO mailbox (r_name, r_device, s_name, s_device, client_id, kind, payload, stored_at, expires_at)
           SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9
            WHERE (SELECT count(*) FROM mailbox WHERE r_name = $1 AND r_device = $2) < $10
           ON CONFLICT (s_name, s_device, client_id) DO NOTHING
           RETURNING id`,
          [
            mail.recipient.name,
            mail.recipient.deviceId,
            mail.sender.name,
            mail.sender.deviceId,
            buf(mail.clientMessageId),
            mail.kind,
            buf(mail.payload),
            mail.storedAt,
            mail.expiresAt,
            maxPerRecipient,
          ],
        );
        const id = inserted.rows[0]?.id;
        if (id !== undefined) {
          const outcome = { ok: true, serverMessageId: id, duplicate: false } as const;
          decide(outcome);
          return outcome;
        }
        // Nothing inserted: either a retry of stored mail or a full mailbox.
        const dup = await c.query<{ id: number }>(
          'SELECT id FROM mailbox WHERE s_name = $1 AND s_device = $2 AND client_id = $3',
          [mail.sender.name, mail.sender.deviceId, buf(mail.clientMessageId)],
        );
        const dupId = dup.rows[0]?.id;
        const outcome: EnqueueResult =
          dupId !== undefined
            ? { ok: true, serverMessageId: dupId, duplicate: true }
            : { ok: false, reason: 'mailbox-full' };
        decide(outcome);
        return outcome;
      }),
    );
    // If the transaction fails before deciding, the caller's submit rejects.
    committed.catch(refuse);
    this.#lastDecision.set(key, decided);
    // The map holds one settled promise per recipient at most; drop ours once superseded.
    void decided.then(
      () => this.#forgetDecision(key, decided),
      () => this.#forgetDecision(key, decided),
    );
    return decided.then((decision) => {
      const outcome = committed.then((): CommitOutcome => 'stored');
      // A caller may ignore `committed` (e.g. for a full mailbox): never an unhandled rejection.
      outcome.catch(() => undefined);
      if (decision.ok && !decision.duplicate) {
        const id = decision.serverMessageId;
        this.#committing.set(id, outcome);
        void outcome.then(
          () => this.#committing.delete(id),
          () => this.#committing.delete(id),
        );
      }
      // Sequence values are never reused, so showing an id before its commit is safe.
      return { decision, committed: outcome, idDurable: true };
    });
  }

  #forgetDecision(key: string, p: Promise<unknown>): void {
    if (this.#lastDecision.get(key) === p) this.#lastDecision.delete(key);
  }

  async pending(recipient: Address, afterId: number, limit: number): Promise<MailItem[]> {
    const r = await this.#query<MailRow>(
      `SELECT * FROM mailbox WHERE r_name = $1 AND r_device = $2 AND id > $3 ORDER BY id LIMIT $4`,
      [recipient.name, recipient.deviceId, afterId, limit],
    );
    return r.rows.map(toMail);
  }

  async ack(recipient: Address, serverMessageId: number): Promise<MailItem | undefined> {
    // The recipient may have it live before its insert committed on this node.
    await this.#committing.get(serverMessageId)?.catch(() => undefined);
    const r = await this.#query<MailRow>(
      'DELETE FROM mailbox WHERE id = $1 AND r_name = $2 AND r_device = $3 RETURNING *',
      [serverMessageId, recipient.name, recipient.deviceId],
    );
    const row = r.rows[0];
    return row ? toMail(row) : undefined;
  }

  async mailboxCount(recipient: Address): Promise<number> {
    const r = await this.#query<{ n: number }>(
      'SELECT count(*)::bigint AS n FROM mailbox WHERE r_name = $1 AND r_device = $2',
      [recipient.name, recipient.deviceId],
    );
    return r.rows[0]?.n ?? 0;
  }

  async expire(now: number): Promise<number> {
    const r = await this.#query('DELETE FROM mailbox WHERE expires_at <= $1', [now]);
    return r.rowCount ?? 0;
  }

  async addReceipt(sender: Address, receipt: Receipt, maxPerSender: number): Promise<void> {
    await this.#tx(async (c) => {
      // Serialises the trim of one sender's receipts across nodes (class 1: receipts).
      await c.query('SELECT pg_advisory_xact_lock(1, hashtext($1))', [rKey(sender)]);
      await c.query(
        `INSERT INTO receipts (s_name, s_device, client_id, status, server_id, ts)
         VALUES ($1, $2, $3, $4, $5, $6)`,
        [
          sender.name,
          sender.deviceId,
          buf(receipt.clientMessageId),
          receipt.status,
          receipt.serverMessageId,
          receipt.timestamp,
        ],
      );
      await c.query(
        `DELETE FROM receipts WHERE s_name = $1 AND s_device = $2 AND id <= (
           SELECT id FROM receipts WHERE s_name = $1 AND s_device = $2
            ORDER BY id DESC OFFSET $3 LIMIT 1)`,
        [sender.name, sender.deviceId, maxPerSender],
      );
    });
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

  async settleReceipt(sender: Address, serverMessageId: number): Promise<number> {
    const r = await this.#query(
      'DELETE FROM receipts WHERE server_id = $1 AND s_name = $2 AND s_device = $3',
      [serverMessageId, sender.name, sender.deviceId],
    );
    return r.rowCount ?? 0;
  }

  /** Waits for commits in flight, then closes the pool. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await Promise.allSettled([...this.#lastDecision.values(), ...this.#committing.values()]);
    this.#closed = true;
    await this.#pool.end();
  }
}
