/**
 * Group messages (docs/client.md, "Groups"): one sender-key message per text, uploaded
 * once to the relay for every other member (`group.send`), and the receiving side in
 * the group's queue, so a group's messages are processed in the order they arrive.
 *
 * No "unable to decrypt": a message whose sender chain we do not hold (yet) waits in
 * the group record, bounded in number and time, and we ask its sender over the
 * pairwise session to send its chain again (`greq`); when a gsync brings the chain,
 * the waiting messages are read in arrival order. Duplicates are dropped by what the
 * sender authenticated: the chain's used-key check and the message id in the signed
 * envelope, never the relay's ids.
 *
 * Owns: pending messages and due receipts of each group record (changed in its queue).
 */
import { fromHex, toHex, zeroize } from '@parley/crypto';
import { groupDecrypt, groupEncrypt, groupMessageInfo, isGroupMember } from '@parley/protocol';
import type { DeliverFrame } from '@parley/wire';
import { MAX_GROUP_SEND_RECIPIENTS } from '@parley/wire';
import { fileText } from '../attachment-entry.js';
import { decodeEnvelope, encodeEnvelope, MAX_RECEIPT_IDS } from '../envelope.js';
import { ClientError } from '../errors.js';
import { DEFAULT_DEVICE_ID } from '../names.js';
import { outboxPut } from '../outbox-records.js';
import type { OutboxCiphertext } from '../outbox-records.js';
import { nextStatus } from '../receipts.js';
import type { StoreWrite, StoredMessage } from '../store/types.js';
import { sendQuietly, type GroupsContext } from './group-context.js';
import type { GroupReceiptEnvelope } from './group-envelope.js';
import {
  groupConversationId,
  groupRecordWrite,
  incomingChainsWrite,
  membershipOf,
  orphansWrite,
  outgoingChainWrite,
  readOrphans,
  readGroupRecord,
  readIncomingChains,
  type GroupRecord,
  type PendingGroupMessage,
} from './group-records.js';
import type { Groups } from './groups.js';

/**
 * Most messages one group holds while waiting for sender keys; the oldest is dropped
 * (and reported) beyond it. A member offline for days may find a few hundred messages
 * from a sender whose chain is still on its way; more than this is a sender that
 * never answers, and the record must stay small enough to rewrite per message.
 */
export const MAX_PENDING_GROUP_MESSAGES = 500;
/**
 * Longest a message waits for its sender's key: a week, the relay's mailbox horizon and
 * the chain rotation age, after which the sender has long rotated and the key will not come.
 */
export const GROUP_PENDING_MAX_MS = 7 * 24 * 60 * 60 * 1000;
/** A key request for one sender chain is repeated at most this often while messages wait. */
export const GROUP_REQUEST_RETRY_MS = 30_000;

type Outcome =
  | { readonly kind: 'read'; readonly message: StoredMessage }
  | { readonly kind: 'wait'; readonly chain: number }
  | { readonly kind: 'drop'; readonly why?: string };

const addressOf = (name: string) => ({ userId: name, deviceId: DEFAULT_DEVICE_ID });

export class GroupMessages {
  constructor(
    private readonly ctx: GroupsContext,
    private readonly groups: Groups,
  ) {}

  private me(): string {
    return this.ctx.account().name;
  }

  /** Encrypts `text` for the group `name` and hands one upload to the relay. */
  async send(name: string, text: string): Promise<StoredMessage> {
    const { ctx } = this;
    const id = await this.groups.idOf(name);
    const conversation = groupConversationId(id);
    return ctx.queue.run(conversation, async () => {
      // Our chain is current (and on its way to every member) before it encrypts.
      await this.groups.syncNow(id);
      const r = await readGroupRecord(ctx.store, id);
      if (!r || r.status !== 'active')
        throw new ClientError('INVALID_ARGUMENT', `not a member of ${name}`);
      const s = membershipOf(ctx.crypto, r);
      const recipients = s.members.map((m) => m.address.userId).filter((n) => n !== this.me());
      if (recipients.length === 0)
        throw new ClientError('INVALID_ARGUMENT', `${name} has no other members`);
      if (recipients.length > MAX_GROUP_SEND_RECIPIENTS)
        throw new ClientError(
          'INVALID_ARGUMENT',
          `${name}: more than ${MAX_GROUP_SEND_RECIPIENTS} members`,
        );
      const writes: StoreWrite[] = [];
      const { chain } = await this.groups.currentChain(id, r, s, writes);
      const now = ctx.clock();
      const msgId = toHex(ctx.crypto.randomBytes(16));
      const plaintext = encodeEnvelope({ kind: 'msg', id: msgId, sentAt: now, body: text });
      const sealed = groupEncrypt(ctx.crypto, chain, addressOf(this.me()), plaintext);
      zeroize(plaintext);
      const entry: OutboxCiphertext = {
        id: msgId,
        peer: conversation,
        deviceId: DEFAULT_DEVICE_ID,
        payload: sealed.message,
        createdAt: now,
        attempts: 0,
        recipients,
      };
      const message: StoredMessage = {
        id: msgId,
        peer: conversation,
        direction: 'out',
        text,
        sentAt: now,
        storedAt: now,
        status: 'sending',
        shown: true,
        groupDelivery: { of: recipients.length, by: [] },
      };
      writes.push(
        outgoingChainWrite(id, sealed.chain),
        outboxPut(entry, { frame: 'group.send', kind: 'msg', message: msgId }),
        { op: 'message.put', message },
      );
      // The chain step, the upload and the history entry land together.
      await ctx.store.commit(writes);
      ctx.sendEntry(entry);
      const stored = (await ctx.store.getMessage(conversation, 'out', msgId)) ?? message;
      ctx.emit({ type: 'message', message: stored });
      return stored;
    });
  }

  /** A `deliver` of kind `group`: processed in the group's queue, acknowledged once committed. */
  deliver(frame: DeliverFrame): Promise<void> {
    let groupId: string;
    try {
      groupId = toHex(groupMessageInfo(frame.payload).groupId);
    } catch {
      this.ctx.send({ type: 'ack', serverMessageId: frame.serverMessageId });
      return Promise.resolve();
    }
    return this.ctx.queue.run(groupConversationId(groupId), () => this.onDeliver(groupId, frame));
  }

  private async onDeliver(id: string, frame: DeliverFrame): Promise<void> {
    const { ctx } = this;
    const from = frame.from.name;
    const r = await readGroupRecord(ctx.store, id);
    if (!r && from !== this.me()) {
      // The group's gsync may still be on its way through the sender's pairwise queue:
      // kept (bounded) until it makes the record, which takes these in arrival order.
      const orphans = await readOrphans(ctx.store, id);
      const payload = toHex(frame.payload);
      if (!orphans.some((o) => o.payload === payload)) {
        const kept = [...orphans, { from, payload, at: ctx.clock() }];
        await ctx.store.commit([orphansWrite(id, kept.slice(-MAX_PENDING_GROUP_MESSAGES))]);
      }
      ctx.send({ type: 'ack', serverMessageId: frame.serverMessageId });
      return;
    }
    if (!r || r.status !== 'active' || from === this.me()) {
      ctx.send({ type: 'ack', serverMessageId: frame.serverMessageId });
      return;
    }
    const held = new Map<string, Awaited<ReturnType<typeof readIncomingChains>>>();
    const writes: StoreWrite[] = [];
    const record = { ...r, dueReceipts: { ...r.dueReceipts } };
    const pending: PendingGroupMessage = { from, payload: toHex(frame.payload), at: ctx.clock() };
    const outcome = await this.tryRead(id, record, pending, held, writes);
    let next: GroupRecord = record;
    let request: number | undefined;
    if (outcome.kind === 'wait') {
      if (!r.pending.some((p) => p.from === from && p.payload === pending.payload)) {
        const kept = [...r.pending, pending];
        const dropped = kept.length > MAX_PENDING_GROUP_MESSAGES ? kept.shift() : undefined;
        if (dropped) this.report(r.name, dropped.from, 'too many messages waiting for keys');
        next = { ...next, pending: kept };
      }
      const key = `${from}:${outcome.chain}`;
      const asked = r.requested[key];
      if (asked === undefined || ctx.clock() - asked >= GROUP_REQUEST_RETRY_MS) {
        request = outcome.chain;
        next = { ...next, requested: { ...next.requested, [key]: ctx.clock() } };
      }
    }
    if (outcome.kind === 'drop' && outcome.why) this.report(r.name, from, outcome.why);
    writes.push(groupRecordWrite(id, next));
    await ctx.store.commit(writes);
    ctx.send({ type: 'ack', serverMessageId: frame.serverMessageId });
    if (request !== undefined)
      sendQuietly(ctx, from, {
        kind: 'greq',
        id: toHex(ctx.crypto.randomBytes(16)),
        sentAt: ctx.clock(),
        group: id,
        chain: request,
      });
    if (outcome.kind === 'read') this.shown(outcome.message);
    this.flushReceiptsLater(id);
  }

  private report(group: string, from: string, why: string): void {
    this.ctx.emit({
      type: 'error',
      error: new ClientError('PROTOCOL', `a message from ${from} in ${group} was dropped: ${why}`),
    });
  }

  private shown(message: StoredMessage): void {
    void this.ctx.store
      .getMessage(message.peer, 'in', message.id)
      .then((m) => this.ctx.emit({ type: 'message', message: m ?? message }));
  }

  /**
   * Tries to read one group message with what we hold (`held` caches chains advanced in
   * this batch); adds the writes of a message read (chain step, history entry, seen
   * mark, due receipt) to `writes` and `record.dueReceipts`.
   */
  private async tryRead(
    id: string,
    record: { dueReceipts: Record<string, readonly string[]>; state: string },
    p: PendingGroupMessage,
    held: Map<string, Awaited<ReturnType<typeof readIncomingChains>>>,
    writes: StoreWrite[],
  ): Promise<Outcome> {
    const { ctx } = this;
    const payload = fromHex(p.payload);
    let info;
    try {
      info = groupMessageInfo(payload);
    } catch {
      return { kind: 'drop', why: 'malformed' };
    }
    const s = membershipOf(ctx.crypto, record as GroupRecord);
    // A sender our state does not list yet (its add is on its way) waits like a missing key.
    if (!isGroupMember(s, addressOf(p.from))) return { kind: 'wait', chain: info.chainId };
    if (!held.has(p.from)) held.set(p.from, await readIncomingChains(ctx.store, id, p.from));
    const chains = held.get(p.from);
    if (!chains) return { kind: 'wait', chain: info.chainId };
    let result;
    try {
      result = groupDecrypt(ctx.crypto, chains, addressOf(p.from), payload);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'UNKNOWN_SENDER_CHAIN') return { kind: 'wait', chain: info.chainId };
      if (code === 'DUPLICATE_MESSAGE') return { kind: 'drop' };
      return { kind: 'drop', why: 'it did not authenticate' };
    }
    held.set(p.from, result.state);
    writes.push(incomingChainsWrite(id, p.from, result.state));
    let envelope;
    try {
      envelope = decodeEnvelope(result.plaintext);
    } catch {
      return { kind: 'drop', why: 'malformed' };
    } finally {
      zeroize(result.plaintext);
    }
    if (envelope.kind !== 'msg' && envelope.kind !== 'file')
      return { kind: 'drop', why: 'not a message' };
    const conversation = groupConversationId(id);
    const seen = `gmsg:${id}:${p.from}:${envelope.id}`;
    const existing = await ctx.store.getMessage(conversation, 'in', envelope.id);
    if ((await ctx.store.hasSeen(seen)) || existing) return { kind: 'drop' };
    const message: StoredMessage = {
      id: envelope.id,
      peer: conversation,
      direction: 'in',
      from: p.from,
      text: envelope.kind === 'file' ? fileText(envelope.file) : envelope.body,
      sentAt: envelope.sentAt,
      storedAt: ctx.clock(),
      status: 'received',
      shown: false,
    };
    writes.push({ op: 'seen.add', key: seen }, { op: 'message.put', message });
    record.dueReceipts[p.from] = [...(record.dueReceipts[p.from] ?? []), envelope.id];
    return { kind: 'read', message };
  }

  /** After a gsync: the group's waiting messages are tried again, in arrival order. */
  retryPending(id: string): void {
    const { ctx } = this;
    void ctx.queue
      .run(groupConversationId(id), async () => {
        const r = await readGroupRecord(ctx.store, id);
        if (!r || r.status !== 'active' || r.pending.length === 0) return;
        const record = { ...r, dueReceipts: { ...r.dueReceipts } };
        const held = new Map<string, Awaited<ReturnType<typeof readIncomingChains>>>();
        const writes: StoreWrite[] = [];
        const keep: PendingGroupMessage[] = [];
        const read: StoredMessage[] = [];
        const now = ctx.clock();
        for (const p of r.pending) {
          const o = await this.tryRead(id, record, p, held, writes);
          if (o.kind === 'read') read.push(o.message);
          else if (o.kind === 'wait' && now - p.at < GROUP_PENDING_MAX_MS) keep.push(p);
          else if (o.kind === 'wait') this.report(r.name, p.from, 'its key never arrived');
          else if (o.why) this.report(r.name, p.from, o.why);
        }
        if (read.length === 0 && keep.length === r.pending.length) return;
        writes.push(groupRecordWrite(id, { ...record, pending: keep }));
        await ctx.store.commit(writes);
        for (const m of read) this.shown(m);
        this.flushReceiptsLater(id);
      })
      .catch((err: unknown) => ctx.reportError(err, 'reading waiting group messages failed'));
  }

  /** Sends the group's due receipts, each to the member whose messages it names. */
  flushReceiptsLater(id: string): void {
    const { ctx } = this;
    void ctx.queue
      .run(groupConversationId(id), async () => {
        const r = await readGroupRecord(ctx.store, id);
        if (!r || Object.keys(r.dueReceipts).length === 0 || !ctx.isReady()) return;
        // Cleared before they are sent: a crash in between loses a receipt (the sender
        // shows one member fewer), never shows one nobody sent.
        await ctx.store.commit([groupRecordWrite(id, { ...r, dueReceipts: {} })]);
        for (const [sender, ids] of Object.entries(r.dueReceipts)) {
          for (let i = 0; i < ids.length; i += MAX_RECEIPT_IDS) {
            const e: GroupReceiptEnvelope = {
              kind: 'grcpt',
              id: toHex(ctx.crypto.randomBytes(16)),
              sentAt: ctx.clock(),
              group: id,
              ids: ids.slice(i, i + MAX_RECEIPT_IDS),
            };
            sendQuietly(ctx, sender, e);
          }
        }
      })
      .catch((err: unknown) => ctx.reportError(err, 'group receipts failed'));
  }

  /** A member's end-to-end receipt: "delivered to k of n", `delivered` only at n of n. */
  async onReceipt(from: string, e: GroupReceiptEnvelope, writes: StoreWrite[]): Promise<void> {
    const { ctx } = this;
    const conversation = groupConversationId(e.group);
    const events: { id: string; status: StoredMessage['status'] }[] = [];
    await ctx.queue.run(conversation, async () => {
      const all = [...writes];
      for (const mid of new Set(e.ids)) {
        const m = await ctx.store.getMessage(conversation, 'out', mid);
        const gd = m?.groupDelivery;
        if (!m || !gd || gd.by.includes(from)) continue;
        const by = [...gd.by, from];
        const status =
          by.length >= gd.of ? (nextStatus(m.status, 'delivered') ?? m.status) : m.status;
        all.push({
          op: 'message.put',
          message: { ...m, status, groupDelivery: { of: gd.of, by } },
        });
        events.push({ id: mid, status });
      }
      await ctx.store.commit(all);
    });
    for (const ev of events)
      ctx.emit({ type: 'status', peer: conversation, id: ev.id, status: ev.status });
  }
}
