/**
 * The client core: frames in, frames out. It owns the conversation logic (account
 * authentication, prekey publication and replenishment, sessions, a persistent outbox
 * retried until `queued`, an inbox that shows each message once, receipts, presence,
 * contacts and trust, session termination) and does no I/O of its own: storage is a
 * `ClientStore`, the network a `ClientTransport`, time a clock function.
 *
 * Ordering: all work touching one peer's session (sending, receiving, terminating) runs
 * in that peer's serial queue; a decrypted message, the advanced session and the seen
 * marks are committed in one batch before the relay is acknowledged, so a crash at any
 * point either redelivers the message (not yet committed) or drops a duplicate (seen).
 */
import { constantTimeEqual, toHex, utf8Decode, utf8Encode, zeroize } from '@parley/crypto';
import type { CryptoProvider } from '@parley/crypto';
import type {
  ClientFrame,
  DeliverFrame,
  IdentityResultFrame,
  KeysBundleFrame,
  ReceiptFrame,
  StoredReceiptFrame,
  ServerFrame,
} from '@parley/wire';
import { SUPPORTED_PROTOCOL_VERSIONS, authSignedData } from '@parley/wire';
import type { Account } from './account.js';
import type { RevocationHooks } from './revocation-hooks.js';
import { META_NEXT_PREKEY_ID, META_PREKEYS_PUBLISHED, META_SIGNED_PREKEYS } from './account.js';
import { Delivery } from './delivery.js';
import type { DeliveryEvent } from './delivery.js';
import type { E2ee, PrekeyBatch, SafetyNumber } from './e2ee.js';
import { decodeEnvelope, encodeEnvelope } from './envelope.js';
import type { Envelope, RepairReason } from './envelope.js';
import { ClientError } from './errors.js';
import {
  hasOutboxRecord,
  messageOfWireId,
  outboxRecordDelete,
  readOutboxRecord,
} from './outbox-records.js';
import type { OutboxFrame } from './outbox-records.js';
import {
  nextStatus,
  receiptsDue,
  receiptsDueWrite,
  relayReceiptStatus,
  statusRank,
  withDue,
} from './receipts.js';
import {
  DEFAULT_REPAIR_POLICY,
  answered,
  currentWireId,
  isAwaitingAnswer,
  readRepair,
  repairReasonOf,
  repairWrite,
} from './repair.js';
import type { RepairPolicy } from './repair.js';
import { readSendFailure, sendFailureWrite } from './send-failures.js';
import { ResumeTicket } from './resume-ticket.js';
import { checkUserName } from './names.js';
import { KeyedQueue } from './queue.js';
import type {
  ClientStore,
  Contact,
  OutboxEntry,
  StoreWrite,
  StoredMessage,
} from './store/types.js';
import { markVerified, observeIdentityKey } from './trust.js';
import { UploadAnswers } from './upload-answers.js';

/** How long a key lookup, presence query or prekey upload may wait for the relay. */
export const REQUEST_TIMEOUT_MS = 15_000;
/**
 * One-time prekeys published at registration and topped up to on `prekeys.low`: the
 * wire's per-frame maximum, so one upload frame carries a full batch.
 */
export const ONE_TIME_PREKEYS_TARGET = 100;
/** One-time ML-KEM prekeys per batch (each ~1.2 KB; the last-resort key covers exhaustion). */
export const ONE_TIME_PQ_PREKEYS_TARGET = 20;
/**
 * A sent outbox entry without a receipt after this long is sent again (same id, same
 * ciphertext; the relay deduplicates). Long enough that a busy relay answers first.
 */
export const OUTBOX_RESEND_AFTER_MS = 10_000;
/** Pause before resending after the relay said `rate_limited` (its window is 5 s). */
export const RATE_LIMIT_BACKOFF_MS = 1_000;
/** Client message ids are 128 random bits (wire CLIENT_MESSAGE_ID_BYTES). */
const CLIENT_MESSAGE_ID_BYTES = 16;
/**
 * Signed prekey lifetime before a new one is published (Signal rotates weekly): bounds
 * how long a compromised signed prekey secret is useful against new sessions.
 */
export const SIGNED_PREKEY_ROTATION_MS = 7 * 24 * 60 * 60 * 1000;
/**
 * How long a replaced signed prekey's secret is kept: initial messages made from an
 * older bundle may sit in the relay's mailbox that long (its 30-day retention).
 */
export const SIGNED_PREKEY_GRACE_MS = 30 * 24 * 60 * 60 * 1000;
/** Secret kind of signed prekeys in the store (shared with the protocol adapter). */
const SECRET_SIGNED_PREKEY = 'spk';
/** Queue key serialising prekey generation (ids come from one counter). */
const PREKEY_QUEUE = '\u0000prekeys';
/** Largest prekey id before wrapping (u32). */
const MAX_PREKEY_ID = 0xffffffff;
/**
 * Meta key prefix (+ peer name): ids, in conversation order, of messages stored before
 * they could be encrypted because there was no session and no key lookup possible. The
 * plaintext is the history entry itself; this list only says which entries still need
 * encrypting. Changed only inside the peer's queue, so no two writers race on it.
 */
const META_PENDING_PREFIX = 'pending-send:';

/** The network as the core sees it. */
export interface ClientTransport {
  /** Queues one frame for the relay; returns false if there is no connection now. */
  send(frame: ClientFrame): boolean;
}

/** Everything the UI and scripts can observe. */
export type ClientEvent =
  | { readonly type: 'ready' }
  | { readonly type: 'disconnected' }
  | { readonly type: 'mailbox-drained' }
  | { readonly type: 'message'; readonly message: StoredMessage }
  /** `status`, `session-repaired` ("secured again") and delivery `error`s. */
  | DeliveryEvent
  | { readonly type: 'presence'; readonly name: string; readonly online: boolean }
  | { readonly type: 'key-changed'; readonly contact: Contact }
  | { readonly type: 'session-ended'; readonly peer: string }
  | { readonly type: 'auth-rejected'; readonly reason: string }
  | { readonly type: 'error'; readonly error: ClientError };

export type ClientListener = (event: ClientEvent) => void;

export interface ClientOptions {
  readonly store: ClientStore;
  readonly crypto: CryptoProvider;
  readonly e2ee: E2ee;
  readonly account: Account;
  /** Milliseconds since the epoch. */
  readonly clock?: () => number;
  /**
   * mtls mode: checks a peer's certificate (DER) against our organisation's CA and
   * returns the Ed25519 key it certifies for `name`, or throws. Absent in open mode.
   */
  readonly verifyPeerCertificate?: (certificate: Uint8Array, name: string) => Promise<Uint8Array>;
  /** mtls mode: revocation of our own and our contacts' certificates. */
  readonly revocation?: RevocationHooks;
  /** Repair bounds (repair.ts); the defaults are its named constants. Tests shorten them. */
  readonly repairPolicy?: Partial<RepairPolicy>;
}

interface Pending<T> {
  resolve(value: T): void;
  reject(err: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

type Phase = 'offline' | 'authenticating' | 'ready';

/** What a correlated request resolves with. */
type Answer = KeysBundleFrame | IdentityResultFrame | readonly string[];

export class ParleyClient {
  private readonly store: ClientStore;
  private readonly crypto: CryptoProvider;
  private readonly e2ee: E2ee;
  private account: Account;
  private readonly clock: () => number;
  private readonly verifyPeerCertificate: ClientOptions['verifyPeerCertificate'];
  private readonly revocation: RevocationHooks | undefined;
  private readonly queue = new KeyedQueue();
  private readonly listeners = new Set<ClientListener>();
  private readonly pending = new Map<number, Pending<Answer>>();
  /** Prekey uploads waiting for `prekeys.stored`. */
  private readonly uploads = new UploadAnswers(REQUEST_TIMEOUT_MS);
  private transport: ClientTransport | undefined;
  private phase: Phase = 'offline';
  private nextRequestId = 1;
  /** Outbox ids sent on this connection and not yet answered, with when they were sent. */
  private readonly inflight = new Map<string, number>();
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private retryAt = 0;
  private closed = false;
  private drained = false;
  /**
   * Open mode: the single-use session token of the last `welcome`, spent on the next
   * connection's challenge instead of a signature. Memory only, never stored or logged.
   */
  private ticket: ResumeTicket | undefined;
  /** This connection answered its challenge with `resume` and awaits the verdict. */
  private resuming = false;
  /** Names the relay reports online. */
  readonly online = new Set<string>();
  /** Receipts, repairs and re-sends (delivery.ts); runs inside the peer queues. */
  private readonly delivery: Delivery;
  /** Peers with a receipt flush already queued (so one flush batches a backlog). */
  private readonly receiptFlushQueued = new Set<string>();

  constructor(options: ClientOptions) {
    this.store = options.store;
    this.crypto = options.crypto;
    this.e2ee = options.e2ee;
    this.account = options.account;
    this.clock = options.clock ?? (() => Date.now());
    this.verifyPeerCertificate = options.verifyPeerCertificate;
    this.revocation = options.revocation;
    const policy = { ...DEFAULT_REPAIR_POLICY, ...options.repairPolicy };
    this.delivery = new Delivery({
      store: this.store,
      e2ee: this.e2ee,
      policy,
      identity: () => this.account,
      now: () => this.clock(),
      newId: () => toHex(this.crypto.randomBytes(CLIENT_MESSAGE_ID_BYTES)),
      isReady: () => this.phase === 'ready',
      lookup: (peer) => this.lookup(peer),
      trustKey: (peer, deviceId, key, cert, writes) =>
        this.trustKey(peer, deviceId, key, cert, writes),
      sendEntry: (entry, frame) => {
        this.sendOutboxEntry(entry, frame === 'session.terminate');
      },
      pendingIds: (peer) => this.pendingIds(peer),
      emit: (e) => this.emit(e),
    });
  }

  get name(): string {
    return this.account.name;
  }
  get identityKey(): Uint8Array {
    return this.account.keyPair.publicKey;
  }
  get mode(): 'mtls' | 'open' {
    return this.account.info.mode;
  }
  get isReady(): boolean {
    return this.phase === 'ready';
  }
  /** True once the relay said the stored backlog has been sent in full (this connection). */
  get mailboxDrained(): boolean {
    return this.drained;
  }

  on(listener: ClientListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: ClientEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch {
        // A faulty UI listener must not break message processing.
      }
    }
  }

  /* ---------------- connection lifecycle ---------------- */

  /** The transport connected: start authenticating. */
  connectionOpened(transport: ClientTransport): void {
    if (this.closed) return;
    this.transport = transport;
    this.phase = 'authenticating';
    this.drained = false;
    this.inflight.clear();
    this.sendFrame({
      type: 'hello',
      protocolVersions: [...SUPPORTED_PROTOCOL_VERSIONS],
      timestamp: this.clock(),
    });
  }

  /** The transport lost its connection; pending requests fail, the outbox stays. */
  connectionClosed(): void {
    const wasUp = this.phase !== 'offline';
    this.phase = 'offline';
    this.resuming = false;
    this.transport = undefined;
    this.online.clear();
    this.inflight.clear();
    this.uploads.failAll();
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new ClientError('TRANSPORT', 'connection lost'));
      this.pending.delete(id);
    }
    if (wasUp) this.emit({ type: 'disconnected' });
  }

  private sendFrame(frame: ClientFrame): boolean {
    return this.transport?.send(frame) ?? false;
  }

  /** Processes one frame from the relay. Never throws: failures become `error` events. */
  async handleFrame(frame: ServerFrame): Promise<void> {
    try {
      await this.dispatch(frame);
    } catch (err) {
      this.emit({
        type: 'error',
        error:
          err instanceof ClientError
            ? err
            : new ClientError('PROTOCOL', 'frame handling failed', { cause: err }),
      });
    }
  }

  private async dispatch(frame: ServerFrame): Promise<void> {
    switch (frame.type) {
      case 'challenge':
        return this.answerChallenge(frame.nonce, frame.timestamp, frame.serverId);
      case 'welcome':
        return this.onWelcome(frame.sessionToken, frame.expiresAt);
      case 'deliver':
        return this.queue.run(frame.from.name, () => this.onDeliver(frame));
      case 'receipt':
        // Serialised so `queued` and `delivered` for one message apply in arrival order.
        return this.queue.run('\u0000receipts', () => this.onReceipt(frame));
      case 'receipt.stored':
        // Kept by the relay while we were offline: it stays there until we ack, and we
        // ack only once the status is committed, so a drop in between repeats it (the
        // repeat is harmless: a status never goes down).
        return this.queue.run('\u0000receipts', async () => {
          await this.onReceipt(frame);
          this.ack(frame.serverMessageId);
        });
      case 'mailbox.empty':
        // Wait for the backlog's jobs so "drained" means "committed", not just "arrived".
        await this.queue.idle();
        this.drained = true;
        this.emit({ type: 'mailbox-drained' });
        return;
      case 'keys.bundle':
      case 'identity.result':
        return this.settle(frame.requestId, frame);
      case 'prekeys.stored':
        this.uploads.stored(frame);
        return;
      case 'presence.list.result':
        this.online.clear();
        for (const n of frame.names) this.online.add(n);
        for (const n of frame.names) this.emit({ type: 'presence', name: n, online: true });
        return this.settle(frame.requestId, frame.names);
      case 'presence':
        if (frame.event === 'join') this.online.add(frame.name);
        else this.online.delete(frame.name);
        this.emit({ type: 'presence', name: frame.name, online: frame.event === 'join' });
        return;
      case 'crl':
        return this.revocation?.onCrl(frame.crl);
      case 'prekeys.low': {
        const mark = this.uploads.answers;
        return this.queue.run(PREKEY_QUEUE, () => {
          const fresher = this.uploads.newerThan(mark) ?? frame;
          return this.replenishPrekeys(fresher.remainingOneTime, fresher.remainingOneTimePq);
        });
      }
      case 'error':
        return this.onErrorFrame(frame.code, frame.requestId, frame.clientMessageId);
      case 'ping':
        this.sendFrame({ type: 'pong', timestamp: frame.timestamp });
        return;
      case 'pong':
        return;
    }
  }

  private answerChallenge(nonce: Uint8Array, timestamp: number, serverId: string): void {
    const a = this.account;
    const now = this.clock();
    // A token is spent at most once, whatever happens next.
    const ticket = this.ticket;
    this.ticket = undefined;
    if (
      ticket !== undefined &&
      this.phase === 'authenticating' &&
      a.info.mode === 'open' &&
      a.info.registered &&
      ticket.usableAt(timestamp)
    ) {
      // A reconnect within the signed session: no signature needed. If the relay
      // refuses (restarted, token expired or evicted) it closes the connection and the
      // next connection signs, as there is no ticket any more.
      this.resuming = true;
      this.sendFrame({
        type: 'resume',
        name: a.name,
        deviceId: a.deviceId,
        sessionToken: ticket.token,
        timestamp: now,
      });
      ticket.dispose();
      return;
    }
    ticket?.dispose();
    const base = { name: a.name, deviceId: a.deviceId, timestamp: now };
    const register = !a.info.registered;
    const signed = authSignedData({
      purpose: register ? 'register' : 'login',
      challenge: { nonce, timestamp, serverId },
      name: a.name,
      deviceId: a.deviceId,
      timestamp: now,
      ...(register ? { identityKey: a.keyPair.publicKey } : {}),
    });
    const signature = this.crypto.ed25519.sign(a.keyPair.secretKey, signed);
    if (register)
      this.sendFrame({ type: 'register', ...base, identityKey: a.keyPair.publicKey, signature });
    else this.sendFrame({ type: 'login', ...base, signature });
  }

  private async onWelcome(sessionToken: Uint8Array, expiresAt: number): Promise<void> {
    this.resuming = false;
    this.ticket?.dispose();
    // mtls welcomes carry no token: the certificate authenticates every handshake.
    this.ticket =
      this.account.info.mode === 'open' && sessionToken.length > 0
        ? new ResumeTicket(sessionToken, expiresAt)
        : undefined;
    zeroize(sessionToken);
    if (this.account.info.mode === 'open' && !this.account.info.registered) {
      const { account, write } = this.account.withInfo({ registered: true });
      await this.store.commit([write]);
      this.account = account;
    }
    this.phase = 'ready';
    // Prekeys before anything else, in the prekey queue: a `prekeys.low` racing the first
    // upload must not allocate the same ids twice.
    await this.queue.run(PREKEY_QUEUE, async () => {
      if (!(await this.store.getMeta(META_PREKEYS_PUBLISHED))) await this.publishPrekeys();
      else await this.rotateSignedPrekey();
    });
    if (this.phase !== 'ready') return;
    this.revocation?.connected((f) => this.sendFrame(f));
    // No `mailbox.fetch`: the relay pushes the backlog after `welcome` by itself.
    this.emit({ type: 'ready' });
    void this.requestPresence().catch(() => undefined);
    // Older outbox entries go out first; messages still waiting for keys follow them.
    await this.flushOutbox();
    await this.startPendingSends();
    // Receipts left due by a crash or a disconnect.
    for (const c of await this.store.listConversations()) {
      if ((await receiptsDue(this.store, c.peer)).length > 0) this.scheduleReceiptFlush(c.peer);
    }
  }

  /** Queues one receipt flush for `peer` after the jobs already queued (batching them). */
  private scheduleReceiptFlush(peer: string): void {
    if (this.receiptFlushQueued.has(peer) || this.closed) return;
    this.receiptFlushQueued.add(peer);
    void this.queue
      .run(peer, async () => {
        this.receiptFlushQueued.delete(peer);
        await this.delivery.flushReceipts(peer);
      })
      .catch((err: unknown) => this.reportError(err, `receipts to ${peer} failed`));
  }

  private reportError(err: unknown, what: string): void {
    this.emit({
      type: 'error',
      error: err instanceof ClientError ? err : new ClientError('PROTOCOL', what, { cause: err }),
    });
  }

  private onErrorFrame(
    code: string,
    requestId: number | undefined,
    clientMessageId: Uint8Array | undefined,
  ): void {
    if (this.phase === 'authenticating' && code === 'auth_failed') {
      if (this.resuming) {
        // Only the token was refused; the relay closes this connection and the next
        // one signs the challenge. Not a verdict on our identity key.
        this.resuming = false;
        return;
      }
      this.emit({ type: 'auth-rejected', reason: code });
    }
    // The upload that waits for this answer reports it.
    if (requestId === undefined && clientMessageId === undefined && this.uploads.refused(code))
      return;
    if (requestId !== undefined && this.pending.has(requestId)) {
      const p = this.pending.get(requestId) as Pending<unknown>;
      this.pending.delete(requestId);
      clearTimeout(p.timer);
      p.reject(new ClientError('RELAY_ERROR', `relay refused the request (${code})`));
      return;
    }
    if (clientMessageId) {
      // Not stored by the relay: the entry stays in the outbox for a later attempt.
      const id = toHex(clientMessageId);
      if (code === 'rate_limited') {
        this.inflight.set(id, this.clock() - OUTBOX_RESEND_AFTER_MS + RATE_LIMIT_BACKOFF_MS);
        this.scheduleRetry(RATE_LIMIT_BACKOFF_MS);
        return;
      }
      // Any other refusal would repeat: park the entry until the next connection.
      this.inflight.set(id, Number.POSITIVE_INFINITY);
    }
    const about = clientMessageId ? ` for message ${toHex(clientMessageId)}` : '';
    this.emit({
      type: 'error',
      error: new ClientError('RELAY_ERROR', `relay error ${code}${about}`),
    });
  }

  /* ---------------- requests ---------------- */

  private request<T extends Answer>(frame: (id: number) => ClientFrame): Promise<T> {
    if (this.phase !== 'ready')
      return Promise.reject(new ClientError('TRANSPORT', 'not connected to the relay'));
    const id = this.nextRequestId++;
    if (this.nextRequestId > 0xffffffff) this.nextRequestId = 1;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ClientError('TIMEOUT', 'relay did not answer in time'));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      if (!this.sendFrame(frame(id))) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new ClientError('TRANSPORT', 'not connected to the relay'));
      }
    });
  }

  private settle(requestId: number, value: Answer): void {
    const p = this.pending.get(requestId);
    if (!p) return;
    this.pending.delete(requestId);
    clearTimeout(p.timer);
    p.resolve(value);
  }

  /** Asks the relay who is online; also refreshes `online`. */
  requestPresence(): Promise<readonly string[]> {
    return this.request<readonly string[]>((requestId) => ({ type: 'presence.list', requestId }));
  }

  /* ---------------- prekeys ---------------- */

  private async allocateIds(count: number, writes: StoreWrite[]): Promise<number[]> {
    const raw = await this.store.getMeta(META_NEXT_PREKEY_ID);
    let next = raw ? new DataView(raw.buffer, raw.byteOffset, raw.byteLength).getUint32(0) : 1;
    const ids: number[] = [];
    for (let i = 0; i < count; i++) {
      ids.push(next);
      next = next >= MAX_PREKEY_ID ? 1 : next + 1;
    }
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, next);
    writes.push({ op: 'meta.put', key: META_NEXT_PREKEY_ID, value: out });
    return ids;
  }

  /** Generates and uploads the full initial prekey set (signed, last resort, one-time). */
  private async signedPrekeys(): Promise<{ id: number; createdAt: number }[]> {
    const raw = await this.store.getMeta(META_SIGNED_PREKEYS);
    if (!raw) return [];
    try {
      return JSON.parse(utf8Decode(raw)) as { id: number; createdAt: number }[];
    } catch {
      return [];
    }
  }

  private signedPrekeysWrite(list: { id: number; createdAt: number }[]): StoreWrite {
    return { op: 'meta.put', key: META_SIGNED_PREKEYS, value: utf8Encode(JSON.stringify(list)) };
  }

  /** Generates and uploads the full initial prekey set (signed, last resort, one-time). */
  private async publishPrekeys(): Promise<void> {
    const writes: StoreWrite[] = [];
    const ids = await this.allocateIds(
      2 + ONE_TIME_PREKEYS_TARGET + ONE_TIME_PQ_PREKEYS_TARGET,
      writes,
    );
    const batch = this.e2ee.generatePrekeys(this.account, {
      signedPrekeyId: ids[0] as number,
      lastResortId: ids[1] as number,
      oneTimeIds: ids.slice(2, 2 + ONE_TIME_PREKEYS_TARGET),
      oneTimePqIds: ids.slice(2 + ONE_TIME_PREKEYS_TARGET),
    });
    writes.push(this.signedPrekeysWrite([{ id: ids[0] as number, createdAt: this.clock() }]));
    // Secrets first: an upload the relay accepted must never name keys we lost.
    await this.store.commit([...writes, ...batch.writes]);
    // Published only once the relay says it stored them; otherwise the next connection
    // publishes a fresh set.
    if (this.sendFrame({ type: 'prekeys.upload', ...batch.upload }) && (await this.uploaded())) {
      await this.store.commit([
        { op: 'meta.put', key: META_PREKEYS_PUBLISHED, value: new Uint8Array([1]) },
      ]);
    }
  }

  /** Waits for the relay's answer to the upload just sent; false (reported) if none came. */
  private async uploaded(): Promise<boolean> {
    try {
      await this.uploads.expect();
      return true;
    } catch (err) {
      if (err instanceof ClientError && err.code !== 'TRANSPORT')
        this.emit({ type: 'error', error: err });
      return false;
    }
  }

  /**
   * Publishes a new signed prekey once the current one is older than
   * `SIGNED_PREKEY_ROTATION_MS`, and deletes replaced ones older than the grace period.
   */
  private async rotateSignedPrekey(): Promise<void> {
    const now = this.clock();
    const list = await this.signedPrekeys();
    const current = list[list.length - 1];
    const writes: StoreWrite[] = [];
    let next = list;
    let upload: PrekeyBatch['upload'] | undefined;
    if (!current || now - current.createdAt >= SIGNED_PREKEY_ROTATION_MS) {
      const [id] = await this.allocateIds(1, writes);
      const batch = this.e2ee.generatePrekeys(this.account, {
        signedPrekeyId: id as number,
        oneTimeIds: [],
        oneTimePqIds: [],
      });
      writes.push(...batch.writes);
      next = [...list, { id: id as number, createdAt: now }];
      upload = batch.upload;
    }
    // A replaced key is kept until its successor has been live for the grace period.
    const keep = next.filter((k, i) => {
      const successor = next[i + 1];
      return !successor || now - successor.createdAt < SIGNED_PREKEY_GRACE_MS;
    });
    for (const k of next) {
      if (!keep.includes(k))
        writes.push({ op: 'secret.delete', kind: SECRET_SIGNED_PREKEY, id: k.id });
    }
    if (writes.length === 0) return;
    writes.push(this.signedPrekeysWrite(keep));
    await this.store.commit(writes);
    if (upload && this.sendFrame({ type: 'prekeys.upload', ...upload })) await this.uploaded();
  }

  private async replenishPrekeys(remaining: number, remainingPq: number): Promise<void> {
    // Before the first upload the relay reports zero; the initial set covers that.
    if (!(await this.store.getMeta(META_PREKEYS_PUBLISHED))) return;
    const wantOt = Math.max(0, ONE_TIME_PREKEYS_TARGET - remaining);
    const wantPq = Math.max(0, ONE_TIME_PQ_PREKEYS_TARGET - remainingPq);
    if (wantOt + wantPq === 0) return;
    const writes: StoreWrite[] = [];
    const ids = await this.allocateIds(wantOt + wantPq, writes);
    const batch = this.e2ee.generatePrekeys(this.account, {
      oneTimeIds: ids.slice(0, wantOt),
      oneTimePqIds: ids.slice(wantOt),
    });
    await this.store.commit([...writes, ...batch.writes]);
    if (this.sendFrame({ type: 'prekeys.upload', ...batch.upload })) await this.uploaded();
  }

  /* ---------------- contacts and trust ---------------- */

  /** Applies trust rules to a key presented for `name`; mtls refuses keys not certified by our CA. */
  private async trustKey(
    name: string,
    deviceId: number,
    identityKey: Uint8Array,
    certificate: Uint8Array | undefined,
    writes: StoreWrite[],
  ): Promise<Contact> {
    let attested = false;
    if (this.account.info.mode === 'mtls') {
      if (!certificate || !this.verifyPeerCertificate) {
        throw new ClientError(
          'UNTRUSTED_KEY',
          `${name}: the relay returned no certificate for this key`,
        );
      }
      let certified: Uint8Array;
      try {
        certified = await this.verifyPeerCertificate(certificate, name);
      } catch (err) {
        throw new ClientError(
          'UNTRUSTED_KEY',
          `${name}: certificate does not verify against the organisation CA`,
          {
            cause: err,
          },
        );
      }
      if (!constantTimeEqual(certified, identityKey)) {
        throw new ClientError(
          'UNTRUSTED_KEY',
          `${name}: key differs from the one the certificate binds`,
        );
      }
      attested = true;
    }
    const outcome = observeIdentityKey(
      await this.store.getContact(name),
      name,
      deviceId,
      identityKey,
      attested,
      this.clock(),
    );
    if (outcome.changed) writes.push({ op: 'contact.put', contact: outcome.contact });
    if (outcome.keyChanged) this.emit({ type: 'key-changed', contact: outcome.contact });
    return outcome.contact;
  }

  private lookup(name: string): Promise<KeysBundleFrame> {
    return this.named(name, (requestId) => ({ type: 'keys.lookup', requestId, name }));
  }

  /** A peer's identity and certificate only: unlike `lookup`, it takes none of its prekeys. */
  private lookupIdentity(name: string): Promise<IdentityResultFrame> {
    return this.named(name, (requestId) => ({ type: 'identity.lookup', requestId, name }));
  }

  private async named<T extends KeysBundleFrame | IdentityResultFrame>(
    name: string,
    frame: (id: number) => ClientFrame,
  ): Promise<T> {
    try {
      return await this.request<T>(frame);
    } catch (err) {
      // The relay answers every refusal with the same generic code (M13); say what it can mean.
      if (err instanceof ClientError && err.code === 'RELAY_ERROR') {
        throw new ClientError(
          'NOT_FOUND',
          `${name}: unknown to the relay, or has not published keys yet`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  /** Fetches and checks a peer's key from the relay (used by `verify` before any message). */
  async fetchContact(name: string): Promise<Contact> {
    checkUserName(name);
    return this.queue.run(name, async () => {
      const identity = await this.lookupIdentity(name);
      const writes: StoreWrite[] = [];
      const contact = await this.trustKey(
        name,
        identity.deviceId,
        identity.identityKey,
        identity.certificate,
        writes,
      );
      await this.store.commit(writes);
      return contact;
    });
  }

  contacts(): Promise<Contact[]> {
    return this.store.listContacts();
  }

  async safetyNumber(name: string): Promise<{ contact: Contact; number: SafetyNumber }> {
    const contact = await this.store.getContact(name);
    if (!contact) throw new ClientError('NOT_FOUND', `no contact named ${name}`);
    const number = this.e2ee.safetyNumber(
      { name: this.account.name, identityKey: this.account.keyPair.publicKey },
      { name: contact.name, identityKey: contact.identityKey },
    );
    return { contact, number };
  }

  /** The user compared the safety number out of band and accepts the key. */
  async markVerified(name: string): Promise<Contact> {
    const contact = await this.store.getContact(name);
    if (!contact) throw new ClientError('NOT_FOUND', `no contact named ${name}`);
    const updated = markVerified(contact, this.clock());
    await this.store.commit([{ op: 'contact.put', contact: updated }]);
    return updated;
  }

  /* ---------------- sending ---------------- */

  /**
   * Encrypts and stores a message (status `sending`) and hands it to the relay if
   * connected. The message is durable when this resolves; `waitForStatus` follows it.
   *
   * With no session and no way to fetch the peer's keys now (offline, relay
   * unreachable, lookup timed out), the message is stored as `sending` all the same and
   * encrypted once the client is connected (now or after a reconnect or restart), in
   * order with later messages to the same peer. A definite refusal of the keys at that
   * point marks it `failed` (see `sendFailure`). A refusal while connected is thrown
   * here and nothing is stored.
   */
  async send(peer: string, text: string): Promise<StoredMessage> {
    checkUserName(peer, 'recipient');
    if (this.closed) throw new ClientError('CLOSED', 'client is closed');
    await this.revocation?.assertSendable(peer);
    return this.queue.run(peer, async () => {
      const waiting = await this.pendingIds(peer);
      // A message already waiting for keys must not be overtaken.
      if (
        waiting.length === 0 &&
        (this.phase === 'ready' || (await this.store.getSession(peer, 1)) !== undefined)
      ) {
        try {
          return await this.encryptAndStore(peer, 'msg', text);
        } catch (err) {
          if (!isTransient(err)) throw err;
        }
      }
      return this.storePending(peer, text, waiting);
    });
  }

  /** Why a `failed` message could not be sent, if it failed. */
  async sendFailure(
    peer: string,
    id: string,
  ): Promise<{ code: string; reason: string } | undefined> {
    return readSendFailure(this.store, peer, id);
  }

  private async pendingIds(peer: string): Promise<string[]> {
    const raw = await this.store.getMeta(META_PENDING_PREFIX + peer);
    return raw === undefined ? [] : (JSON.parse(utf8Decode(raw)) as string[]);
  }

  private pendingWrite(peer: string, ids: readonly string[]): StoreWrite {
    const key = META_PENDING_PREFIX + peer;
    return ids.length === 0
      ? { op: 'meta.delete', key }
      : { op: 'meta.put', key, value: utf8Encode(JSON.stringify(ids)) };
  }

  /** Commits a message that cannot be encrypted yet: history entry + pending mark, together. */
  private async storePending(
    peer: string,
    text: string,
    waiting: readonly string[],
  ): Promise<StoredMessage> {
    const now = this.clock();
    const id = toHex(this.crypto.randomBytes(CLIENT_MESSAGE_ID_BYTES));
    // Same size rule as an encrypted message, checked now rather than at connect time.
    zeroize(encodeEnvelope({ kind: 'msg', id, sentAt: now, body: text }));
    const message: StoredMessage = {
      id,
      peer,
      direction: 'out',
      text,
      sentAt: now,
      storedAt: now,
      status: 'sending',
      shown: true,
    };
    await this.store.commit([
      { op: 'message.put', message },
      this.pendingWrite(peer, [...waiting, id]),
    ]);
    const stored = (await this.store.getMessage(peer, 'out', id)) ?? message;
    this.emit({ type: 'message', message: stored });
    // Connected (a lookup just timed out, or earlier ones still wait): try again after them.
    if (this.phase === 'ready') this.scheduleRetry(OUTBOX_RESEND_AFTER_MS);
    return stored;
  }

  /** Queues the encryption of every message waiting for keys, one job per peer. */
  private async startPendingSends(): Promise<void> {
    if (this.phase !== 'ready') return;
    for (const c of await this.store.listConversations()) {
      if ((await this.store.getMeta(META_PENDING_PREFIX + c.peer)) === undefined) continue;
      void this.queue
        .run(c.peer, () => this.sendPending(c.peer))
        .catch((err: unknown) =>
          this.emit({
            type: 'error',
            error:
              err instanceof ClientError
                ? err
                : new ClientError('PROTOCOL', `sending to ${c.peer} failed`, { cause: err }),
          }),
        );
    }
  }

  /**
   * In the peer's queue: fetch keys, start the session and encrypt each waiting message
   * in order. The commit of session + outbox entry also removes the message from the
   * pending list, so a crash leaves it either waiting or in the outbox, never both.
   */
  private async sendPending(peer: string): Promise<void> {
    for (;;) {
      if (this.phase !== 'ready' || this.closed) return;
      const ids = await this.pendingIds(peer);
      const [id, ...rest] = ids;
      if (id === undefined) return;
      const dequeue = this.pendingWrite(peer, rest);
      const message = await this.store.getMessage(peer, 'out', id);
      if (message === undefined || message.status !== 'sending') {
        await this.store.commit([dequeue]);
        continue;
      }
      try {
        await this.encryptAndStore(peer, 'msg', message.text, { message, writes: [dequeue] });
      } catch (err) {
        // Lost connection or timeout: it stays first in line for the next attempt.
        if (isTransient(err)) {
          if (this.phase === 'ready') this.scheduleRetry(OUTBOX_RESEND_AFTER_MS);
          return;
        }
        if (!(err instanceof ClientError) || !PERMANENT_LOOKUP_FAILURES.has(err.code)) throw err;
        await this.store.commit([
          dequeue,
          { op: 'message.status', peer, id, status: 'failed' },
          sendFailureWrite(peer, id, { code: err.code, reason: err.message }),
        ]);
        this.emit({ type: 'status', peer, id, status: 'failed' });
        this.emit({
          type: 'error',
          error: new ClientError(err.code, `message to ${peer} not sent: ${err.message}`),
        });
      }
    }
  }

  /**
   * Encrypts `text` for `peer` and commits session + outbox entry (+ history entry for a
   * new message) in one batch. `pending`: an already stored message to encrypt now,
   * keeping its id and time, with extra writes for the same batch.
   */
  private async encryptAndStore(
    peer: string,
    kind: 'msg' | 'end',
    text: string,
    pending?: { readonly message: StoredMessage; readonly writes: readonly StoreWrite[] },
  ): Promise<StoredMessage> {
    const now = this.clock();
    const id = pending?.message.id ?? toHex(this.crypto.randomBytes(CLIENT_MESSAGE_ID_BYTES));
    const sentAt = pending?.message.sentAt ?? now;
    const plaintext = encodeEnvelope({ kind, id, sentAt, body: text });
    const writes: StoreWrite[] = [...(pending?.writes ?? [])];
    const meta = { kind: kind === 'end' ? ('session.terminate' as const) : ('message' as const) };
    let state = await this.store.getSession(peer, 1);
    let result;
    let deviceId = 1;
    if (state) {
      result = this.e2ee.encrypt(this.account, state, plaintext, meta);
    } else {
      if (kind === 'end') throw new ClientError('NOT_FOUND', `no session with ${peer}`);
      const bundle = await this.lookup(peer);
      deviceId = bundle.deviceId;
      await this.trustKey(peer, bundle.deviceId, bundle.identityKey, bundle.certificate, writes);
      result = this.e2ee.initiate(this.account, bundle, plaintext, meta);
    }
    // Superseded session bytes and the plaintext are secrets we no longer need.
    zeroize(state, plaintext);
    state = undefined;
    const message: StoredMessage = pending?.message ?? {
      id,
      peer,
      direction: 'out',
      text,
      sentAt: now,
      storedAt: now,
      status: 'sending',
      shown: true,
    };
    if (kind === 'end') writes.push({ op: 'session.delete', peer, deviceId });
    else writes.push({ op: 'session.put', peer, deviceId, state: result.state });
    writes.push({
      op: 'outbox.put',
      entry: { id, peer, deviceId, payload: result.payload, createdAt: now, attempts: 0 },
    });
    if (kind === 'msg' && !pending) writes.push({ op: 'message.put', message });
    // The ratchet step, the ciphertext to (re)send and the history entry land together.
    await this.store.commit(writes);
    zeroize(result.state);
    // Hand this one entry to the relay now (in conversation order); the full outbox is
    // only walked on (re)connect and by the retry timer.
    this.sendOutboxEntry(
      { id, peer, deviceId, payload: result.payload, createdAt: now, attempts: 0 },
      kind === 'end',
    );
    const stored =
      kind === 'msg' ? ((await this.store.getMessage(peer, 'out', id)) ?? message) : message;
    if (kind === 'msg' && !pending) this.emit({ type: 'message', message: stored });
    return stored;
  }

  /** Sends every pending outbox entry (again). Safe to call at any time: the relay dedupes by id. */
  async flushOutbox(): Promise<void> {
    if (this.phase !== 'ready') return;
    const now = this.clock();
    for (const entry of await this.store.listOutbox()) {
      const sentAt = this.inflight.get(entry.id);
      // Each entry goes out once per connection, and again only if unanswered for long.
      if (sentAt !== undefined && now - sentAt < OUTBOX_RESEND_AFTER_MS) continue;
      const frame: OutboxFrame = (await readOutboxRecord(this.store, entry)).frame;
      if (!this.sendOutboxEntry(entry, frame === 'session.terminate')) return;
    }
    if (this.inflight.size > 0) this.scheduleRetry(OUTBOX_RESEND_AFTER_MS);
  }

  /** Sends one outbox entry and tracks it as in flight; false if not connected. */
  private sendOutboxEntry(entry: OutboxEntry, isEnd: boolean): boolean {
    if (this.phase !== 'ready') return false;
    const frame: ClientFrame = {
      type: isEnd ? 'session.terminate' : 'send',
      clientMessageId: fromHexId(entry.id),
      from: { name: this.account.name, deviceId: this.account.deviceId },
      to: { name: entry.peer, deviceId: entry.deviceId },
      payload: entry.payload,
    };
    if (!this.sendFrame(frame)) return false;
    this.inflight.set(entry.id, this.clock());
    this.scheduleRetry(OUTBOX_RESEND_AFTER_MS);
    return true;
  }

  private scheduleRetry(delayMs: number): void {
    if (this.closed) return;
    const at = this.clock() + delayMs;
    if (this.retryTimer !== undefined) {
      if (this.retryAt <= at) return;
      clearTimeout(this.retryTimer);
    }
    this.retryAt = at;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.flushOutbox()
        .then(() => this.startPendingSends())
        .catch(() => undefined);
    }, delayMs);
    // Node: a pending retry must not keep a finished command alive.
    (this.retryTimer as { unref?: () => void }).unref?.();
  }

  /**
   * The relay's word on a wire id: it stored the block (`queued`) or a device of the
   * recipient acknowledged it (`on-device`). Neither says the recipient can read it, so
   * neither ever gives `delivered` (receipts.ts).
   */
  private async onReceipt(frame: ReceiptFrame | StoredReceiptFrame): Promise<void> {
    const wireId = toHex(frame.clientMessageId);
    this.inflight.delete(wireId);
    const entry = (await this.store.listOutbox()).find((e) => e.id === wireId);
    const id = await messageOfWireId(this.store, wireId);
    const peer = entry?.peer ?? (id === undefined ? undefined : await this.findOutgoingPeer(id));
    const apply = async (): Promise<void> => {
      const status = relayReceiptStatus(frame.status);
      const writes: StoreWrite[] = [];
      if (entry) writes.push({ op: 'outbox.delete', id: wireId });
      // The relay's last word on this wire id: its record is no longer needed.
      if (frame.status === 'delivered' && (await hasOutboxRecord(this.store, wireId)))
        writes.push(outboxRecordDelete(wireId));
      let changed = false;
      if (peer !== undefined && id !== undefined) {
        const m = await this.store.getMessage(peer, 'out', id);
        // Only the ciphertext the message currently rides in speaks for it; receipts come
        // out of order (on-device before queued after a reconnect) and never lower a status.
        const current = currentWireId(await readRepair(this.store, peer), id) === wireId;
        if (m && current && nextStatus(m.status, status) !== undefined) {
          writes.push({ op: 'message.status', peer, id, status });
          changed = true;
        }
      }
      if (writes.length === 0) return;
      await this.store.commit(writes);
      if (changed && peer !== undefined && id !== undefined)
        this.emit({ type: 'status', peer, id, status });
    };
    // In the peer's queue, so it reads and writes the status in turn with the
    // end-to-end receipt (delivered) and re-sends, never from a stale read.
    return peer === undefined ? apply() : this.queue.run(peer, apply);
  }

  private async findOutgoingPeer(id: string): Promise<string | undefined> {
    for (const c of await this.store.listConversations()) {
      if (await this.store.getMessage(c.peer, 'out', id)) return c.peer;
    }
    return undefined;
  }

  /** Resolves when an outgoing message reaches `status` (or a later one). */
  waitForStatus(
    peer: string,
    id: string,
    status: 'queued' | 'on-device' | 'delivered',
    timeoutMs: number,
  ): Promise<void> {
    const rank = statusRank;
    return new Promise((resolve, reject) => {
      let off: () => void = () => undefined;
      const timer = setTimeout(() => {
        off();
        reject(new ClientError('TIMEOUT', `message ${id} did not become ${status} in time`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        off();
        resolve();
      };
      const failed = (): void => {
        clearTimeout(timer);
        off();
        void this.sendFailure(peer, id).then((f) =>
          reject(
            new ClientError(
              f?.code === 'UNTRUSTED_KEY' || f?.code === 'UNDELIVERABLE' ? f.code : 'NOT_FOUND',
              `message ${id} not sent: ${f?.reason ?? 'failed'}`,
            ),
          ),
        );
      };
      off = this.on((e) => {
        if (e.type !== 'status' || e.peer !== peer || e.id !== id) return;
        if (e.status === 'failed') failed();
        else if (rank(e.status) >= rank(status)) done();
      });
      void this.store.getMessage(peer, 'out', id).then((m) => {
        if (m?.status === 'failed') failed();
        else if (m && rank(m.status) >= rank(status)) done();
      });
    });
  }

  /* ---------------- receiving ---------------- */

  private ack(serverMessageId: number): void {
    this.sendFrame({ type: 'ack', serverMessageId });
  }

  /**
   * One relayed payload from a peer. Dedupe rests on what the sender authenticated
   * (the ratchet's replay check, the message id inside the envelope, the hash of every
   * envelope read), never on the relay's `serverMessageId`, which serves only to ack.
   */
  private async onDeliver(frame: DeliverFrame): Promise<void> {
    const from = frame.from.name;
    // Identifies these exact bytes: a relay's replay, told apart from a new envelope
    // under a message key we already used (the peer's state is older than ours).
    const envelopeKey = `env:${toHex(this.crypto.sha256(frame.payload))}`;
    const session = await this.store.getSession(from, frame.from.deviceId);
    let result;
    try {
      result = await this.e2ee.decrypt(
        this.account,
        frame.from,
        session,
        frame.payload,
        { kind: frame.kind === 'session.terminate' ? 'session.terminate' : 'message' },
        this.store,
        this.clock(),
      );
    } catch (err) {
      // Nothing was changed. Acknowledge so the relay stops redelivering it; then repair
      // the session unless it is a plain replay (M26).
      this.ack(frame.serverMessageId);
      return this.onUndecryptable(frame, err, envelopeKey);
    }
    const writes: StoreWrite[] = [...result.writes];
    try {
      const known = await this.store.getContact(from);
      const alreadyTrusted =
        known !== undefined &&
        (known.trust === 'ca-attested' || known.trust === 'verified') &&
        constantTimeEqual(known.identityKey, result.peerIdentityKey);
      if ((result.newSession || !session) && !alreadyTrusted) {
        // mtls: fetch the certificate the relay holds for the sender (an identity
        // lookup, which spends none of the sender's prekeys).
        const bundleCert =
          this.account.info.mode === 'mtls' ? await this.certificateOf(from) : undefined;
        await this.trustKey(from, frame.from.deviceId, result.peerIdentityKey, bundleCert, writes);
      }
    } catch (err) {
      // Only a definite verdict drops the message; a lost connection during the
      // certificate lookup leaves it on the relay for redelivery.
      if (!(err instanceof ClientError) || err.code !== 'UNTRUSTED_KEY') throw err;
      this.ack(frame.serverMessageId);
      this.emit({ type: 'error', error: err });
      return;
    }
    zeroize(session);
    let envelope: Envelope;
    try {
      envelope = decodeEnvelope(result.plaintext);
    } finally {
      zeroize(result.plaintext);
    }
    const repair = await readRepair(this.store, from);
    // Both sides repaired at once: the session started by the name that sorts first is
    // kept by both, so the two resets do not replace each other's session forever.
    const keepOurs =
      envelope.kind === 'reset' && isAwaitingAnswer(repair) && this.account.name < from;
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
        if (!(await this.store.hasSeen(messageKey))) {
          shown = {
            id: envelope.id,
            peer: from,
            direction: 'in',
            text: envelope.body,
            sentAt: envelope.sentAt,
            storedAt: this.clock(),
            status: 'received',
            shown: false,
          };
          writes.push({ op: 'seen.add', key: messageKey });
          writes.push({ op: 'message.put', message: shown });
        }
        // Also for a copy we already hold (a re-send after a repair): the sender waits.
        writes.push(
          receiptsDueWrite(from, withDue(await receiptsDue(this.store, from), envelope.id)),
        );
        receipt = true;
        break;
      case 'rcpt':
        events = await this.delivery.receiptWrites(from, envelope.ids, writes);
        break;
      case 'reset':
        break;
    }
    // One transaction: the message, the session it advanced and the seen marks.
    await this.store.commit(writes);
    zeroize(result.state);
    this.ack(frame.serverMessageId);
    for (const e of events) this.emit(e);
    if (envelope.kind === 'end') this.emit({ type: 'session-ended', peer: from });
    if (shown)
      this.emit({
        type: 'message',
        message: (await this.store.getMessage(from, 'in', envelope.id)) ?? shown,
      });
    if (receipt) this.scheduleReceiptFlush(from);
    if (envelope.kind === 'reset' && !keepOurs) await this.delivery.acceptReset(from);
    else if (secured) this.emit({ type: 'session-repaired', peer: from });
  }

  /** A payload from a peer that did not decrypt (already acknowledged). */
  private async onUndecryptable(
    frame: DeliverFrame,
    err: unknown,
    envelopeKey: string,
  ): Promise<void> {
    const from = frame.from.name;
    let why: RepairReason | undefined = repairReasonOf(err);
    if (err instanceof ClientError && err.code === 'DUPLICATE') {
      if (await this.store.hasSeen(envelopeKey)) return;
      why = 'stale-sender';
    }
    // A termination we cannot read ends nothing worth repairing.
    let outcome: string | undefined;
    if (why !== undefined && frame.kind !== 'session.terminate') {
      try {
        outcome = await this.delivery.startRepair(from, why);
      } catch (repairErr) {
        this.reportError(repairErr, `repairing the session with ${from} failed`);
        return;
      }
      if (outcome === 'started' || outcome === 'pending') return;
    }
    const note = outcome === 'limit' ? ' (repair limit reached)' : '';
    this.emit({
      type: 'error',
      error: new ClientError('PROTOCOL', `could not decrypt a message from ${from}${note}`, {
        cause: err,
      }),
    });
  }

  /** mtls: the certificate the relay holds for `name`, to check a key that arrived in a handshake. */
  private async certificateOf(name: string): Promise<Uint8Array | undefined> {
    return (await this.lookupIdentity(name)).certificate;
  }

  /* ---------------- history ---------------- */

  messages(
    peer?: string,
    options?: Parameters<ClientStore['listMessages']>[1],
  ): Promise<StoredMessage[]> {
    return this.store.listMessages(peer, options);
  }

  conversations(): ReturnType<ClientStore['listConversations']> {
    return this.store.listConversations();
  }

  /** Marks a conversation's incoming messages up to `uptoSeq` as shown (read). */
  async markShown(peer: string, uptoSeq: number): Promise<void> {
    await this.store.commit([{ op: 'message.shown', peer, uptoSeq }]);
  }

  /* ---------------- termination ---------------- */

  /**
   * Ends the session with `peer` (M31): tells the peer (encrypted under the session, so
   * nobody else can end it) and deletes our session state in the same commit.
   */
  async terminate(peer: string): Promise<void> {
    checkUserName(peer, 'peer');
    await this.queue.run(peer, () => this.encryptAndStore(peer, 'end', ''));
    this.emit({ type: 'session-ended', peer });
  }

  /** Waits for in-flight work, then stops; the store is the caller's to close. */
  async close(): Promise<void> {
    this.closed = true;
    await this.queue.idle();
    this.connectionClosed();
    this.ticket?.dispose();
    this.ticket = undefined;
    this.listeners.clear();
    this.e2ee.dispose?.(this.account);
  }
}

/** Lookup outcomes that will not change by trying again: the message is marked failed. */
const PERMANENT_LOOKUP_FAILURES: ReadonlySet<string> = new Set(['NOT_FOUND', 'UNTRUSTED_KEY']);

/** No connection, or the relay did not answer: worth trying again later. */
function isTransient(err: unknown): boolean {
  return err instanceof ClientError && (err.code === 'TRANSPORT' || err.code === 'TIMEOUT');
}

function fromHexId(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
