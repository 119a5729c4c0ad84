/**
 * The in-process bus: the embedded default (one node, nothing to publish to), and a hub
 * that joins several relay cores in one process into a cluster for tests and
 * simulators, with the same contract as a bus between machines (see `types.ts`).
 *
 * It owns the per-identity quota of the nodes on one hub: one sliding window per
 * identity and a connection count per identity.
 */
import { SlidingWindowLimiter } from '../rate-limit.js';
import type {
  BusHealth,
  BusMessage,
  BusSubscriber,
  IdentityQuota,
  NodeId,
  RelayBus,
} from './types.js';

/** Limits the quota enforces (from config `rateLimit` and `limits`). */
export interface LocalQuotaLimits {
  readonly maxBlocksPerIdentity: number;
  readonly windowMs: number;
  readonly maxConnectionsPerIdentity: number;
}

/** Per-identity counters of one process. */
export class LocalQuota implements IdentityQuota {
  readonly #limits: LocalQuotaLimits;
  readonly #now: () => number;
  readonly #windows = new Map<string, SlidingWindowLimiter>();
  readonly #connections = new Map<string, number>();

  constructor(limits: LocalQuotaLimits, now: () => number) {
    this.#limits = limits;
    this.#now = now;
  }

  takeBlock(name: string): boolean {
    let w = this.#windows.get(name);
    if (!w) {
      w = new SlidingWindowLimiter(
        this.#limits.maxBlocksPerIdentity,
        this.#limits.windowMs,
        this.#now,
      );
      this.#windows.set(name, w);
    }
    return w.take();
  }

  acquireConnection(name: string): boolean {
    const n = this.#connections.get(name) ?? 0;
    if (n >= this.#limits.maxConnectionsPerIdentity) return false;
    this.#connections.set(name, n + 1);
    return true;
  }

  releaseConnection(name: string): void {
    const n = (this.#connections.get(name) ?? 0) - 1;
    if (n > 0) this.#connections.set(name, n);
    else this.#connections.delete(name);
  }

  /** Drops the windows of identities with no connection and nothing counted. */
  prune(): void {
    for (const [name, w] of this.#windows) {
      if (!this.#connections.has(name) && w.count() === 0) this.#windows.delete(name);
    }
  }
}

/** Several nodes in one process; each `node()` is one node's bus. */
export class LocalBusHub {
  readonly quota: LocalQuota;
  readonly #nodes = new Map<NodeId, LocalBus>();

  constructor(limits: LocalQuotaLimits, now: () => number) {
    this.quota = new LocalQuota(limits, now);
  }

  /** The bus of node `nodeId` on this hub. */
  node(nodeId: NodeId): LocalBus {
    if (this.#nodes.has(nodeId)) throw new Error(`bus node ${nodeId} exists`);
    const bus = new LocalBus(nodeId, this.quota, this);
    this.#nodes.set(nodeId, bus);
    return bus;
  }

  /** @internal */
  deliver(origin: NodeId, message: BusMessage): void {
    for (const [id, bus] of this.#nodes) if (id !== origin) bus.receive(origin, message);
  }

  /**
   * @internal A node closed: the others hear `nodeLeft`, as a bus between machines
   * reports a node that stopped.
   */
  remove(nodeId: NodeId): void {
    if (!this.#nodes.delete(nodeId)) return;
    for (const bus of this.#nodes.values()) bus.left(nodeId);
  }
}

/** One node's in-process bus. Messages reach the other nodes of its hub synchronously. */
export class LocalBus implements RelayBus {
  readonly nodeId: NodeId;
  readonly quota: LocalQuota;
  readonly #hub: LocalBusHub | undefined;
  readonly #subscribers = new Set<BusSubscriber>();
  #closed = false;

  constructor(nodeId: NodeId, quota: LocalQuota, hub?: LocalBusHub) {
    this.nodeId = nodeId;
    this.quota = quota;
    this.#hub = hub;
  }

  /** A bus for a relay that runs alone: nothing is ever published anywhere. */
  static standalone(nodeId: NodeId, limits: LocalQuotaLimits, now: () => number): LocalBus {
    return new LocalBus(nodeId, new LocalQuota(limits, now));
  }

  publish(message: BusMessage): void {
    if (this.#closed) return;
    this.#hub?.deliver(this.nodeId, message);
  }

  subscribe(subscriber: BusSubscriber): () => void {
    this.#subscribers.add(subscriber);
    return () => this.#subscribers.delete(subscriber);
  }

  health(): BusHealth {
    return { engine: 'local', ok: !this.#closed };
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#subscribers.clear();
      this.#hub?.remove(this.nodeId);
    }
    return Promise.resolve();
  }

  /** @internal */
  receive(origin: NodeId, message: BusMessage): void {
    if (this.#closed) return;
    for (const s of this.#subscribers) s.message(origin, message);
  }

  /** @internal */
  left(node: NodeId): void {
    if (this.#closed) return;
    for (const s of this.#subscribers) s.nodeLeft(node);
  }
}
