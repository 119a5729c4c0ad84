/**
 * Opens the storage engine the configuration selects (SQLite, the embedded default, or
 * PostgreSQL) and reports its state for `/healthz` and `/metrics`.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { Gauge } from 'prom-client';
import type { StorageConfig } from '../config.js';
import { ServerError } from '../errors.js';
import type { Logger, RelayMetrics } from '../observability.js';
import { PostgresStore, type PostgresConnection } from './postgres.js';
import { PostgresBlobStore } from '../blobs/postgres.js';
import type { BlobStore } from '../blobs/types.js';
import { SqliteStore } from './sqlite.js';
import type { RelayStore } from './types.js';

/** State of the storage engine, as `/healthz` shows it. */
export interface EngineHealth {
  readonly engine: StorageConfig['engine'];
  readonly ok: boolean;
  readonly error?: string;
}

/** An open storage engine. */
export interface StorageEngine {
  readonly engine: StorageConfig['engine'];
  readonly store: RelayStore;
  /** Attachment blobs kept in the shared database (postgres); absent: files in the data dir. */
  readonly blobs?: BlobStore;
  health(): Promise<EngineHealth>;
}

/** Options of {@link openStorage}. */
export interface OpenStorageOptions {
  /** Relative paths (the SQLite file, a password file) are under this directory. */
  readonly dataDir: string;
  readonly logger: Logger;
  readonly metrics: RelayMetrics;
}

const under = (dir: string, p: string): string => (isAbsolute(p) ? p : join(dir, p));

function readPassword(dataDir: string, file: string): string {
  try {
    return (readFileSync(under(dataDir, file), 'utf8').split(/\r?\n/)[0] ?? '').trim();
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'unreadable';
    throw new ServerError(
      'CONFIG_INVALID',
      `config: field "storage.postgres.passwordFile": cannot read ${file} (${code})`,
    );
  }
}

/** Opens the configured engine; fails (STORAGE) if PostgreSQL is unreachable at start. */
export async function openStorage(
  config: StorageConfig,
  opts: OpenStorageOptions,
): Promise<StorageEngine> {
  const engine = await open(config, opts);
  registerMetrics(engine, opts.metrics);
  return engine;
}

async function open(config: StorageConfig, opts: OpenStorageOptions): Promise<StorageEngine> {
  if (config.engine === 'sqlite') {
    const store = await SqliteStore.open(under(opts.dataDir, config.file ?? 'relay.db'), {
      synchronous: config.synchronous,
    });
    // In-process: if it is open, it is reachable; write failures surface per request.
    return {
      engine: 'sqlite',
      store,
      health: () => Promise.resolve({ engine: 'sqlite', ok: true }),
    };
  }
  const { passwordFile, ...pg } = config.postgres;
  const connection: PostgresConnection = {
    ...pg,
    ...(passwordFile !== undefined ? { password: readPassword(opts.dataDir, passwordFile) } : {}),
    onPoolError: (err) =>
      opts.logger.warn({ err: err.message }, 'postgresql connection lost; reconnecting on demand'),
  };
  const store = await PostgresStore.open(connection);
  let blobs: BlobStore;
  try {
    blobs = await PostgresBlobStore.open(connection);
  } catch (err) {
    await store.close();
    throw err;
  }
  return {
    engine: 'postgres',
    store,
    blobs,
    health: async () => {
      const h = await store.health();
      return { engine: 'postgres', ok: h.ok, ...(h.error !== undefined ? { error: h.error } : {}) };
    },
  };
}

/** `parley_storage_up{engine}`: 1 while the engine answers, probed at each scrape. */
function registerMetrics(engine: StorageEngine, metrics: RelayMetrics): void {
  new Gauge({
    name: 'parley_storage_up',
    help: 'Whether the storage engine answers (1) or not (0), probed at scrape time',
    labelNames: ['engine'] as const,
    registers: [metrics.registry],
    async collect() {
      this.set({ engine: engine.engine }, (await engine.health()).ok ? 1 : 0);
    },
  });
}
