/**
 * End-to-end delivery: the receipts a recipient sends after committing messages, what
 * the sender does with them, and the repair of a session the recipient cannot read
 * (receipts.ts and repair.ts hold the rules; this module does the work). Every method
 * runs inside the peer's serial queue (the caller's job), so it is the only writer of
 * that peer's session, outbox entries and records while it runs.
 *
 * Owns: encrypting receipts, resets and re-sends, and committing each together with
 * the session it advanced. Knows nothing of frames other than handing an outbox entry
 * to the host to send.
 */
import { zeroize } from '@parley/crypto';
import type { KeysBundleFrame } from '@parley/wire';
import type { E2ee, Identity } from './e2ee.js';
import { envelopeOf } from './disappearing.js';
import { encodeEnvelope } from './envelope.js';
import type { Envelope, RepairReason } from './envelope.js';
import { ClientError } from './errors.js';
import { outboxPut } from './outbox-records.js';
import type { OutboxCiphertext, OutboxFrame } from './outbox-records.js';
import { nextStatus, receiptBatches, receiptsDue, receiptsDueWrite } from './receipts.js';
import {
  decideRepair,
  readRepair,
  repairStarted,
  repairWrite,
  type RepairDecision,
  type RepairPolicy,
} from './repair.js';
import { sendFailureDelete, sendFailureWrite } from './send-failures.js';
import type { ClientStore, MessageStatus, StoreWrite } from './store/types.js';

/** Events this part reports through the client. */
export type DeliveryEvent =
  | {
      readonly type: 'status';
      readonly peer: string;
      readonly id: string;
      readonly status: MessageStatus;
    }
  /** A repair with `peer` completed: the short "secured again" note, nothing else. */
  | { readonly type: 'session-repaired'; readonly peer: string }
  | { readonly type: 'error'; readonly error: ClientError };

export interface DeliveryHost {
  readonly store: ClientStore;
  readonly e2ee: E2ee;
  readonly policy: RepairPolicy;
  identity(): Identity;
  now(): number;
  /** A fresh 16-byte id as 32 hex digits (client message ids). */
  newId(): string;
  isReady(): boolean;
  lookup(peer: string): Promise<KeysBundleFrame>;
  /** Applies the trust rules to a key for `peer` (throws `UNTRUSTED_KEY`), adding writes. */
  trustKey(
    peer: string,
    deviceId: number,
    identityKey: Uint8Array,
    certificate: Uint8Array | undefined,
    writes: StoreWrite[],
  ): Promise<unknown>;
  /** Hands a committed outbox entry to the relay now if connected. */
  sendEntry(entry: OutboxCiphertext, frame: OutboxFrame): void;
  /** Ids of messages to `peer` stored before they could be encrypted (sent in order later). */
  pendingIds(peer: string): Promise<readonly string[]>;
  emit(event: DeliveryEvent): void;
}

/** Outgoing statuses that still wait for the recipient's end-to-end receipt. */
const AWAITING_RECEIPT: ReadonlySet<MessageStatus> = new Set(['sending', 'queued', 'on-device']);
/** Sessions are per peer device; this client talks to device 1 (one device per user). */
const PEER_DEVICE = 1;

export class Delivery {
  constructor(private readonly host: DeliveryHost) {}

  /** Encrypts `envelope` under `state`; returns the successor state and the outbox entry. */
  private seal(
    peer: string,
    deviceId: number,
    state: Uint8Array,
    envelope: Envelope,
    wireId: string,
  ): { state: Uint8Array; entry: OutboxCiphertext } {
    const plaintext = encodeEnvelope(envelope);
    try {
      const r = this.host.e2ee.encrypt(this.host.identity(), state, plaintext, { kind: 'message' });
      const now = this.host.now();
      return {
        state: r.state,
        entry: { id: wireId, peer, deviceId, payload: r.payload, createdAt: now, attempts: 0 },
      };
    } finally {
      zeroize(plaintext);
    }
  }

  /**
   * Sends the receipts due to `peer` (batched, `MAX_RECEIPT_IDS` per envelope) under the
   * current session; with no session they cannot be sent and are dropped (the peer
   * re-sends unreceipted messages after the next repair, and we receipt them then).
   */
  async flushReceipts(peer: string): Promise<void> {
    const { store } = this.host;
    const due = await receiptsDue(store, peer);
    if (due.length === 0) return;
    const initial = await store.getSession(peer, PEER_DEVICE);
    if (!initial) {
      await store.commit([receiptsDueWrite(peer, [])]);
      return;
    }
    let state = initial;
    const writes: StoreWrite[] = [];
    const entries: OutboxCiphertext[] = [];
    for (const ids of receiptBatches(due)) {
      const id = this.host.newId();
      const sealed = this.seal(
        peer,
        PEER_DEVICE,
        state,
        {
          kind: 'rcpt',
          id,
          sentAt: this.host.now(),
          ids,
        },
        id,
      );
      zeroize(state);
      state = sealed.state;
      entries.push(sealed.entry);
      writes.push(outboxPut(sealed.entry, { frame: 'send', kind: 'rcpt', message: undefined }));
    }
    writes.push(
      { op: 'session.put', peer, deviceId: PEER_DEVICE, state },
      receiptsDueWrite(peer, []),
    );
    await store.commit(writes);
    zeroize(state);
    for (const e of entries) this.host.sendEntry(e, 'send');
  }

  /**
   * The writes an end-to-end receipt from `peer` implies: each named message we sent to
   * `peer` becomes `delivered` (ids of other conversations or unknown ids are ignored),
   * and whatever is still queued to carry it is dropped. Returns the status events to
   * emit after the commit.
   */
  async receiptWrites(
    peer: string,
    ids: readonly string[],
    writes: StoreWrite[],
  ): Promise<DeliveryEvent[]> {
    const { store } = this.host;
    const events: DeliveryEvent[] = [];
    const named = new Set<string>();
    for (const id of ids) {
      const m = await store.getMessage(peer, 'out', id);
      if (!m || nextStatus(m.status, 'delivered') === undefined || named.has(id)) continue;
      named.add(id);
      writes.push(
        { op: 'message.status', peer, id, status: 'delivered' },
        sendFailureDelete(peer, id),
      );
      events.push({ type: 'status', peer, id, status: 'delivered' });
    }
    if (named.size === 0) return events;
    for (const e of await store.listOutbox()) {
      if (e.peer !== peer) continue;
      if (e.message !== undefined && named.has(e.message))
        writes.push({ op: 'outbox.delete', id: e.id });
    }
    // The records kept for late relay receipts are done with too: nothing lowers
    // `delivered`, and a receipt without its record is read by its wire id.
    const repair = await readRepair(store, peer);
    for (const id of named) {
      for (const wireId of [id, ...(repair.resends[id] ?? [])]) {
        const r = await store.getOutbox(wireId);
        if (r?.state === 'sent' && r.message === id)
          writes.push({ op: 'outbox.delete', id: wireId });
      }
    }
    return events;
  }

  /**
   * We could not decrypt something from `peer`: start a repair unless one of ours is
   * still awaiting its answer or the bound is reached. A new session from a fresh bundle
   * (no one-time prekey) carries a `reset`; then everything of ours `peer` has not
   * receipted is re-sent in it.
   */
  async startRepair(
    peer: string,
    why: RepairReason,
  ): Promise<Exclude<RepairDecision, 'start'> | 'started' | 'impossible'> {
    const { store, policy } = this.host;
    const record = await readRepair(store, peer);
    const now = this.host.now();
    const decision = decideRepair(record, now, policy);
    if (decision !== 'start') return decision;
    if (!this.host.isReady()) return 'impossible';
    // Counted before the lookup: each attempt costs the peer a one-time prekey at the
    // relay, so attempts that fail (lookup refused, key untrusted) are bounded too.
    const attempt = repairStarted(record, now, policy);
    await store.commit([repairWrite(peer, attempt)]);
    let bundle: KeysBundleFrame;
    try {
      bundle = await this.host.lookup(peer);
    } catch {
      // Offline or unknown peer: the next failure tries again.
      return 'impossible';
    }
    const writes: StoreWrite[] = [];
    await this.host.trustKey(peer, bundle.deviceId, bundle.identityKey, bundle.certificate, writes);
    const id = this.host.newId();
    const plaintext = encodeEnvelope({ kind: 'reset', id, sentAt: now, why });
    let result;
    try {
      result = this.host.e2ee.initiate(
        this.host.identity(),
        bundle,
        plaintext,
        { kind: 'message' },
        { oneTimePrekey: false },
      );
    } finally {
      zeroize(plaintext);
    }
    const entry: OutboxCiphertext = {
      id,
      peer,
      deviceId: bundle.deviceId,
      payload: result.payload,
      createdAt: now,
      attempts: 0,
    };
    writes.push(
      { op: 'session.put', peer, deviceId: bundle.deviceId, state: result.state },
      outboxPut(entry, { frame: 'send', kind: 'reset', message: undefined }),
    );
    await store.commit(writes);
    zeroize(result.state);
    this.host.sendEntry(entry, 'send');
    await this.resendUnreceipted(peer, new Set([id]));
    return 'started';
  }

  /** `peer` repaired the session (its `reset` is committed): re-send what it lacks. */
  async acceptReset(peer: string): Promise<void> {
    await this.resendUnreceipted(peer, new Set());
    this.host.emit({ type: 'session-repaired', peer });
  }

  /**
   * After a session switch: every message to `peer` still awaiting its end-to-end
   * receipt is encrypted again under the current session (same id, time and text, so
   * the recipient shows it once) with a fresh wire id, in conversation order, in one
   * batch; older ciphertexts for `peer` are dropped (the session they were made in is
   * gone). A message already re-sent `maxResendsPerMessage` times is marked `failed`.
   */
  private async resendUnreceipted(peer: string, keep: ReadonlySet<string>): Promise<void> {
    const { store, policy } = this.host;
    const initial = await store.getSession(peer, PEER_DEVICE);
    if (!initial) return;
    const record = await readRepair(store, peer);
    const waiting = new Set(await this.host.pendingIds(peer));
    const writes: StoreWrite[] = [];
    for (const e of await store.listOutbox()) {
      if (e.peer === peer && !keep.has(e.id)) writes.push({ op: 'outbox.delete', id: e.id });
    }
    const resends: Record<string, readonly string[]> = {};
    const entries: OutboxCiphertext[] = [];
    const events: DeliveryEvent[] = [];
    let state = initial;
    for (const m of await store.listMessages(peer)) {
      if (m.direction !== 'out' || !AWAITING_RECEIPT.has(m.status) || waiting.has(m.id)) continue;
      const earlier = record.resends[m.id] ?? [];
      if (earlier.length >= policy.maxResendsPerMessage) {
        writes.push(
          { op: 'message.status', peer, id: m.id, status: 'failed' },
          sendFailureWrite(peer, m.id, {
            code: 'UNDELIVERABLE',
            reason: `${peer} could not decrypt it after ${earlier.length} repairs`,
          }),
        );
        events.push({ type: 'status', peer, id: m.id, status: 'failed' });
        continue;
      }
      const wireId = this.host.newId();
      const sealed = this.seal(
        peer,
        PEER_DEVICE,
        state,
        // A timer change is re-sent as one, a message with the timer it was written under.
        envelopeOf(m),
        wireId,
      );
      zeroize(state);
      state = sealed.state;
      entries.push(sealed.entry);
      resends[m.id] = [...earlier, wireId];
      // The superseded wire id's late relay receipts must not speak for this ciphertext.
      writes.push(outboxPut(sealed.entry, { frame: 'send', kind: 'msg', message: m.id }));
      if (m.status !== 'sending') {
        writes.push({ op: 'message.status', peer, id: m.id, status: 'sending' });
        events.push({ type: 'status', peer, id: m.id, status: 'sending' });
      }
    }
    // Records of messages no longer awaiting a receipt are dropped here.
    writes.push(
      { op: 'session.put', peer, deviceId: PEER_DEVICE, state },
      repairWrite(peer, { ...record, resends }),
    );
    await store.commit(writes);
    zeroize(state);
    for (const e of entries) this.host.sendEntry(e, 'send');
    for (const e of events) this.host.emit(e);
    const failed = events.filter((e) => e.type === 'status' && e.status === 'failed').length;
    if (failed > 0) {
      this.host.emit({
        type: 'error',
        error: new ClientError(
          'UNDELIVERABLE',
          `${failed} message(s) to ${peer} not delivered: ${peer} could not decrypt them after repairs`,
        ),
      });
    }
  }
}
