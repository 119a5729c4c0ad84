/**
 * The outbox towards the relay (docs/client.md, "Sending"): every committed outbox
 * entry is handed to the relay once per connection and again only if unanswered for
 * `OUTBOX_RESEND_AFTER_MS`; the relay's receipts (`queued`, `on-device`) settle it,
 * its refusals back it off (`rate_limited`, `server_error`) or park it until the next
 * connection.
 *
 * Owns: which entries are in flight on this connection, and the one retry timer.
 * Knows nothing of encryption: entries arrive committed, with their ciphertext.
 */
import { fromHex, toHex } from '@parley/crypto';
import type { ClientFrame, ReceiptFrame, StoredReceiptFrame } from '@parley/wire';
import type { CoreContext } from './context.js';
import { messageOfRecord, outboxReceiptWrites } from './outbox-records.js';
import type { OutboxCiphertext } from './outbox-records.js';
import { nextStatus, relayReceiptStatus } from './receipts.js';
import { currentWireId, readRepair } from './repair.js';
import type { StoreWrite } from './store/types.js';
import type { TimerHandle } from './timers.js';

/**
 * A sent outbox entry without a receipt after this long is sent again (same id, same
 * ciphertext; the relay deduplicates). Long enough that a busy relay answers first.
 */
export const OUTBOX_RESEND_AFTER_MS = 10_000;
/** Pause before resending after the relay said `rate_limited` (its window is 5 s). */
export const RATE_LIMIT_BACKOFF_MS = 1_000;
/**
 * First pause after the relay said `server_error` (its storage was unreachable, nothing
 * stored; docs/wire.md says the same id may be sent again). Doubled per refusal of the
 * same entry, up to `SERVER_ERROR_BACKOFF_MAX_MS`: a database failover takes seconds, a
 * longer outage should not be hammered.
 */
export const SERVER_ERROR_BACKOFF_MS = 1_000;
/** Longest pause between `server_error` retries of one entry. */
export const SERVER_ERROR_BACKOFF_MAX_MS = 30_000;
/**
 * `server_error` refusals of one entry on one connection before it is parked until the
 * next connection (about a minute of retries with the pauses above): a relay that stays
 * broken that long is better tried again after a reconnect, and the user is told.
 */
export const SERVER_ERROR_MAX_RETRIES = 6;
/** Queue key serialising relay receipts, so `queued` and `on-device` apply in arrival order. */
const RECEIPT_QUEUE = '\u0000receipts';

export interface OutboxContext extends CoreContext {
  /** What the retry timer runs: this outbox's flush, then whatever else waits to be sent. */
  retry(): Promise<void>;
  /** Whether the client was closed (no more timers). */
  isClosed(): boolean;
}

export class Outbox {
  /** Outbox ids sent on this connection and not yet answered, with when they were sent. */
  private readonly inflight = new Map<string, number>();
  private retryTimer: TimerHandle | undefined;
  private retryAt = 0;
  /** `server_error` refusals per outbox id on this connection. */
  private readonly serverErrors = new Map<string, number>();

  constructor(private readonly ctx: OutboxContext) {}

  /** A new connection: nothing is in flight on it yet. */
  connectionOpened(): void {
    this.inflight.clear();
    this.serverErrors.clear();
  }

  connectionClosed(): void {
    this.inflight.clear();
    this.serverErrors.clear();
    if (this.retryTimer !== undefined) this.ctx.timers.clear(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** Sends every pending outbox entry (again). Safe to call at any time: the relay dedupes by id. */
  async flush(): Promise<void> {
    const { ctx } = this;
    if (!ctx.isReady()) return;
    const now = ctx.clock();
    for (const entry of await ctx.store.listOutbox()) {
      const sentAt = this.inflight.get(entry.id);
      // Each entry goes out once per connection, and again only if unanswered for long.
      if (sentAt !== undefined && now - sentAt < OUTBOX_RESEND_AFTER_MS) continue;
      if (!this.send(entry, entry.frame === 'session.terminate')) return;
    }
    if (this.inflight.size > 0) this.scheduleRetry(OUTBOX_RESEND_AFTER_MS);
  }

  /** Sends one committed outbox entry and tracks it as in flight; false if not connected. */
  send(entry: OutboxCiphertext, isEnd: boolean): boolean {
    const { ctx } = this;
    if (!ctx.isReady()) return false;
    const account = ctx.account();
    const from = { name: account.name, deviceId: account.deviceId };
    // A group upload names every member it goes to; the relay stores one copy each.
    const frame: ClientFrame = entry.recipients
      ? {
          type: 'group.send',
          clientMessageId: fromHex(entry.id),
          from,
          to: entry.recipients.map((name) => ({ name, deviceId: 1 })),
          payload: entry.payload,
        }
      : {
          type: isEnd ? 'session.terminate' : 'send',
          clientMessageId: fromHex(entry.id),
          from,
          to: { name: entry.peer, deviceId: entry.deviceId },
          payload: entry.payload,
        };
    if (!ctx.send(frame)) return false;
    this.inflight.set(entry.id, ctx.clock());
    this.scheduleRetry(OUTBOX_RESEND_AFTER_MS);
    return true;
  }

  /** Runs `retry` after `delayMs`, unless an earlier run is already scheduled. */
  scheduleRetry(delayMs: number): void {
    const { ctx } = this;
    if (ctx.isClosed()) return;
    const at = ctx.clock() + delayMs;
    if (this.retryTimer !== undefined) {
      if (this.retryAt <= at) return;
      ctx.timers.clear(this.retryTimer);
    }
    this.retryAt = at;
    // A pending retry must not keep a finished command alive (systemTimers unref).
    this.retryTimer = ctx.timers.set(() => {
      this.retryTimer = undefined;
      void ctx.retry().catch(() => undefined);
    }, delayMs);
  }

  /**
   * The relay refused the `send` of `wireId` (not stored): it stays in the outbox. After
   * `rate_limited` it is retried soon, after `server_error` with a growing pause a bounded
   * number of times; any other refusal would repeat, so it is parked until the next
   * connection.
   */
  refused(wireId: string, code: string): 'backing-off' | 'parked' {
    if (code === 'rate_limited') return this.backOff(wireId, RATE_LIMIT_BACKOFF_MS);
    if (code === 'server_error') {
      const n = (this.serverErrors.get(wireId) ?? 0) + 1;
      this.serverErrors.set(wireId, n);
      if (n <= SERVER_ERROR_MAX_RETRIES)
        return this.backOff(
          wireId,
          Math.min(SERVER_ERROR_BACKOFF_MS * 2 ** (n - 1), SERVER_ERROR_BACKOFF_MAX_MS),
        );
    }
    this.inflight.set(wireId, Number.POSITIVE_INFINITY);
    return 'parked';
  }

  /** Resends `wireId` after `delayMs` (marking it sent long enough ago that the flush takes it). */
  private backOff(wireId: string, delayMs: number): 'backing-off' {
    this.inflight.set(wireId, this.ctx.clock() - OUTBOX_RESEND_AFTER_MS + delayMs);
    this.scheduleRetry(delayMs);
    return 'backing-off';
  }

  /** A relay receipt, live; in arrival order with the others. */
  receipt(frame: ReceiptFrame): Promise<void> {
    return this.ctx.queue.run(RECEIPT_QUEUE, () => this.onReceipt(frame));
  }

  /**
   * A receipt the relay kept while we were offline: it stays there until we ack, and we
   * ack only once the status is committed, so a drop in between repeats it (the repeat
   * is harmless: a status never goes down).
   */
  storedReceipt(frame: StoredReceiptFrame): Promise<void> {
    return this.ctx.queue.run(RECEIPT_QUEUE, async () => {
      await this.onReceipt(frame);
      this.ctx.send({ type: 'ack', serverMessageId: frame.serverMessageId });
    });
  }

  /**
   * The relay's word on a wire id: it stored the block (`queued`) or a device of the
   * recipient acknowledged it (`on-device`). Neither says the recipient can read it, so
   * neither ever gives `delivered` (receipts.ts).
   */
  private async onReceipt(frame: ReceiptFrame | StoredReceiptFrame): Promise<void> {
    const { ctx } = this;
    const { store } = ctx;
    const wireId = toHex(frame.clientMessageId);
    this.inflight.delete(wireId);
    this.serverErrors.delete(wireId);
    const record = await store.getOutbox(wireId);
    const entry = record?.state === 'pending' ? record : undefined;
    const id = messageOfRecord(wireId, record);
    const peer = entry?.peer ?? (id === undefined ? undefined : await this.findOutgoingPeer(id));
    const apply = async (): Promise<void> => {
      const status = relayReceiptStatus(frame.status);
      // The relay's last word on this wire id (for a group upload, which gets no
      // `delivered`, its `queued`): its record is no longer needed.
      const last = frame.status === 'delivered' || record?.recipients !== undefined;
      const writes: StoreWrite[] = outboxReceiptWrites(record, last);
      let changed = false;
      if (peer !== undefined && id !== undefined) {
        const m = await store.getMessage(peer, 'out', id);
        // Only the ciphertext the message currently rides in speaks for it; receipts come
        // out of order (on-device before queued after a reconnect) and never lower a status.
        const current = currentWireId(await readRepair(store, peer), id) === wireId;
        if (m && current && nextStatus(m.status, status) !== undefined) {
          writes.push({ op: 'message.status', peer, id, status });
          changed = true;
        }
      }
      if (writes.length === 0) return;
      await store.commit(writes);
      if (changed && peer !== undefined && id !== undefined)
        ctx.emit({ type: 'status', peer, id, status });
    };
    // In the peer's queue, so it reads and writes the status in turn with the
    // end-to-end receipt (delivered) and re-sends, never from a stale read.
    return peer === undefined ? apply() : ctx.queue.run(peer, apply);
  }

  private async findOutgoingPeer(id: string): Promise<string | undefined> {
    const { store } = this.ctx;
    for (const c of await store.listConversations()) {
      if (await store.getMessage(c.peer, 'out', id)) return c.peer;
    }
    return undefined;
  }
}
