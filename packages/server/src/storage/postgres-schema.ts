/**
 * The relay's PostgreSQL schema and its migrations. Several relay nodes may start at
 * once against one database: migrations run in one transaction under an advisory lock,
 * so exactly one node applies each step and the others see the result.
 *
 * Everything stored is public (names, public keys, certificates) or opaque ciphertext
 * (`bytea`). Device ids are u32 on the wire, so they are `bigint` here (int4 is signed);
 * times are milliseconds since the epoch.
 */
import type pg from 'pg';
import { ServerError } from '../errors.js';

/**
 * Advisory lock key (two-int form: class, key) serialising migrations. The mailbox uses
 * the one-bigint form, a separate key space, so the two never collide.
 */
export const MIGRATION_LOCK = [0x7061726c, 1] as const; // "parl", 1

/** Schema steps in order; version N is the state after MIGRATIONS[N - 1]. */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE devices (
    name text NOT NULL, device_id bigint NOT NULL, identity_key bytea NOT NULL,
    certificate bytea, registered_at bigint NOT NULL, PRIMARY KEY (name, device_id)
  );
  CREATE TABLE signed_prekeys (
    name text NOT NULL, device_id bigint NOT NULL, kind text NOT NULL, id bigint NOT NULL,
    public_key bytea NOT NULL, signature bytea NOT NULL, PRIMARY KEY (name, device_id, kind)
  );
  CREATE TABLE one_time_prekeys (
    seq bigint GENERATED ALWAYS AS IDENTITY,
    name text NOT NULL, device_id bigint NOT NULL, kind text NOT NULL, id bigint NOT NULL,
    public_key bytea NOT NULL, signature bytea, PRIMARY KEY (name, device_id, kind, id)
  );
  CREATE INDEX one_time_prekeys_order ON one_time_prekeys (name, device_id, kind, seq);
  CREATE TABLE mailbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    r_name text NOT NULL, r_device bigint NOT NULL, s_name text NOT NULL, s_device bigint NOT NULL,
    client_id bytea NOT NULL, kind text NOT NULL, payload bytea NOT NULL,
    stored_at bigint NOT NULL, expires_at bigint NOT NULL
  );
  CREATE INDEX mailbox_recipient ON mailbox (r_name, r_device, id);
  CREATE INDEX mailbox_expiry ON mailbox (expires_at);
  CREATE UNIQUE INDEX mailbox_dedup ON mailbox (s_name, s_device, client_id);
  CREATE TABLE receipts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    s_name text NOT NULL, s_device bigint NOT NULL, client_id bytea NOT NULL,
    status text NOT NULL, server_id bigint NOT NULL, ts bigint NOT NULL
  );
  CREATE INDEX receipts_sender ON receipts (s_name, s_device, id);
  CREATE INDEX receipts_server_id ON receipts (server_id);
  `,
  // 2: group uploads. Their copies share the sender's client message id, so the
  // duplicate index becomes unique per recipient (a `send` retry still finds its row by
  // the index prefix), and uploads are remembered apart from their copies so that a
  // retry after every copy was acked stores nothing either.
  `
  DROP INDEX mailbox_dedup;
  CREATE UNIQUE INDEX mailbox_dedup_copy ON mailbox (s_name, s_device, client_id, r_name, r_device);
  CREATE TABLE group_uploads (
    s_name text NOT NULL, s_device bigint NOT NULL, client_id bytea NOT NULL,
    first_id bigint NOT NULL, expires_at bigint NOT NULL, PRIMARY KEY (s_name, s_device, client_id)
  );
  CREATE INDEX group_uploads_expiry ON group_uploads (expires_at);
  `,
];

/** The schema version this relay writes. */
export const PG_SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the database to {@link PG_SCHEMA_VERSION}; refuses a newer schema. */
export async function migrate(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1, $2)', [...MIGRATION_LOCK]);
    await client.query('CREATE TABLE IF NOT EXISTS parley_schema (version integer NOT NULL)');
    const row = await client.query<{ v: number | null }>(
      'SELECT max(version) AS v FROM parley_schema',
    );
    const current = row.rows[0]?.v ?? 0;
    if (current > PG_SCHEMA_VERSION) {
      throw new ServerError(
        'STORAGE',
        `database schema ${current} is newer than this relay (${PG_SCHEMA_VERSION})`,
      );
    }
    for (let v = current + 1; v <= PG_SCHEMA_VERSION; v++) {
      await client.query(MIGRATIONS[v - 1] as string);
      await client.query('INSERT INTO parley_schema (version) VALUES ($1)', [v]);
    }
    await client.query('COMMIT');
    client.release();
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    client.release(true);
    if (err instanceof ServerError) throw err;
    throw new ServerError('STORAGE', `cannot migrate the database: ${(err as Error).message}`);
  }
}
