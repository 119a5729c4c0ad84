/**
 * The boundary between relay nodes: what one node's mailbox router tells the others,
 * and the shared per-identity quota. The in-process implementation (`LocalBus`) is the
 * embedded default; a Redis implementation serves several nodes.
 *
 * What travels here is notification only, never mail: names, device ids, node ids,
 * counters, and a receipt's correlation fields. Mail and kept receipts are committed to
 * the shared store BEFORE anything is published, so the store stays the one source of
 * truth, and a lost or late bus message delays a delivery (the recipient's node reads it
 * from storage on its next pump, at the latest when the device reconnects or sends
 * `mailbox.fetch`) but never loses one. Ciphertext never crosses the bus: it would add a
 * second copy outside the store's expiry and quota rules and a second delivery path that
 * could overtake the stored order per recipient.
 *
 * Delivery contract an implementation must keep:
 * - at most once, in publish order per origin node (Redis pub/sub and streams both do);
 * - a node never receives its own messages (the router handles its own connections
 *   directly, without a bus round trip);
 * - after any interval in which messages may have been missed (reconnect to Redis, a
 *   subscriber that fell behind), `gap()` is called once the bus is usable again: the
 *   router then re-announces its presence and re-reads every local mailbox;
 * - a node that stopped without saying so (crash, partition) is reported with
 *   `nodeLeft(node)` once the implementation is sure of it, so others drop its presence.
 *
 * It must not know: connections, frames, the store.
 */
import type { Address } from '../storage/types.js';

/** A relay node's id, unique in the cluster (config `serverId` plus a per-process suffix). */
export type NodeId = string;

/**
 * One notification between routers. Every field is plain data (strings, numbers,
 * booleans, one `Uint8Array`), so an implementation can encode it as JSON with the
 * bytes in base64 (see `encodeBusMessage`).
 */
export type BusMessage =
  /**
   * `device` has authenticated connections on the origin node (`join`, sent on its
   * first) or no longer has any there (`leave`, after its last). Routers keep a per-device
   * count of remote nodes from these: it decides whether the other messages below are
   * published at all, so a single node (or a recipient only connected locally) pays
   * nothing for the bus on the hot path. Client-visible presence (per name) is derived
   * from it as well.
   */
  | {
      readonly type: 'presence';
      readonly event: 'join' | 'leave';
      readonly device: Address;
    }
  /**
   * Asks every other node to publish `presence` `join` for each device connected to it
   * (sent by a node that just started or recovered from a `gap`).
   */
  | { readonly type: 'presence.sync' }
  /**
   * Mail for `recipient` was committed (server id `serverMessageId`): its connections on
   * other nodes should read their mailbox. Published after the commit, never before.
   */
  | {
      readonly type: 'mail';
      readonly recipient: Address;
      readonly serverMessageId: number;
    }
  /**
   * A relay receipt for `sender`, whose device is connected to another node. The receipt
   * is already kept in the store (as for an offline sender), so the receiving node sends
   * it as `receipt.stored` and the sender's ack settles it; if this message is lost, the
   * sender gets it at its next login.
   */
  | {
      readonly type: 'receipt';
      readonly sender: Address;
      readonly clientMessageId: Uint8Array;
      readonly status: 'queued' | 'delivered';
      readonly serverMessageId: number;
      readonly timestamp: number;
    }
  /** `device`'s one-time prekeys ran low (a lookup took one on the origin node). */
  | {
      readonly type: 'prekeys.low';
      readonly device: Address;
      readonly remainingOneTime: number;
      readonly remainingOneTimePq: number;
    }
  /**
   * The origin node reloaded its CRL (mtls): every node reloads its own from its
   * configured source and re-checks its connections. The CRL itself is not carried: each
   * node trusts only what it reads and verifies against its own CA.
   */
  | { readonly type: 'crl.reloaded' };

export type BusMessageType = BusMessage['type'];

/** What a router registers with the bus. Handlers must not throw (they are notifications). */
export interface BusSubscriber {
  /** A message published by another node. */
  message(origin: NodeId, message: BusMessage): void;
  /** Messages may have been missed; the bus is usable again (see the contract above). */
  gap(): void;
  /** `node` is gone without a `leave` for its devices: forget its presence. */
  nodeLeft(node: NodeId): void;
}

/**
 * The cluster-wide per-identity quota: the flood limit and the connection cap hold for
 * an identity across every node, not N times over. `LocalBus` answers from this process
 * alone.
 */
export interface IdentityQuota {
  /**
   * One block from an authenticated connection of `name` arrived on this node. Returns
   * false when the identity is over its limit (config `rateLimit.maxBlocksPerIdentity`
   * per `rateLimit.windowMs`), counted over all nodes. It runs for every block, so it
   * answers synchronously whenever it can: a distributed implementation reserves
   * shares of the limit ahead and answers from them, and returns a promise only when it
   * must ask the other nodes first (the connection then holds its later blocks, in
   * order, until the answer). The promise never rejects.
   */
  takeBlock(name: string): boolean | Promise<boolean>;
  /**
   * A connection of `name` is about to authenticate on this node. Resolves false when
   * the identity already has `limits.maxConnectionsPerIdentity` connections cluster-wide
   * (the connection is then refused with `rate_limited`). Every true is paired with
   * exactly one `releaseConnection`.
   */
  acquireConnection(name: string): boolean | Promise<boolean>;
  /** A connection counted by `acquireConnection` ended. */
  releaseConnection(name: string): void;
}

/** Engine state as `/healthz` reports it. */
export interface BusHealth {
  readonly engine: 'local' | 'redis';
  readonly ok: boolean;
  /** Short, operator-facing reason when not ok (no secrets, no addresses of clients). */
  readonly detail?: string;
}

/** The bus one relay core talks through. */
export interface RelayBus {
  /** This node's id (the `origin` others see). */
  readonly nodeId: NodeId;
  readonly quota: IdentityQuota;
  /**
   * Publishes to every other node. Never throws and never blocks the caller: an
   * implementation queues (bounded) and reports trouble through `health` and, once
   * recovered, `gap()`.
   */
  publish(message: BusMessage): void;
  /** Registers the node's router; returns the function that unregisters it. */
  subscribe(subscriber: BusSubscriber): () => void;
  health(): BusHealth | Promise<BusHealth>;
  /** Stops publishing and delivering; pending quota counts of this node are released. */
  close(): Promise<void>;
}
