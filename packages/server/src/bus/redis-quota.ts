/**
 * Per-identity limits shared by every relay node through Redis.
 *
 * Flood limit: the same sliding-window counter as `rate-limit.ts` (current window's
 * count plus the previous one's, weighted by its overlap), kept in one Redis hash per
 * identity and updated by a Lua script, so concurrent nodes never lose an increment.
 * Windows are aligned to Redis's clock (`TIME`), one clock for every node.
 *
 * A block is admitted or refused synchronously, on its own path, so a node does not
 * wait for Redis per block: it sends its counts in batches (one script call in flight
 * per identity) and, until Redis answers again, admits at most half of the headroom
 * (limit minus total) Redis last reported. The nodes together then overshoot by what
 * the others admitted since a node's last answer, at most half a limit per other node
 * (two nodes: under 1.5x), never N times the limit. The node's own in-process limiter is checked as well, so one node
 * alone never passes it.
 *
 * Connection cap: a sorted set of slots per identity, each scored with its lease's end
 * (Redis time). A script drops expired leases, then adds the slot only below the cap.
 * Nodes renew the leases of their live connections; a node that dies stops renewing
 * and its slots lapse within one lease. After a Redis restart the renewals put every
 * live slot back.
 *
 * While Redis is unreachable the limits fall back to each node's own (documented in
 * docs/operations.md): refusing every connection and block would turn a Redis outage
 * into a full one, and the per-node limits still bound any one connection.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../observability.js';
import { SlidingWindowLimiter } from '../rate-limit.js';
import type { LocalQuotaLimits } from './local.js';
import type { IdentityQuota, NodeId } from './types.js';

/** Lease of a connection slot; renewed at a third of it. */
export const CONNECTION_LEASE_MS = 30_000;

/** A total Redis reported is trusted this long; an older one counts as zero. */
const REMOTE_FRESH_MS = 1_000;
/** After a failed call, Redis is left alone (local limits only) this long. */
const RETRY_AFTER_FAILURE_MS = 250;

const RATE_SCRIPT = `
local w = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local idx = math.floor(now / w)
local h = redis.call('HMGET', KEYS[1], 'idx', 'cur', 'prev')
local hidx = tonumber(h[1]) or idx
local cur = tonumber(h[2]) or 0
local prev = tonumber(h[3]) or 0
if idx ~= hidx then
  if idx == hidx + 1 then prev = cur else prev = 0 end
  cur = 0
end
cur = cur + tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'idx', idx, 'cur', cur, 'prev', prev)
redis.call('PEXPIRE', KEYS[1], 2 * w)
return tostring(cur + prev * (1 - (now - idx * w) / w))
`;

const CLAIM_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false and
   redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
`;

interface LimitsRedis extends Redis {
  parleyRate(key: string, n: number, windowMs: number): Promise<string>;
  parleyClaim(key: string, slot: string, cap: number, leaseMs: number): Promise<number>;
}

export interface RedisQuotaOptions {
  readonly redis: Redis;
  readonly keyPrefix: string;
  readonly limits: LocalQuotaLimits;
  /** Names this node's connection slots apart from other nodes'. */
  readonly nodeId: NodeId;
  readonly logger: Logger;
  /** Local clock, for the freshness of Redis's totals only (windows use Redis time). */
  readonly now: () => number;
}

class SharedBlockLimiter {
  readonly #local: SlidingWindowLimiter;
  readonly #owner: RedisQuota;
  readonly #key: string;
  /** Counted here, not yet sent to Redis. */
  #pending = 0;
  /** Counted here, not yet in a total Redis reported (pending plus the batch in flight). */
  #unreported = 0;
  #inFlight = false;
  /** Redis's last total, and when it came. */
  #remote = 0;
  #remoteAt = -Infinity;
  /** When the last call failed; while it is recent, only the local limiter decides. */
  #failedAt = -Infinity;

  constructor(owner: RedisQuota, key: string, local: SlidingWindowLimiter) {
    this.#owner = owner;
    this.#key = key;
    this.#local = local;
  }

  get idle(): boolean {
    return this.#pending === 0 && !this.#inFlight && this.#local.count() === 0;
  }

  take(n = 1): boolean {
    const now = this.#owner.now();
    let ok = this.#local.take(n);
    if (ok && now - this.#failedAt > RETRY_AFTER_FAILURE_MS) {
      const remote = now - this.#remoteAt <= REMOTE_FRESH_MS ? this.#remote : 0;
      // Between two answers from Redis a node spends at most half the headroom it last
      // saw, which bounds what the other nodes' view of the total can lag behind.
      const headroom = this.#owner.limit - remote;
      ok = this.#unreported + n <= Math.max(Math.min(n, headroom), headroom / 2);
    }
    // Refused blocks count as well, as in the local limiter.
    this.#pending += n;
    this.#unreported += n;
    this.#flush(now);
    return ok;
  }

  #flush(now: number): void {
    if (this.#inFlight || this.#pending === 0) return;
    if (now - this.#failedAt <= RETRY_AFTER_FAILURE_MS) {
      this.#unreported -= this.#pending;
      this.#pending = 0;
      return;
    }
    const n = this.#pending;
    this.#pending = 0;
    this.#inFlight = true;
    this.#owner.redis.parleyRate(this.#key, n, this.#owner.windowMs).then(
      (total) => {
        this.#inFlight = false;
        this.#unreported -= n;
        this.#remote = Number(total);
        this.#remoteAt = this.#owner.now();
        this.#failedAt = -Infinity;
        this.#flush(this.#remoteAt);
      },
      (err: unknown) => {
        // Redis is unreachable: these blocks stay counted by the local limiter only.
        this.#inFlight = false;
        this.#unreported -= n;
        this.#failedAt = this.#owner.now();
        this.#owner.warn(err);
      },
    );
  }
}

export class RedisQuota implements IdentityQuota {
  readonly redis: LimitsRedis;
  readonly limit: number;
  readonly windowMs: number;
  readonly now: () => number;
  readonly #opts: RedisQuotaOptions;
  readonly #blocks = new Map<string, SharedBlockLimiter>();
  /** Live slots of this node: slot -> identity. */
  readonly #slots = new Map<string, string>();
  /** Slots held per identity on this node (a release gives back the newest). */
  readonly #byName = new Map<string, string[]>();
  #seq = 0;
  readonly #renewTimer: ReturnType<typeof setInterval>;
  #lastWarn = -Infinity;

  constructor(opts: RedisQuotaOptions) {
    this.#opts = opts;
    const r = opts.redis as LimitsRedis;
    if (typeof r.parleyRate !== 'function') {
      r.defineCommand('parleyRate', { numberOfKeys: 1, lua: RATE_SCRIPT });
      r.defineCommand('parleyClaim', { numberOfKeys: 1, lua: CLAIM_SCRIPT });
    }
    this.redis = r;
    this.limit = opts.limits.maxBlocksPerIdentity;
    this.windowMs = opts.limits.windowMs;
    this.now = opts.now;
    this.#renewTimer = setInterval(() => this.#renew(), CONNECTION_LEASE_MS / 3);
    this.#renewTimer.unref();
  }

  #rateKey(name: string): string {
    return `${this.#opts.keyPrefix}rate:${name}`;
  }

  #connKey(name: string): string {
    return `${this.#opts.keyPrefix}conn:${name}`;
  }

  /** Logs Redis failures at most once per window, not once per block. */
  warn(err: unknown): void {
    const t = this.now();
    if (t - this.#lastWarn < this.windowMs) return;
    this.#lastWarn = t;
    this.#opts.logger.warn(
      { err: (err as Error).message },
      'redis unreachable: per-identity limits fall back to this node only',
    );
  }

  takeBlock(name: string): boolean {
    let l = this.#blocks.get(name);
    if (!l) {
      const local = new SlidingWindowLimiter(this.limit, this.windowMs, this.now);
      l = new SharedBlockLimiter(this, this.#rateKey(name), local);
      this.#blocks.set(name, l);
    }
    return l.take();
  }

  async acquireConnection(name: string): Promise<boolean> {
    const slot = `${this.#opts.nodeId}:${++this.#seq}`;
    let granted: boolean;
    try {
      granted =
        (await this.redis.parleyClaim(
          this.#connKey(name),
          slot,
          this.#opts.limits.maxConnectionsPerIdentity,
          CONNECTION_LEASE_MS,
        )) === 1;
    } catch (err) {
      this.warn(err);
      granted = true;
    }
    if (granted) {
      this.#slots.set(slot, name);
      this.#byName.set(name, [...(this.#byName.get(name) ?? []), slot]);
    }
    return granted;
  }

  releaseConnection(name: string): void {
    const held = this.#byName.get(name);
    const slot = held?.pop();
    if (slot === undefined) return;
    if (held?.length === 0) this.#byName.delete(name);
    this.#slots.delete(slot);
    this.redis.zrem(this.#connKey(name), slot).catch((err: unknown) => this.warn(err));
  }

  /** Renews this node's leases; re-creates them after Redis lost its data. */
  #renew(): void {
    if (this.#slots.size === 0) return;
    const p = this.redis.pipeline();
    const claims = p as unknown as Pick<LimitsRedis, 'parleyClaim'>;
    for (const [slot, name] of this.#slots) {
      void claims.parleyClaim(
        this.#connKey(name),
        slot,
        Number.MAX_SAFE_INTEGER,
        CONNECTION_LEASE_MS,
      );
    }
    p.exec().catch((err: unknown) => this.warn(err));
  }

  /** Drops the block counters of identities with no connection here and nothing pending. */
  prune(): void {
    for (const [name, l] of this.#blocks) {
      if (!this.#byName.has(name) && l.idle) this.#blocks.delete(name);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#renewTimer);
    const bySlot = [...this.#slots];
    this.#slots.clear();
    this.#byName.clear();
    if (bySlot.length === 0) return;
    const p = this.redis.pipeline();
    for (const [slot, name] of bySlot) p.zrem(this.#connKey(name), slot);
    await p.exec().catch(() => undefined);
  }
}
