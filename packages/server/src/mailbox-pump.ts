/**
 * One authenticated connection's side of its device's mailbox: stored mail delivered in
 * order (backlog first, then live hand-over from the router), acks, and the relay
 * receipts kept for the device while it was away.
 *
 * It owns the delivery cursor (the highest server id sent on this connection), the
 * pump's run state and the kept receipts sent and not yet acked. The router decides
 * whose mail it is; this part only decides when and in what order this connection sees
 * it: nothing overtakes the backlog, nothing is sent twice on one connection.
 */
import type { ServerFrame } from '@parley/wire';
import type { ConnectionHost } from './host.js';
import { MAILBOX_BATCH, MAX_SEND_BUFFER_BYTES } from './limits.js';
import type { Address, MailItem, Receipt } from './storage/types.js';

/** How long to wait before re-checking a full send buffer while draining mail. */
const DRAIN_POLL_MS = 5;

/** What the pump needs from its connection. */
export interface PumpOutput {
  send(frame: ServerFrame): void;
  isOpen(): boolean;
  /** Bytes accepted for sending and not yet written. */
  bufferedAmount(): number;
}

export class MailboxPump {
  readonly #host: ConnectionHost;
  readonly #device: Address;
  readonly #out: PumpOutput;
  /** Highest server id delivered on this connection. */
  #cursor = 0;
  #pumping = false;
  /** The stored backlog has been delivered once since login (or since the last fetch). */
  #caughtUp = false;
  #pumpAgain = false;
  #emptyMarkerDue = false;
  readonly #acksInFlight = new Set<Promise<unknown>>();
  /**
   * Server ids sent as `receipt.stored` on this connection and not yet acked: an ack of
   * one of them settles the kept receipt instead of touching the mailbox. Bounded by the
   * receipts kept per device (MAX_PENDING_RECEIPTS_PER_SENDER).
   */
  readonly #storedReceiptsSent = new Set<number>();

  constructor(host: ConnectionHost, device: Address, out: PumpOutput) {
    this.#host = host;
    this.#device = device;
    this.#out = out;
  }

  /** Right after `welcome`: kept receipts, `prekeys.low` if due, then the backlog. */
  async start(): Promise<void> {
    await this.#flushReceipts();
    const low = await this.#host.keys.lowOnLogin(this.#device);
    if (low) this.#out.send(low);
    this.#emptyMarkerDue = true;
    this.#pump();
  }

  /**
   * `mailbox.fetch`: a sync point, not a second delivery. The backlog was pushed after
   * `welcome` and the cursor stays, so nothing already sent here is sent again. Acks
   * sent before it take effect before `mailbox.empty` answers it.
   */
  async fetch(): Promise<void> {
    await Promise.all(this.#acksInFlight);
    this.#emptyMarkerDue = true;
    this.#pump();
  }

  /** Whether a new item would be delivered live now (see `pushLive`). */
  canTakeLive(): boolean {
    return (
      this.#caughtUp &&
      !this.#pumping &&
      !this.#pumpAgain &&
      this.#out.bufferedAmount() <= MAX_SEND_BUFFER_BYTES
    );
  }

  /** Delivers one new item now if `canTakeLive`. Returns whether it did. */
  pushLive(item: MailItem): boolean {
    if (!this.canTakeLive()) return false;
    if (item.serverMessageId <= this.#cursor) return false;
    this.#deliver(item);
    return true;
  }

  /** New mail for this device was stored: deliver it (in order, after any backlog). */
  notifyMail(): void {
    this.#pump();
  }

  /** Not awaited: acks of one connection commit together in the next group commit. */
  ackSoon(serverMessageId: number): void {
    const done = this.#onAck(serverMessageId).catch((err: unknown) => {
      this.#host.deps.logger.error({ err: (err as Error).message }, 'ack failed');
    });
    this.#acksInFlight.add(done);
    void done.finally(() => this.#acksInFlight.delete(done));
  }

  /** Not an async function of its own: one promise per ack, as on the hot path before. */
  #onAck(serverMessageId: number): Promise<unknown> {
    // The sender applied a kept receipt: only now may it go (at-least-once).
    if (this.#storedReceiptsSent.delete(serverMessageId)) {
      return this.#host.deps.store.settleReceipt(this.#device, serverMessageId);
    }
    return this.#host.router.ack(this.#device, serverMessageId);
  }

  /**
   * Sends a kept receipt as `receipt.stored`; it stays in storage until this device
   * acks its server id (see #onAck).
   */
  sendStoredReceipt(r: Receipt): void {
    this.#storedReceiptsSent.add(r.serverMessageId);
    this.#out.send({
      type: 'receipt.stored',
      clientMessageId: r.clientMessageId,
      status: r.status,
      serverMessageId: r.serverMessageId,
      timestamp: r.timestamp,
    });
  }

  /** Sends every receipt kept for this device while it was offline, oldest first. */
  async #flushReceipts(): Promise<void> {
    const { store } = this.#host.deps;
    let after = 0;
    for (;;) {
      const batch = await store.pendingReceipts(this.#device, after, MAILBOX_BATCH);
      for (const r of batch) {
        if (this.#out.bufferedAmount() > MAX_SEND_BUFFER_BYTES) await this.#drained();
        if (!this.#out.isOpen()) return;
        this.sendStoredReceipt(r);
        after = r.receiptId;
      }
      if (batch.length < MAILBOX_BATCH) return;
    }
  }

  /** Waits until the send buffer has room or the connection is closed. */
  async #drained(): Promise<void> {
    while (this.#out.bufferedAmount() > MAX_SEND_BUFFER_BYTES && this.#out.isOpen()) {
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
    }
  }

  #deliver(item: MailItem): void {
    this.#out.send({
      type: 'deliver',
      serverMessageId: item.serverMessageId,
      kind: item.kind,
      from: item.sender,
      timestamp: item.storedAt,
      payload: item.payload,
    });
    this.#cursor = item.serverMessageId;
  }

  /**
   * Delivers stored mail with server id above the cursor, oldest first. One pump runs
   * at a time per connection; a notification during a run makes it loop once more, so
   * nothing is skipped and nothing overtakes the backlog.
   */
  #pump(): void {
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    this.#runPump().then(
      () => {
        this.#pumping = false;
      },
      (err: unknown) => {
        this.#pumping = false;
        this.#host.deps.logger.error({ err: (err as Error).message }, 'mailbox pump failed');
      },
    );
  }

  async #runPump(): Promise<void> {
    const { store } = this.#host.deps;
    do {
      this.#pumpAgain = false;
      for (;;) {
        if (!this.#out.isOpen()) return;
        const items: MailItem[] = await store.pending(this.#device, this.#cursor, MAILBOX_BATCH);
        for (const item of items) {
          if (this.#out.bufferedAmount() > MAX_SEND_BUFFER_BYTES) await this.#drained();
          if (!this.#out.isOpen()) return;
          this.#deliver(item);
        }
        if (items.length < MAILBOX_BATCH) break;
      }
    } while (this.#pumpAgain);
    this.#caughtUp = true;
    if (this.#emptyMarkerDue) {
      this.#emptyMarkerDue = false;
      this.#out.send({ type: 'mailbox.empty' });
    }
  }
}
