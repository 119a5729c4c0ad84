/**
 * Per-identity limits shared by every relay node through Redis.
 *
 * Flood limit: the same sliding-window counter as `rate-limit.ts` (current window's
 * count plus the previous one's, weighted by its overlap), kept in one Redis hash per
 * identity and updated by a Lua script, so concurrent nodes never lose an increment.
 * Windows are aligned to Redis's clock (`TIME`), one clock for every node.
 *
 * Nodes do not report blocks after the fact; they reserve them ahead. A node asks the
 * script for a share of the limit ({@link reserveShare}: a 32nd of it, at most
 * {@link MAX_RESERVE}) and the script grants only what the window still has room for,
 * counting it at once. A block is admitted synchronously from the node's reserve; the
 * next share is asked for when half of it is spent, so a steady sender never waits.
 * When the reserve is empty the block waits for Redis's answer (the connection holds
 * its later blocks behind it, in order), and it is refused only if Redis granted too
 * little. Blocks admitted over all nodes therefore never exceed the limit: the slack
 * is on the other side, a reserve a node holds but does not spend (at most one share
 * per node; reserves lapse at the end of the Redis window they were counted in, never
 * spilling into the next). The node's own in-process limiter is checked as well, so
 * one node alone never passes it.
 *
 * Connection cap: a sorted set of slots per identity, each scored with its lease's end
 * (Redis time). A script drops expired leases, then adds the slot only below the cap.
 * Nodes renew the leases of their live connections; a node that dies stops renewing
 * and its slots lapse within one lease. After a Redis restart the renewals put every
 * live slot back.
 *
 * While Redis is unreachable (a call fails, or does not answer within
 * {@link RESERVE_TIMEOUT_MS}) the limits fall back to each node's own (documented in
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

/** The largest share of an identity's limit one node reserves at a time. */
export const MAX_RESERVE = 256;
/** A reservation Redis has not answered in this long counts as failed. */
export const RESERVE_TIMEOUT_MS = 1_000;
/** After a failed call, Redis is left alone (local limits only) this long. */
const RETRY_AFTER_FAILURE_MS = 250;

/** How many blocks one node reserves at a time for a limit of `limit` per window. */
export function reserveShare(limit: number): number {
  return Math.max(1, Math.min(MAX_RESERVE, Math.floor(limit / 32)));
}

/**
 * ARGV: wanted, window (ms), limit. Grants what the sliding window has room for, up to
 * the wanted count, and counts it; returns the grant and the ms left in this window.
 */
const RESERVE_SCRIPT = `
local want = tonumber(ARGV[1])
local w = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
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
local into = now - idx * w
local room = math.floor(limit - cur - prev * (1 - into / w))
local grant = math.max(0, math.min(want, room))
cur = cur + grant
redis.call('HSET', KEYS[1], 'idx', idx, 'cur', cur, 'prev', prev)
redis.call('PEXPIRE', KEYS[1], 2 * w)
return {grant, w - into}
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
  parleyReserve(
    key: string,
    want: number,
    windowMs: number,
    limit: number,
  ): Promise<[number, number]>;
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
  readonly #share: number;
  /** Blocks reserved in Redis and not yet admitted here, and when they lapse (local ms). */
  #reserve = 0;
  #reserveUntil = -Infinity;
  /** Blocks waiting for a reservation, oldest first. */
  readonly #waiting: ((ok: boolean) => void)[] = [];
  #inFlight = false;
  /** When the last call failed; while it is recent, only the local limiter decides. */
  #failedAt = -Infinity;

  constructor(owner: RedisQuota, key: string, local: SlidingWindowLimiter) {
    this.#owner = owner;
    this.#key = key;
    this.#local = local;
    this.#share = reserveShare(owner.limit);
  }

  get idle(): boolean {
    return this.#waiting.length === 0 && !this.#inFlight && this.#local.count() === 0;
  }

  take(): boolean | Promise<boolean> {
    if (!this.#local.take()) return false;
    const now = this.#owner.now();
    if (now - this.#failedAt <= RETRY_AFTER_FAILURE_MS) return true;
    if (now >= this.#reserveUntil) this.#reserve = 0;
    if (this.#waiting.length === 0 && this.#reserve >= 1) {
      this.#reserve--;
      if (this.#reserve <= this.#share / 2) this.#ask();
      return true;
    }
    return new Promise<boolean>((resolve) => {
      this.#waiting.push(resolve);
      this.#ask();
    });
  }

  /** Asks Redis for the blocks waiting plus one share; one call in flight at a time. */
  #ask(): void {
    if (this.#inFlight) return;
    this.#inFlight = true;
    const want = this.#waiting.length + this.#share;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('reservation timed out')), RESERVE_TIMEOUT_MS);
    });
    Promise.race([
      this.#owner.redis.parleyReserve(this.#key, want, this.#owner.windowMs, this.#owner.limit),
      timeout,
    ]).then(
      ([granted, msLeft]) => {
        clearTimeout(timer);
        this.#inFlight = false;
        const now = this.#owner.now();
        if (now >= this.#reserveUntil) this.#reserve = 0;
        this.#reserve += Number(granted);
        this.#reserveUntil = now + Number(msLeft);
        while (this.#waiting.length > 0 && this.#reserve >= 1) {
          this.#reserve--;
          (this.#waiting.shift() as (ok: boolean) => void)(true);
        }
        if (this.#waiting.length === 0) return;
        // Redis granted less than asked: the identity is at its limit on every node.
        if (Number(granted) < want) this.#settleAll(false);
        else this.#ask();
      },
      (err: unknown) => {
        // Redis is unreachable or stalled: the local limiter (already passed) decides.
        clearTimeout(timer);
        this.#inFlight = false;
        this.#failedAt = this.#owner.now();
        this.#owner.warn(err);
        this.#settleAll(true);
      },
    );
  }

  #settleAll(ok: boolean): void {
    for (const resolve of this.#waiting.splice(0)) resolve(ok);
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
    if (typeof r.parleyReserve !== 'function') {
      r.defineCommand('parleyReserve', { numberOfKeys: 1, lua: RESERVE_SCRIPT });
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

  takeBlock(name: string): boolean | Promise<boolean> {
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
