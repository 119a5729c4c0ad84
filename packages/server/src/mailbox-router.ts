/**
 * The mailbox router: mail for a device, from the sender's frame to the recipient's
 * ack. It accepts relayed frames, hands new mail live to the recipient's caught-up
 * connections in server-id order while the commit runs (and lets the store hold it for
 * the live ack), sends `queued` once committed and `delivered` once acked (kept in the
 * store for a sender that is offline), nudges the recipient's other connections to read
 * their mailbox, and fans out `prekeys.low`, presence and CRL pushes.
 *
 * It owns the presence registry (which device has which connections here, and which
 * devices are connected to other nodes, learnt from the bus) and the in-flight list per
 * recipient. It talks to other nodes only through a `RelayBus`, and only when the device
 * concerned is connected to another node, so a relay alone pays nothing for it.
 *
 * It must not know sockets, frames' encoding, authentication, or how the bus is built.
 */
import type { ServerFrame } from '@parley/wire';
import type { AuditEvent } from './audit.js';
import type { BusMessage, BusSubscriber, NodeId, RelayBus } from './bus/types.js';
import { GroupFanout, type InflightMail } from './group-fanout.js';
import type { HostDeps, MailRouting, RelayedFrame, RouterPeer } from './host.js';
import { MAX_PENDING_RECEIPTS_PER_SENDER } from './limits.js';
import type { Address, MailItem, MailKind, Receipt } from './storage/types.js';

/**
 * How long the store may keep mail that went out live before writing it, waiting for the
 * recipient's ack (which makes the write unnecessary). An idle client acks within a few
 * milliseconds, but under load the ack waits behind everything queued in both
 * directions: a relay saturated by 2 000 messages in flight sees acks 200-500 ms after
 * delivery (bench:relay). Expiring holds then turns into extra disk writes exactly when
 * the relay is busiest, so the hold is generous. Its cost when no ack comes is only a
 * later "queued" (the sender keeps the message in its outbox until a receipt, so a crash
 * loses nothing); memory is capped by the store (MAX_HELD_BYTES).
 */
const LIVE_ACK_HOLD_MS = 1_000;

const KIND_OF: Record<Exclude<RelayedFrame['type'], 'group.send'>, MailKind> = {
  send: 'message',
  'session.terminate': 'session.terminate',
};

const NO_PEERS: readonly RouterPeer[] = Object.freeze([]);

function deviceKey(address: Address): string {
  return `${address.deviceId}:${address.name}`;
}

export interface MailboxRouterDeps extends HostDeps {
  readonly bus: RelayBus;
  /** Writes an audit record (the core's, which also counts it). */
  readonly audit: (event: AuditEvent) => void;
}

export class MailboxRouter implements MailRouting, BusSubscriber {
  readonly #deps: MailboxRouterDeps;
  readonly #byName = new Map<string, Set<RouterPeer>>();
  /**
   * Authenticated connections per device ("deviceId:name"). Each list is replaced, never
   * changed in place, so `peersOf` can hand it out without a copy (it is looked up
   * several times per relayed message) and callers may iterate it while connections come
   * and go.
   */
  readonly #byDevice = new Map<string, readonly RouterPeer[]>();
  /** Devices connected to other nodes: device key -> those nodes. */
  readonly #remote = new Map<string, Set<NodeId>>();
  /** Names with a device on another node -> how many (device, node) pairs. */
  readonly #remoteNames = new Map<string, number>();
  /** Per recipient device, mail still being committed, in server-id order. */
  readonly #inflight = new Map<string, InflightMail[]>();
  readonly #inflightById = new Map<number, InflightMail>();
  readonly #unsubscribe: () => void;
  readonly #fanout: GroupFanout;
  #closing = false;
  /** Called when another node reloaded its CRL (the relay reloads its own). */
  onCrlReloaded: (() => void) | undefined;

  constructor(deps: MailboxRouterDeps) {
    this.#deps = deps;
    this.#fanout = new GroupFanout({
      deps,
      audit: deps.audit,
      peersOf: (device) => this.peersOf(device),
      announceMail: (recipient, serverMessageId) => {
        if (this.#onOtherNode(recipient)) {
          deps.bus.publish({ type: 'mail', recipient, serverMessageId });
        }
      },
      beginInflight: (recipient, id) => this.#beginInflight(recipient, id),
      endInflight: (recipient, entry) => this.#endInflight(recipient, entry),
      canGoLive: (recipient, peer, entry) => this.#canGoLive(recipient, peer, entry),
    });
    this.#unsubscribe = deps.bus.subscribe(this);
    deps.bus.publish({ type: 'presence.sync' });
  }

  /* ---------- presence ---------- */

  register(peer: RouterPeer, address: Address): boolean | Promise<boolean> {
    const granted = this.#deps.bus.quota.acquireConnection(address.name);
    if (typeof granted === 'boolean') return granted && this.#add(peer, address);
    return granted.then((ok) => ok && this.#add(peer, address));
  }

  #add(peer: RouterPeer, address: Address): boolean {
    if (!peer.isOpen) {
      // Closed while the cluster-wide cap was asked: it will never be forgotten.
      this.#deps.bus.quota.releaseConnection(address.name);
      return false;
    }
    const set = this.#byName.get(address.name) ?? new Set<RouterPeer>();
    const firstHere = set.size === 0;
    set.add(peer);
    this.#byName.set(address.name, set);
    const k = deviceKey(address);
    const before = this.#byDevice.get(k) ?? NO_PEERS;
    this.#byDevice.set(k, [...before, peer]);
    this.#deps.metrics.authenticated.inc();
    if (before.length === 0)
      this.#deps.bus.publish({ type: 'presence', event: 'join', device: address });
    if (firstHere && !this.#remoteNames.has(address.name)) {
      this.#broadcastPresence('join', address.name, peer);
    }
    return true;
  }

  forget(peer: RouterPeer): void {
    const address = peer.identity;
    if (address === undefined) return;
    const set = this.#byName.get(address.name);
    if (!set?.delete(peer)) return;
    this.#deps.bus.quota.releaseConnection(address.name);
    const k = deviceKey(address);
    const rest = (this.#byDevice.get(k) ?? NO_PEERS).filter((s) => s !== peer);
    if (rest.length > 0) this.#byDevice.set(k, rest);
    else {
      this.#byDevice.delete(k);
      if (!this.#closing) {
        this.#deps.bus.publish({ type: 'presence', event: 'leave', device: address });
      }
    }
    this.#deps.metrics.authenticated.dec();
    if (set.size === 0) {
      this.#byName.delete(address.name);
      if (!this.#closing && !this.#remoteNames.has(address.name)) {
        this.#broadcastPresence('leave', address.name, peer);
      }
    }
  }

  /**
   * Whether `device` is connected to another node. Free when this relay is alone (no
   * remote presence at all): no key is built on the per-message path.
   */
  #onOtherNode(device: Address): boolean {
    return this.#remote.size > 0 && this.#remote.has(deviceKey(device));
  }

  /** Connections of one device here, authenticated now (do not modify). */
  peersOf(address: Address): readonly RouterPeer[] {
    return this.#byDevice.get(deviceKey(address)) ?? NO_PEERS;
  }

  onlineNames(): string[] {
    const names = new Set(this.#byName.keys());
    for (const n of this.#remoteNames.keys()) names.add(n);
    return [...names].sort();
  }

  #onlineCount(): number {
    if (this.#remoteNames.size === 0) return this.#byName.size;
    let n = this.#remoteNames.size;
    for (const name of this.#byName.keys()) if (!this.#remoteNames.has(name)) n++;
    return n;
  }

  #broadcastPresence(event: 'join' | 'leave', name: string, except?: RouterPeer): void {
    const { config } = this.#deps;
    if (!config.presenceBroadcast) return;
    if (this.#onlineCount() > config.limits.presenceBroadcastMaxOnline) return;
    for (const set of this.#byName.values()) {
      for (const s of set) if (s !== except) s.sendFrame({ type: 'presence', event, name });
    }
  }

  /* ---------- mail ---------- */

  /**
   * Submits one relayed frame; resolves once it is queued for commit (not committed).
   * Commits resolve in submission order, so receipts come back in order.
   */
  async submit(from: RouterPeer, me: Address, frame: RelayedFrame): Promise<void> {
    if (frame.type === 'group.send') return this.#fanout.submit(from, me, frame);
    const { store, config, now, metrics } = this.#deps;
    const recipient = { name: frame.to.name, deviceId: frame.to.deviceId };
    const local = this.peersOf(recipient);
    // A device with an authenticated connection is registered (its row committed before
    // its welcome, and devices are never deleted), so the lookup is only needed for
    // recipients that are offline.
    const known =
      local.length > 0 || this.#onOtherNode(recipient) || (await store.getDevice(recipient));
    if (!known) {
      metrics.messages.inc({ outcome: 'unknown-recipient' });
      from.sendFrame({ type: 'error', code: 'failed', clientMessageId: frame.clientMessageId });
      return;
    }
    const t = now();
    const end = metrics.enqueueSeconds.startTimer();
    const mail = {
      recipient,
      sender: me,
      clientMessageId: frame.clientMessageId,
      kind: KIND_OF[frame.type],
      payload: frame.payload,
      storedAt: t,
      expiresAt: t + config.limits.mailboxTtlMs,
    };
    // A recipient that will most likely get it live usually acks within milliseconds:
    // let the store wait for that ack before writing (no disk write at all if it comes).
    const liveLikely = this.peersOf(recipient).some(
      (s) => s.canTakeLive() && this.#nextCanGoLive(recipient, s),
    );
    const { decision, committed, idDurable, writeNow } = await store.submit(
      mail,
      config.limits.maxMailboxPerRecipient,
      liveLikely ? { holdMs: LIVE_ACK_HOLD_MS } : {},
    );
    if (!decision.ok) {
      metrics.messages.inc({ outcome: 'mailbox-full' });
      from.sendFrame({ type: 'error', code: 'failed', clientMessageId: frame.clientMessageId });
      return;
    }
    const serverMessageId = decision.serverMessageId;
    const queued = (): void => {
      end();
      metrics.messages.inc({ outcome: decision.duplicate ? 'duplicate' : 'queued' });
      // Durable before "queued" (M11).
      from.sendFrame({
        type: 'receipt',
        clientMessageId: frame.clientMessageId,
        status: 'queued',
        serverMessageId,
        timestamp: t,
      });
    };
    const failed = (err: unknown): void => {
      this.#deps.logger.error({ err: (err as Error).message }, 'enqueue failed');
      from.sendFrame({
        type: 'error',
        code: 'server_error',
        clientMessageId: frame.clientMessageId,
      });
    };
    if (decision.duplicate) {
      // If the original was acked while held, the ack's "delivered" answers this too.
      committed.then((outcome) => {
        if (outcome === 'stored') queued();
      }, failed);
      return;
    }
    // New mail: hand it at once to recipient connections that are caught up, while the
    // commit runs; the others get it from storage after the commit, in order.
    const entry = this.#beginInflight(recipient, serverMessageId);
    const item: MailItem = { ...mail, serverMessageId };
    // (Only with a durably reserved id: a crash must never let the id be reused.)
    for (const s of idDurable ? this.peersOf(recipient) : NO_PEERS) {
      if (this.#canGoLive(recipient, s, entry) && s.pushLive(item)) entry.liveTo.add(s);
    }
    // Held for an ack that cannot come (nobody got it live after all): store it now.
    if (entry.liveTo.size === 0) writeNow?.();
    entry.queuedSent = committed.then(
      (outcome) => {
        this.#endInflight(recipient, entry);
        if (outcome === 'acked') {
          // Never stored: the recipient has it, and "delivered" (sent by the ack) is the
          // only receipt that applies.
          end();
          metrics.messages.inc({ outcome: 'acked-live' });
          return;
        }
        queued();
        for (const s of this.peersOf(recipient)) if (!entry.liveTo.has(s)) s.notifyMail();
        if (this.#onOtherNode(recipient)) {
          this.#deps.bus.publish({ type: 'mail', recipient, serverMessageId });
        }
      },
      (err: unknown) => {
        this.#endInflight(recipient, entry);
        failed(err);
      },
    );
  }

  async ack(me: Address, serverMessageId: number): Promise<void> {
    const { store, now, metrics } = this.#deps;
    const item = await store.ack(me, serverMessageId);
    if (!item) return;
    if (item.kind === 'group') {
      // No relay receipt for group copies (see group-fanout.ts).
      metrics.groupCopies.inc({ outcome: 'acked' });
      return;
    }
    // The sender hears "queued" before "delivered", even when the ack overtook the commit.
    await this.#inflightById.get(serverMessageId)?.queuedSent;
    metrics.messages.inc({ outcome: 'delivered' });
    const receipt: Receipt = {
      clientMessageId: item.clientMessageId,
      status: 'delivered',
      serverMessageId,
      timestamp: now(),
    };
    const senders = this.peersOf(item.sender);
    if (senders.length > 0) {
      const frame: ServerFrame = { type: 'receipt', ...receipt };
      for (const s of senders) s.sendFrame(frame);
      return;
    }
    await store.addReceipt(item.sender, receipt, MAX_PENDING_RECEIPTS_PER_SENDER);
    // A sender that logged in while the write ran may have read the kept receipts
    // before this one was committed: tell it now (a repeat is harmless).
    for (const s of this.peersOf(item.sender)) s.sendStoredReceipt(receipt);
    // Kept first, then announced: a node that misses this still has it from storage.
    if (this.#onOtherNode(item.sender)) {
      this.#deps.bus.publish({ type: 'receipt', sender: item.sender, ...receipt });
    }
  }

  prekeysLow(device: Address, remainingOneTime: number, remainingOneTimePq: number): void {
    for (const s of this.peersOf(device)) {
      s.sendFrame({ type: 'prekeys.low', remainingOneTime, remainingOneTimePq });
    }
    if (this.#onOtherNode(device)) {
      this.#deps.bus.publish({ type: 'prekeys.low', device, remainingOneTime, remainingOneTimePq });
    }
  }

  /** Sends the CRL to every authenticated connection here; tells other nodes it changed. */
  pushCrl(crl: Uint8Array, peers: Iterable<RouterPeer>, announce: boolean): void {
    const frame: ServerFrame = { type: 'crl', requestId: 0, crl };
    for (const s of peers) if (s.identity !== undefined && s.isOpen) s.sendFrame(frame);
    if (announce) this.#deps.bus.publish({ type: 'crl.reloaded' });
  }

  #beginInflight(recipient: Address, id: number): InflightMail {
    const entry: InflightMail = { id, liveTo: new Set(), queuedSent: undefined };
    const k = deviceKey(recipient);
    const list = this.#inflight.get(k);
    if (list) list.push(entry);
    else this.#inflight.set(k, [entry]);
    this.#inflightById.set(id, entry);
    return entry;
  }

  #endInflight(recipient: Address, entry: InflightMail): void {
    const k = deviceKey(recipient);
    const list = this.#inflight.get(k);
    const i = list?.indexOf(entry) ?? -1;
    if (list && i >= 0) list.splice(i, 1);
    if (list?.length === 0) this.#inflight.delete(k);
    this.#inflightById.delete(entry.id);
  }

  /**
   * Whether `peer` may receive `entry` live: only if it received every earlier
   * in-flight item for this device live too. Otherwise an earlier item will reach it
   * from storage after its commit, and a live delivery now would overtake it.
   */
  #canGoLive(recipient: Address, peer: RouterPeer, entry: InflightMail): boolean {
    for (const e of this.#inflight.get(deviceKey(recipient)) ?? []) {
      if (e === entry) return true;
      if (!e.liveTo.has(peer)) return false;
    }
    return true;
  }

  /** Whether a new item for `recipient` could go live to `peer` now (see `#canGoLive`). */
  #nextCanGoLive(recipient: Address, peer: RouterPeer): boolean {
    for (const e of this.#inflight.get(deviceKey(recipient)) ?? []) {
      if (!e.liveTo.has(peer)) return false;
    }
    return true;
  }

  /* ---------- other nodes ---------- */

  message(origin: NodeId, m: BusMessage): void {
    switch (m.type) {
      case 'presence':
        if (m.event === 'join') this.#remoteJoin(origin, m.device);
        else this.#remoteLeave(origin, m.device);
        return;
      case 'presence.sync':
        this.#announceAll();
        return;
      case 'mail':
        for (const s of this.peersOf(m.recipient)) s.notifyMail();
        return;
      case 'receipt': {
        const { sender, type: _type, ...receipt } = m;
        for (const s of this.peersOf(sender)) s.sendStoredReceipt(receipt);
        return;
      }
      case 'prekeys.low':
        for (const s of this.peersOf(m.device)) {
          s.sendFrame({
            type: 'prekeys.low',
            remainingOneTime: m.remainingOneTime,
            remainingOneTimePq: m.remainingOneTimePq,
          });
        }
        return;
      case 'crl.reloaded':
        this.onCrlReloaded?.();
        return;
    }
  }

  gap(): void {
    // Nudges may have been lost: every local connection re-reads its mailbox (a pump
    // with nothing new costs one read), and presence is rebuilt from scratch.
    for (const peers of this.#byDevice.values()) for (const s of peers) s.notifyMail();
    for (const [k, nodes] of [...this.#remote]) {
      for (const node of [...nodes]) this.#remoteLeave(node, addressOf(k));
    }
    this.#deps.bus.publish({ type: 'presence.sync' });
    this.#announceAll();
  }

  nodeLeft(node: NodeId): void {
    for (const [k, nodes] of [...this.#remote])
      if (nodes.has(node)) this.#remoteLeave(node, addressOf(k));
  }

  #announceAll(): void {
    for (const peers of this.#byDevice.values()) {
      const device = peers[0]?.identity;
      if (device) this.#deps.bus.publish({ type: 'presence', event: 'join', device });
    }
  }

  #remoteJoin(node: NodeId, device: Address): void {
    const k = deviceKey(device);
    const nodes = this.#remote.get(k) ?? new Set<NodeId>();
    if (nodes.has(node)) return;
    nodes.add(node);
    this.#remote.set(k, nodes);
    const n = this.#remoteNames.get(device.name) ?? 0;
    this.#remoteNames.set(device.name, n + 1);
    if (n === 0 && !this.#byName.has(device.name)) this.#broadcastPresence('join', device.name);
  }

  #remoteLeave(node: NodeId, device: Address): void {
    const k = deviceKey(device);
    const nodes = this.#remote.get(k);
    if (!nodes?.delete(node)) return;
    if (nodes.size === 0) this.#remote.delete(k);
    const n = (this.#remoteNames.get(device.name) ?? 1) - 1;
    if (n > 0) {
      this.#remoteNames.set(device.name, n);
      return;
    }
    this.#remoteNames.delete(device.name);
    if (!this.#byName.has(device.name)) this.#broadcastPresence('leave', device.name);
  }

  /** Stops announcing (connections are closing with the relay) and leaves the bus. */
  close(): void {
    this.#closing = true;
    this.#unsubscribe();
  }
}

function addressOf(key: string): Address {
  const i = key.indexOf(':');
  return { deviceId: Number(key.slice(0, i)), name: key.slice(i + 1) };
}
