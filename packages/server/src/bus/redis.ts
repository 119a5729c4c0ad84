/**
 * The bus between relay nodes on Redis (see `types.ts` for the contract).
 *
 * Pub/sub, not streams: everything on the bus is a notification whose loss delays but
 * never loses mail (the store is committed first), so what matters is that a node
 * knows WHEN it may have missed something, not replaying what it missed. Pub/sub gives
 * at-most-once delivery in publish order per publishing connection with nothing kept
 * in Redis; a stream would add retention, trimming and per-node cursors to replay
 * messages the router re-reads from the store on `gap()` anyway.
 *
 * One channel carries every node's messages as JSON `{o: origin, m: message}` (bytes
 * in base64, `codec.ts`); control entries `{o, hb: true}` (heartbeat) and
 * `{o, gap: true}` (this node dropped messages it could not publish) share it.
 * - A subscriber connection that dropped (Redis restart, network) calls `gap()` once
 *   it is subscribed again.
 * - Publishes while Redis is unreachable wait in a bounded queue; past the bound the
 *   oldest are dropped, and after reconnecting the node publishes `gap` so the other
 *   routers re-read their mailboxes.
 * - A node whose heartbeats stop for {@link NODE_TIMEOUT_MS} is reported `nodeLeft`.
 *   Silence is only judged while this node's own subscription is live, so a Redis
 *   outage does not make every peer look dead.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../observability.js';
import { decodeBusMessage, encodeBusMessage } from './codec.js';
import type { RedisQuota } from './redis-quota.js';
import type { BusHealth, BusMessage, BusSubscriber, NodeId, RelayBus } from './types.js';

/** Heartbeat period of every node. */
export const HEARTBEAT_MS = 1_000;
/** A peer unheard for this long (about five heartbeats) has left. */
export const NODE_TIMEOUT_MS = 5_000;
/** Bound on one health probe (PING), so `/healthz` answers while Redis hangs. */
const PROBE_TIMEOUT_MS = 1_000;
/** Most messages in one pipeline: bounds one write and what one failure resends. */
const MAX_PIPELINED = 256;
/** Messages kept for publishing while Redis is unreachable. */
const MAX_QUEUED = 10_000;

export interface RedisBusOptions {
  readonly nodeId: NodeId;
  /** Command connection (publishing, quota). */
  readonly redis: Redis;
  /** A connection of its own for SUBSCRIBE (a subscribed connection runs no commands). */
  readonly subscriber: Redis;
  readonly keyPrefix: string;
  readonly quota: RedisQuota;
  readonly logger: Logger;
  /** Local clock for heartbeat bookkeeping. */
  readonly now: () => number;
}

type Envelope =
  | { readonly o: NodeId; readonly m: BusMessage }
  | { readonly o: NodeId; readonly hb: true }
  | { readonly o: NodeId; readonly gap: true };

export class RedisBus implements RelayBus {
  readonly nodeId: NodeId;
  readonly quota: RedisQuota;
  readonly #opts: RedisBusOptions;
  readonly #channel: string;
  readonly #subscribers = new Set<BusSubscriber>();
  /** Last time each peer was heard from. */
  readonly #peers = new Map<NodeId, number>();
  readonly #queue: string[] = [];
  readonly #timer: ReturnType<typeof setInterval>;
  #flushing = false;
  #dropped = false;
  #subscribed = false;
  /** The subscription was lost since it was last made; `gap()` is due on resubscribe. */
  #lost = false;
  #closed = false;

  private constructor(opts: RedisBusOptions) {
    this.#opts = opts;
    this.nodeId = opts.nodeId;
    this.quota = opts.quota;
    this.#channel = `${opts.keyPrefix}bus`;
    this.#timer = setInterval(() => this.#beat(), HEARTBEAT_MS);
    this.#timer.unref();
  }

  /** Subscribes, then returns the bus; throws if Redis cannot be reached. */
  static async open(opts: RedisBusOptions): Promise<RedisBus> {
    const bus = new RedisBus(opts);
    const sub = opts.subscriber;
    sub.on('message', (channel: string, text: string) => {
      if (channel === bus.#channel) bus.#receive(text);
    });
    // ioredis re-subscribes by itself after a reconnect ('ready' follows it).
    sub.on('close', () => {
      if (bus.#subscribed) bus.#lost = true;
      bus.#subscribed = false;
    });
    sub.on('ready', () => {
      if (bus.#closed || !bus.#lost) return;
      bus.#subscribed = true;
      bus.#lost = false;
      const now = opts.now();
      // Peers were not heard meanwhile through no fault of theirs.
      for (const id of bus.#peers.keys()) bus.#peers.set(id, now);
      opts.logger.info('bus subscription restored; re-reading mailboxes');
      for (const s of bus.#subscribers) s.gap();
    });
    opts.redis.on('ready', () => bus.#flush());
    await sub.subscribe(bus.#channel);
    bus.#subscribed = true;
    return bus;
  }

  publish(message: BusMessage): void {
    if (this.#closed) return;
    this.#enqueue(`{"o":${JSON.stringify(this.nodeId)},"m":${encodeBusMessage(message)}}`);
  }

  subscribe(subscriber: BusSubscriber): () => void {
    this.#subscribers.add(subscriber);
    return () => this.#subscribers.delete(subscriber);
  }

  async health(): Promise<BusHealth> {
    if (!this.#subscribed) return { engine: 'redis', ok: false, detail: 'not subscribed' };
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('no answer to PING')), PROBE_TIMEOUT_MS);
    });
    try {
      await Promise.race([this.#opts.redis.ping(), timeout]);
      return { engine: 'redis', ok: true };
    } catch (err) {
      return { engine: 'redis', ok: false, detail: (err as Error).message };
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#subscribers.clear();
    await this.#drain();
    await this.quota.close();
    this.#opts.subscriber.disconnect();
    this.#opts.redis.disconnect();
  }

  #enqueue(text: string): void {
    if (this.#queue.length >= MAX_QUEUED) {
      this.#queue.shift();
      this.#dropped = true;
    }
    this.#queue.push(text);
    this.#flush();
  }

  /**
   * Publishes the queue in order: what is queued goes out as one pipeline (one write,
   * one round trip for many messages), one pipeline in flight, so order per node holds.
   * A message whose PUBLISH failed is kept with everything after it and sent again (a
   * repeat is harmless to every subscriber; a loss is reported as a gap).
   */
  #flush(): void {
    if (this.#flushing || this.#queue.length === 0) return;
    if (this.#dropped && this.#opts.redis.status === 'ready') {
      this.#dropped = false;
      this.#queue.unshift(JSON.stringify({ o: this.nodeId, gap: true }));
    }
    const texts = this.#queue.slice(0, MAX_PIPELINED);
    this.#flushing = true;
    const pipeline = this.#opts.redis.pipeline();
    for (const t of texts) pipeline.publish(this.#channel, t);
    pipeline.exec().then(
      (results) => {
        this.#flushing = false;
        const failedAt = (results ?? []).findIndex(([err]) => err !== null);
        const sent = failedAt < 0 ? texts.length : failedAt;
        this.#queue.splice(0, sent);
        if (failedAt < 0) this.#flush();
      },
      () => {
        // Unreachable: kept, retried when the connection is ready again.
        this.#flushing = false;
      },
    );
  }

  async #drain(): Promise<void> {
    for (let i = 0; i < 100 && this.#queue.length > 0 && this.#opts.redis.status === 'ready'; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  #beat(): void {
    if (this.#closed) return;
    // Heartbeats are not queued: a stale one says nothing.
    if (this.#opts.redis.status === 'ready') {
      this.#opts.redis
        .publish(this.#channel, JSON.stringify({ o: this.nodeId, hb: true }))
        .catch(() => undefined);
    }
    if (!this.#subscribed) return;
    const now = this.#opts.now();
    for (const [id, seen] of this.#peers) {
      if (now - seen < NODE_TIMEOUT_MS) continue;
      this.#peers.delete(id);
      this.#opts.logger.warn({ node: id }, 'relay node silent; dropping its presence');
      for (const s of this.#subscribers) s.nodeLeft(id);
    }
  }

  #receive(text: string): void {
    let env: Envelope;
    let message: BusMessage | undefined;
    try {
      env = JSON.parse(text) as Envelope;
      if (typeof env.o !== 'string') throw new Error('no origin');
      if ('m' in env) message = decodeBusMessage(JSON.stringify(env.m));
    } catch (err) {
      this.#opts.logger.warn({ err: (err as Error).message }, 'malformed bus message dropped');
      return;
    }
    if (env.o === this.nodeId) return;
    this.#peers.set(env.o, this.#opts.now());
    if ('gap' in env) {
      for (const s of this.#subscribers) s.gap();
      return;
    }
    if (message === undefined) return;
    for (const s of this.#subscribers) {
      try {
        s.message(env.o, message);
      } catch (err) {
        this.#opts.logger.error({ err: (err as Error).message }, 'bus subscriber failed');
      }
    }
  }
}
