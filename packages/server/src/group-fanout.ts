/**
 * Fan-out of group uploads (`group.send`): one upload from the sender becomes one copy
 * in the mailbox of every listed device, stored in one transaction by the store
 * (`RelayStore.submitGroup`), then handed live to the recipients' caught-up
 * connections, here and through the bus on other nodes, like single mail.
 *
 * What differs from single mail, and why:
 * - One `queued` receipt per upload, once every copy is durable (its id is the first
 *   copy's), and no relay `delivered` at all: a receipt names no recipient, so
 *   "delivered to k of n" can only come from the members' end-to-end receipts.
 * - Copies are written at once, never held for a live ack: the hold saves a write per
 *   message only when every copy of an upload is acked within it, and a hold per copy
 *   would split the upload's one transaction into many.
 * - Listed devices that are not registered, or whose mailbox is full, get no copy and
 *   the sender is not told which (M13); only an upload that no listed device can take
 *   is refused, with the same `failed` that `send` gives for an unknown or full
 *   recipient. Unknown recipients are audited as a count, without names.
 * - Rate accounting: the upload is one message and its blocks are blocks for the
 *   session's flood limits; the copies it asks for are counted against a per-connection
 *   copy budget, whose overrun refuses the upload (`rate_limited`) without closing.
 *
 * It owns the copy budgets; ordering per recipient (the in-flight list) stays with the
 * mailbox router, reached through `FanoutPort`.
 */
import type { GroupSendFrame } from '@parley/wire';
import type { AuditEvent } from './audit.js';
import type { HostDeps, RouterPeer } from './host.js';
import { SlidingWindowLimiter } from './rate-limit.js';
import type { Address, GroupCopy, MailItem } from './storage/types.js';

/** New mail whose commit is still in flight (owned by the mailbox router). */
export interface InflightMail {
  readonly id: number;
  /** Connections that already received it live. */
  readonly liveTo: Set<RouterPeer>;
  /** Settles once the sender has been told "queued" (or the store failed). */
  queuedSent: Promise<void> | undefined;
}

/** What the fan-out needs of the mailbox router. */
export interface FanoutPort {
  readonly deps: HostDeps;
  audit(event: AuditEvent): void;
  peersOf(device: Address): readonly RouterPeer[];
  /** Tells other nodes that `device`, connected there, has new mail. */
  announceMail(device: Address, serverMessageId: number): void;
  beginInflight(recipient: Address, id: number): InflightMail;
  endInflight(recipient: Address, entry: InflightMail): void;
  /** Whether `peer` may get `entry` live without overtaking earlier in-flight mail. */
  canGoLive(recipient: Address, peer: RouterPeer, entry: InflightMail): boolean;
}

export class GroupFanout {
  readonly #port: FanoutPort;
  readonly #budgets = new WeakMap<RouterPeer, SlidingWindowLimiter>();

  constructor(port: FanoutPort) {
    this.#port = port;
  }

  /**
   * Accepts one group upload from `sender` (identity binding, message rate and payload
   * size already checked by the session); resolves once the store decided it.
   */
  async submit(from: RouterPeer, sender: Address, frame: GroupSendFrame): Promise<void> {
    const { store, config, now, metrics, logger } = this.#port.deps;
    const clientMessageId = frame.clientMessageId;
    if (!this.#budget(from).take(frame.to.length)) {
      metrics.groupUploads.inc({ outcome: 'rate-limited' });
      this.#port.audit({
        type: 'rate.limited',
        remote: from.remote,
        identity: sender.name,
        code: 'connection-group-copies',
        value: frame.to.length,
      });
      from.sendFrame({ type: 'error', code: 'rate_limited', clientMessageId });
      return;
    }
    metrics.groupRecipients.observe(frame.to.length);
    const t = now();
    const end = metrics.enqueueSeconds.startTimer();
    const upload = {
      sender,
      clientMessageId,
      payload: frame.payload,
      storedAt: t,
      expiresAt: t + config.limits.mailboxTtlMs,
    };
    const { decision, committed, idDurable } = await store.submitGroup(
      { ...upload, recipients: frame.to },
      config.limits.maxMailboxPerRecipient,
    );
    const failed = (err: unknown): void => {
      metrics.groupUploads.inc({ outcome: 'failed' });
      logger.error({ err: (err as Error).message }, 'group enqueue failed');
      from.sendFrame({ type: 'error', code: 'server_error', clientMessageId });
    };
    const queued = (serverMessageId: number, outcome: 'queued' | 'duplicate'): void => {
      end();
      metrics.groupUploads.inc({ outcome });
      // Durable before "queued" (M11): every copy committed.
      from.sendFrame({
        type: 'receipt',
        clientMessageId,
        status: 'queued',
        serverMessageId,
        timestamp: t,
      });
    };
    if (!decision.ok) {
      this.#skipped(from, sender, decision.unknown, decision.full);
      metrics.groupUploads.inc({ outcome: 'no-recipient' });
      from.sendFrame({ type: 'error', code: 'failed', clientMessageId });
      return;
    }
    if (decision.duplicate) {
      committed.then(() => queued(decision.serverMessageId, 'duplicate'), failed);
      return;
    }
    this.#skipped(from, sender, decision.unknown, decision.full);
    const entries = decision.copies.map((copy) => this.#handOver(copy, upload, idDurable));
    const done = committed.then(
      () => {
        for (const [i, copy] of decision.copies.entries()) {
          const entry = entries[i] as InflightMail;
          this.#port.endInflight(copy.recipient, entry);
          for (const s of this.#port.peersOf(copy.recipient)) {
            if (!entry.liveTo.has(s)) s.notifyMail();
          }
          this.#port.announceMail(copy.recipient, copy.serverMessageId);
        }
        metrics.groupCopies.inc({ outcome: 'stored' }, decision.copies.length);
        queued((decision.copies[0] as GroupCopy).serverMessageId, 'queued');
      },
      (err: unknown) => {
        for (const [i, copy] of decision.copies.entries()) {
          this.#port.endInflight(copy.recipient, entries[i] as InflightMail);
        }
        failed(err);
      },
    );
    for (const e of entries) e.queuedSent = done;
  }

  /**
   * Registers one copy as in flight and gives it to the recipient's connections that
   * are caught up, while the commit runs (only with durably reserved ids: a crash must
   * never let an id shown be reused).
   */
  #handOver(
    copy: GroupCopy,
    mail: Omit<MailItem, 'recipient' | 'serverMessageId' | 'kind'>,
    idDurable: boolean,
  ): InflightMail {
    const entry = this.#port.beginInflight(copy.recipient, copy.serverMessageId);
    if (!idDurable) return entry;
    const item: MailItem = { ...mail, ...copy, kind: 'group' };
    let live = 0;
    for (const s of this.#port.peersOf(copy.recipient)) {
      if (this.#port.canGoLive(copy.recipient, s, entry) && s.pushLive(item)) {
        entry.liveTo.add(s);
        live++;
      }
    }
    if (live > 0) this.#port.deps.metrics.groupCopies.inc({ outcome: 'live' }, live);
    return entry;
  }

  #skipped(from: RouterPeer, sender: Address, unknown: number, full: number): void {
    const { metrics } = this.#port.deps;
    if (full > 0) metrics.groupCopies.inc({ outcome: 'skipped-full' }, full);
    if (unknown === 0) return;
    metrics.groupCopies.inc({ outcome: 'skipped-unknown' }, unknown);
    // A count only: which listed names do not exist is nobody's business in the log.
    this.#port.audit({
      type: 'group.skipped',
      remote: from.remote,
      identity: sender.name,
      code: 'unknown-recipient',
      value: unknown,
    });
  }

  #budget(peer: RouterPeer): SlidingWindowLimiter {
    let b = this.#budgets.get(peer);
    if (!b) {
      const { config, now } = this.#port.deps;
      b = new SlidingWindowLimiter(
        config.rateLimit.maxGroupCopiesPerConnection,
        config.rateLimit.windowMs,
        now,
      );
      this.#budgets.set(peer, b);
    }
    return b;
  }
}
