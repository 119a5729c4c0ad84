/**
 * Connection settings, pool and error mapping of the PostgreSQL backend: how long
 * anything may wait for the server, and how its failures reach the relay.
 */
import pg from 'pg';
import { ServerError } from '../errors.js';

/** Default connections per node; each relay node holds its own pool. */
export const DEFAULT_PG_POOL_SIZE = 10;
/**
 * How long a query waits for a connection (including opening one) before failing. While
 * the server is down a send fails after at most this long instead of hanging.
 */
const PG_CONNECT_TIMEOUT_MS = 5_000;
/** Idle pool connections are closed after this, so a restarted server is rejoined fresh. */
const PG_IDLE_TIMEOUT_MS = 10_000;
/** Bound on any single statement, server side: a stuck lock fails instead of piling up. */
const PG_STATEMENT_TIMEOUT_MS = 30_000;
/** Bound on the health probe (`SELECT 1`). */
export const PG_HEALTH_TIMEOUT_MS = 2_000;

const INT8_OID = 20;

/** Connection settings of `PostgresStore.open`. */
export interface PostgresConnection {
  /** `postgres://user:password@host:port/database`; other fields override its parts. */
  readonly url?: string | undefined;
  readonly host?: string | undefined;
  readonly port?: number | undefined;
  readonly database?: string | undefined;
  readonly user?: string | undefined;
  readonly password?: string | undefined;
  readonly poolSize?: number | undefined;
  /** Called for errors of idle pool connections (e.g. the server restarted). */
  readonly onPoolError?: (err: Error) => void;
}

/** State reported by `PostgresStore.health`. */
export interface PostgresHealth {
  readonly ok: boolean;
  readonly error?: string;
  readonly totalConnections: number;
  readonly idleConnections: number;
  readonly waiting: number;
}

/** Database errors become the store's one error type; messages carry no row data. */
export function storageError(err: unknown): ServerError {
  if (err instanceof ServerError) return err;
  const e = err as { message?: string; code?: string };
  const code = e.code ? ` (${e.code})` : '';
  return new ServerError('STORAGE', `postgresql: ${e.message ?? 'unknown error'}${code}`);
}

/** bigint columns hold ids and millisecond times, all below 2^53: read them as numbers. */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary'
      ? (v: string) => Number(v)
      : pg.types.getTypeParser(oid, format ?? 'text')) as pg.CustomTypesConfig['getTypeParser'],
};

/** Builds the pool settings from the relay's connection settings. */
export function poolConfig(c: PostgresConnection): pg.PoolConfig {
  return {
    ...(c.url !== undefined ? { connectionString: c.url } : {}),
    ...(c.host !== undefined ? { host: c.host } : {}),
    ...(c.port !== undefined ? { port: c.port } : {}),
    ...(c.database !== undefined ? { database: c.database } : {}),
    ...(c.user !== undefined ? { user: c.user } : {}),
    ...(c.password !== undefined ? { password: c.password } : {}),
    max: c.poolSize ?? DEFAULT_PG_POOL_SIZE,
    connectionTimeoutMillis: PG_CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: PG_IDLE_TIMEOUT_MS,
    statement_timeout: PG_STATEMENT_TIMEOUT_MS,
    application_name: 'parley-relay',
    types,
  };
}

/**
 * Opens a pool whose connection errors never crash the process. The pool reports errors
 * of idle connections itself; a connection that dies while checked out (between two
 * statements of a transaction, when the server restarts) emits on the client instead,
 * and an unheard `error` event would end the relay. Its next statement fails anyway,
 * so the error is only reported.
 */
export function openPool(c: PostgresConnection): pg.Pool {
  const pool = new pg.Pool(poolConfig(c));
  pool.on('error', (err) => c.onPoolError?.(err));
  pool.on('connect', (client) => client.on('error', (err) => c.onPoolError?.(err)));
  return pool;
}
