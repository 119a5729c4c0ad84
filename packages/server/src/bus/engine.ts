/**
 * Opens the bus between relay nodes the configuration selects (local: one node, in
 * process; redis: shared by several nodes) and reports its state for `/healthz` and
 * `/metrics`.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { Gauge } from 'prom-client';
import type { BusConfig, RedisConfig } from '../config.js';
import { ServerError } from '../errors.js';
import type { Logger, RelayMetrics } from '../observability.js';
import { LocalBus, type LocalQuotaLimits } from './local.js';
import { RedisBus } from './redis.js';
import { RedisQuota } from './redis-quota.js';
import type { NodeId, RelayBus } from './types.js';

/** Bound on reaching Redis at start; a relay that cannot, does not start. */
const CONNECT_TIMEOUT_MS = 5_000;
/** Reconnect backoff: doubling from 50 ms, at most this. */
const MAX_RECONNECT_DELAY_MS = 1_000;

export interface OpenBusOptions {
  /** A relative password file is under this directory. */
  readonly dataDir: string;
  readonly nodeId: NodeId;
  readonly logger: Logger;
  readonly metrics: RelayMetrics;
  readonly limits: LocalQuotaLimits;
  readonly now: () => number;
}

function readPassword(dataDir: string, file: string): string {
  try {
    const path = isAbsolute(file) ? file : join(dataDir, file);
    return (readFileSync(path, 'utf8').split(/\r?\n/)[0] ?? '').trim();
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'unreadable';
    throw new ServerError(
      'CONFIG_INVALID',
      `config: field "bus.redis.passwordFile": cannot read ${file} (${code})`,
    );
  }
}

/** ioredis options from the configuration: commands fail fast while disconnected. */
function redisOptions(config: RedisConfig, dataDir: string): RedisOptions {
  return {
    ...(config.host !== undefined ? { host: config.host } : {}),
    ...(config.port !== undefined ? { port: config.port } : {}),
    ...(config.passwordFile !== undefined
      ? { password: readPassword(dataDir, config.passwordFile) }
      : {}),
    lazyConnect: true,
    connectTimeout: CONNECT_TIMEOUT_MS,
    // Nothing waits on an unreachable Redis: limits fall back to the node, the bus
    // queues its own publishes, health reports the outage, and ioredis reconnects.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 10), MAX_RECONNECT_DELAY_MS),
  };
}

async function connect(
  config: RedisConfig,
  dataDir: string,
  logger: Logger,
  role: 'commands' | 'subscriber',
): Promise<Redis> {
  // ioredis re-subscribes through its offline queue when it reconnects, so the
  // subscriber connection (which runs nothing else) keeps that queue.
  const opts = {
    ...redisOptions(config, dataDir),
    ...(role === 'subscriber' ? { enableOfflineQueue: true } : {}),
  };
  const redis = config.url !== undefined ? new Redis(config.url, opts) : new Redis(opts);
  let lastError: string | undefined;
  redis.on('error', (err: Error) => {
    if (err.message !== lastError) logger.warn({ err: err.message }, 'redis connection lost');
    lastError = err.message;
  });
  redis.on('ready', () => {
    if (lastError !== undefined) logger.info('redis connection restored');
    lastError = undefined;
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    redis.disconnect();
    throw new ServerError('BUS', `cannot reach redis: ${(err as Error).message}`);
  }
  return redis;
}

/** Opens the configured bus; fails (BUS) if Redis is unreachable at start. */
export async function openBus(config: BusConfig, opts: OpenBusOptions): Promise<RelayBus> {
  const bus = await open(config, opts);
  registerMetrics(bus, opts.metrics);
  return bus;
}

async function open(config: BusConfig, opts: OpenBusOptions): Promise<RelayBus> {
  if (config.engine === 'local') return LocalBus.standalone(opts.nodeId, opts.limits, opts.now);
  const { keyPrefix } = config.redis;
  const redis = await connect(config.redis, opts.dataDir, opts.logger, 'commands');
  let subscriber: Redis | undefined;
  try {
    subscriber = await connect(config.redis, opts.dataDir, opts.logger, 'subscriber');
    const quota = new RedisQuota({
      redis,
      keyPrefix,
      limits: opts.limits,
      nodeId: opts.nodeId,
      logger: opts.logger,
      now: opts.now,
    });
    return await RedisBus.open({
      nodeId: opts.nodeId,
      redis,
      subscriber,
      keyPrefix,
      quota,
      logger: opts.logger,
      now: opts.now,
    });
  } catch (err) {
    redis.disconnect();
    subscriber?.disconnect();
    throw err;
  }
}

/** `parley_bus_up{engine}`: 1 while the bus answers, probed at each scrape. */
function registerMetrics(bus: RelayBus, metrics: RelayMetrics): void {
  new Gauge({
    name: 'parley_bus_up',
    help: 'Whether the bus between relay nodes answers (1) or not (0), probed at scrape time',
    labelNames: ['engine'] as const,
    registers: [metrics.registry],
    async collect() {
      const h = await bus.health();
      this.set({ engine: h.engine }, h.ok ? 1 : 0);
    },
  });
}
