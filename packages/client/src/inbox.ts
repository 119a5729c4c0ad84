/**
 * The receive pipeline (docs/client.md, "Receiving"): one relayed payload from a peer,
 * in that peer's queue: decrypt against a copy of the session, check the sender's key
 * (trust rules), then commit the message, the advanced session and the seen marks in one
 * batch and only then acknowledge the relay. A payload that does not decrypt changes
 * nothing and starts a repair unless it is a plain replay (M26).
 *
 * Dedupe rests on what the sender authenticated (the ratchet's replay check, the message
 * id inside the envelope, the hash of every envelope read), never on the relay's
 * `serverMessageId`, which serves only to ack.
 *
 * Owns: the receipts waiting to be flushed per peer (one flush batches a backlog).
 * Knows nothing of the outbox beyond handing receipts and resets to `Delivery`.
 */
import { fileText } from './attachment-entry.js';
import { constantTimeEqual, toHex, zeroize } from '@parley/crypto';
import type { DeliverFrame } from '@parley/wire';
import type { Contacts } from './contacts.js';
import type { CoreContext } from './context.js';
import type { Delivery, DeliveryEvent } from './delivery.js';
import type { Disappearing } from './disappearing.js';
import { GroupPart } from './groups/group-part.js';
import { timerWrite } from './disappearing.js';
import { decodeEnvelope } from './envelope.js';
import type { Envelope, RepairReason } from './envelope.js';
import { ClientError } from './errors.js';
import { receiptsDue, receiptsDueWrite, withDue } from './receipts.js';
import { answered, isAwaitingAnswer, readRepair, repairReasonOf, repairWrite } from './repair.js';
import type { StoreWrite, StoredMessage } from './store/types.js';

export interface InboxContext extends CoreContext {
  readonly contacts: Contacts;
  readonly delivery: Delivery;
  readonly disappearing: Disappearing;
  /** Group messages and the group envelopes of pairwise sessions go here. */
  readonly groups: GroupPart;
  isClosed(): boolean;
  reportError(err: unknown, what: string): void;
}

export class Inbox {
  /** Peers with a receipt flush already queued (so one flush batches a backlog). */
  private readonly receiptFlushQueued = new Set<string>();

  constructor(private readonly ctx: InboxContext) {}

  /** A `deliver` frame: processed in the sender's queue. */
  deliver(frame: DeliverFrame): Promise<void> {
    // A group message is not under a pairwise session: it goes in the group's order.
    if (frame.kind === 'group') return this.ctx.groups.deliver(frame);
    return this.ctx.queue.run(frame.from.name, () => this.onDeliver(frame));
  }

  /** After `welcome`: receipts left due by a crash or a disconnect. */
  async flushDueReceipts(): Promise<void> {
    const { store } = this.ctx;
    for (const c of await store.listConversations()) {
      if ((await receiptsDue(store, c.peer)).length > 0) this.scheduleReceiptFlush(c.peer);
    }
  }

  private ack(serverMessageId: number): void {
    this.ctx.send({ type: 'ack', serverMessageId });
  }

  /** Queues one receipt flush for `peer` after the jobs already queued (batching them). */
  private scheduleReceiptFlush(peer: string): void {
    const { ctx } = this;
    if (this.receiptFlushQueued.has(peer) || ctx.isClosed()) return;
    this.receiptFlushQueued.add(peer);
    void ctx.queue
      .run(peer, async () => {
        this.receiptFlushQueued.delete(peer);
        await ctx.delivery.flushReceipts(peer);
      })
      .catch((err: unknown) => ctx.reportError(err, `receipts to ${peer} failed`));
  }

  private async onDeliver(frame: DeliverFrame): Promise<void> {
    const { ctx } = this;
    const { store } = ctx;
    const account = ctx.account();
    const from = frame.from.name;
    // Identifies these exact bytes: a relay's replay, told apart from a new envelope
    // under a message key we already used (the peer's state is older than ours).
    const envelopeKey = `env:${toHex(ctx.crypto.sha256(frame.payload))}`;
    const session = await store.getSession(from, frame.from.deviceId);
    let result;
    try {
      result = await ctx.e2ee.decrypt(
        account,
        frame.from,
        session,
        frame.payload,
        { kind: frame.kind === 'session.terminate' ? 'session.terminate' : 'message' },
        store,
        ctx.clock(),
      );
    } catch (err) {
      // Nothing was changed. Acknowledge so the relay stops redelivering it; then repair
      // the session unless it is a plain replay (M26).
      this.ack(frame.serverMessageId);
      return this.onUndecryptable(frame, err, envelopeKey);
    }
    const writes: StoreWrite[] = [...result.writes];
    try {
      const known = await store.getContact(from);
      const alreadyTrusted =
        known !== undefined &&
        (known.trust === 'ca-attested' || known.trust === 'verified') &&
        constantTimeEqual(known.identityKey, result.peerIdentityKey);
      if ((result.newSession || !session) && !alreadyTrusted) {
        // mtls: fetch the certificate the relay holds for the sender (an identity
        // lookup, which spends none of the sender's prekeys).
        const bundleCert =
          account.info.mode === 'mtls' ? await ctx.contacts.certificateOf(from) : undefined;
        await ctx.contacts.trustKey(
          from,
          frame.from.deviceId,
          result.peerIdentityKey,
          bundleCert,
          writes,
        );
      }
    } catch (err) {
      // Only a definite verdict drops the message; a lost connection during the
      // certificate lookup leaves it on the relay for redelivery.
      if (!(err instanceof ClientError) || err.code !== 'UNTRUSTED_KEY') throw err;
      this.ack(frame.serverMessageId);
      ctx.emit({ type: 'error', error: err });
      return;
    }
    zeroize(session);
    let envelope: Envelope;
    try {
      envelope = decodeEnvelope(result.plaintext);
    } finally {
      zeroize(result.plaintext);
    }
    const repair = await readRepair(store, from);
    // Both sides repaired at once: the session started by the name that sorts first is
    // kept by both, so the two resets do not replace each other's session forever.
    const keepOurs = envelope.kind === 'reset' && isAwaitingAnswer(repair) && account.name < from;
    if (!keepOurs) {
      writes.push({
        op: 'session.put',
        peer: from,
        deviceId: frame.from.deviceId,
        state: result.state,
      });
    }
    writes.push({ op: 'seen.add', key: envelopeKey });
    // Anything that decrypts answers a repair of ours: the peer reads the new session.
    const secured = isAwaitingAnswer(repair) && !keepOurs;
    if (secured) writes.push(repairWrite(from, answered(repair)));
    let shown: StoredMessage | undefined;
    let events: DeliveryEvent[] = [];
    let receipt = false;
    const messageKey = `msg:${from}:${envelope.id}`;
    switch (envelope.kind) {
      case 'end':
        // The peer discarded the session: nothing can carry receipts due in it.
        writes.push(
          { op: 'session.delete', peer: from, deviceId: frame.from.deviceId },
          receiptsDueWrite(from, []),
        );
        break;
      case 'msg':
      case 'timer':
      case 'file':
        if (!(await store.hasSeen(messageKey))) {
          const now = ctx.clock();
          const ttl = envelope.kind === 'timer' ? undefined : envelope.ttlMs;
          shown = {
            id: envelope.id,
            peer: from,
            direction: 'in',
            text:
              envelope.kind === 'file'
                ? fileText(envelope.file)
                : envelope.kind === 'msg'
                  ? envelope.body
                  : '',
            sentAt: envelope.sentAt,
            storedAt: now,
            status: 'received',
            shown: false,
            // Counted from receipt on this side (disappearing.ts).
            ...(ttl ? { expiresAt: now + ttl } : {}),
            ...(envelope.kind === 'timer' ? { timerMs: envelope.ttlMs } : {}),
          };
          writes.push({ op: 'seen.add', key: messageKey });
          writes.push({ op: 'message.put', message: shown });
          // Applied in the order the peer's messages arrive; each message carries its own.
          if (envelope.kind === 'timer') writes.push(timerWrite(from, envelope.ttlMs));
        }
        // Also for a copy we already hold (a re-send after a repair): the sender waits.
        writes.push(receiptsDueWrite(from, withDue(await receiptsDue(store, from), envelope.id)));
        receipt = true;
        break;
      case 'rcpt':
        events = await ctx.delivery.receiptWrites(from, envelope.ids, writes);
        break;
      case 'reset':
        break;
    }
    // One transaction: the message, the session it advanced and the seen marks (for a
    // group envelope, with what it changes of the group, in the group's queue).
    if (GroupPart.isGroupEnvelope(envelope)) await ctx.groups.onControl(from, envelope, writes);
    else await store.commit(writes);
    zeroize(result.state);
    this.ack(frame.serverMessageId);
    for (const e of events) ctx.emit(e);
    if (envelope.kind === 'end') ctx.emit({ type: 'session-ended', peer: from });
    if (shown) ctx.disappearing.arm(shown.expiresAt);
    if (shown)
      ctx.emit({
        type: 'message',
        message: (await store.getMessage(from, 'in', envelope.id)) ?? shown,
      });
    if (receipt) this.scheduleReceiptFlush(from);
    if (envelope.kind === 'reset' && !keepOurs) await ctx.delivery.acceptReset(from);
    else if (secured) ctx.emit({ type: 'session-repaired', peer: from });
  }

  /** A payload from a peer that did not decrypt (already acknowledged). */
  private async onUndecryptable(
    frame: DeliverFrame,
    err: unknown,
    envelopeKey: string,
  ): Promise<void> {
    const { ctx } = this;
    const from = frame.from.name;
    let why: RepairReason | undefined = repairReasonOf(err);
    if (err instanceof ClientError && err.code === 'DUPLICATE') {
      if (await ctx.store.hasSeen(envelopeKey)) return;
      why = 'stale-sender';
    }
    // A termination we cannot read ends nothing worth repairing.
    let outcome: string | undefined;
    if (why !== undefined && frame.kind !== 'session.terminate') {
      try {
        outcome = await ctx.delivery.startRepair(from, why);
      } catch (repairErr) {
        ctx.reportError(repairErr, `repairing the session with ${from} failed`);
        return;
      }
      if (outcome === 'started' || outcome === 'pending') return;
    }
    const note = outcome === 'limit' ? ' (repair limit reached)' : '';
    ctx.emit({
      type: 'error',
      error: new ClientError('PROTOCOL', `could not decrypt a message from ${from}${note}`, {
        cause: err,
      }),
    });
  }
}
