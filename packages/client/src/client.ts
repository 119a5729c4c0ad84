/**
 * The client core's facade: frames in, frames out. `ParleyClient` keeps the public API
 * and the ordering between the parts; each part owns its own state and is given one
 * small context (context.ts: store, send frame, emit event, clock, timers, per-key queue):
 *   auth.ts      challenge answers and the resume ticket
 *   requests.ts  correlated requests (lookups, presence)
 *   prekeys.ts   prekey publication, rotation and top-up
 *   contacts.ts  contacts, trust decisions, peer lookups
 *   sender.ts    encrypting messages, the pending list
 *   outbox.ts    handing entries to the relay, relay receipts, retries
 *   inbox.ts     the receive pipeline
 *   delivery.ts  end-to-end receipts, repairs and re-sends
 *   groups/      group membership, sender keys, group messages, shared rooms
 * The facade itself owns only the connection phase, the account, presence and the
 * listeners. It does no I/O: storage is a `ClientStore`, the network a
 * `ClientTransport` (driven by connection.ts over a runtime's socket), time a clock
 * and timers.
 *
 * Ordering: all work touching one peer's session (sending, receiving, terminating) runs
 * in that peer's serial queue; a decrypted message, the advanced session and the seen
 * marks are committed in one batch before the relay is acknowledged, so a crash at any
 * point either redelivers the message (not yet committed) or drops a duplicate (seen).
 */
import { toHex } from '@parley/crypto';
import type { CryptoProvider } from '@parley/crypto';
import type { CertRefusalReason, ClientFrame, ServerFrame } from '@parley/wire';
import { SUPPORTED_PROTOCOL_VERSIONS } from '@parley/wire';
import type { Account } from './account.js';
import { fileText } from './attachment-entry.js';
import { Attachments, type TransferProgress, type UploadReport } from './attachments.js';
import { Auth } from './auth.js';
import {
  pendingUploadDone,
  pendingUploadWrite,
  readPendingUpload,
  sentMessageOf,
} from './pending-uploads.js';
import type { ClientTransport } from './connection.js';
import { Contacts } from './contacts.js';
import type { PeerCertificateCheck } from './contacts.js';
import type { CoreContext } from './context.js';
import { Delivery } from './delivery.js';
import type { E2ee, SafetyNumber } from './e2ee.js';
import { ClientError } from './errors.js';
import type { ClientEvent, ClientListener } from './events.js';
import { Inbox } from './inbox.js';
import { GroupPart } from './groups/group-part.js';
import type { GroupInfo } from './groups/groups.js';
import { Outbox } from './outbox.js';
import { Prekeys } from './prekeys.js';
import { statusRank } from './receipts.js';
import { DEFAULT_REPAIR_POLICY } from './repair.js';
import type { RepairPolicy } from './repair.js';
import { Requests } from './requests.js';
import type { RevocationHooks } from './revocation-hooks.js';
import { readSendFailure } from './send-failures.js';
import { CLIENT_MESSAGE_ID_BYTES, Sender } from './sender.js';
import { checkUserName } from './names.js';
import { KeyedQueue } from './queue.js';
import type { ClientStore, Contact, StoredMessage, StoreWrite } from './store/types.js';
import { systemClock, systemTimers } from './timers.js';
import { Disappearing, readTimer } from './disappearing.js';
import { DISAPPEARING_TIMERS_MS } from './envelope.js';
import type { Clock, Timers } from './timers.js';

export type { ClientEvent, ClientListener } from './events.js';
export type { ClientTransport } from './connection.js';
export { REQUEST_TIMEOUT_MS } from './requests.js';
export {
  ONE_TIME_PQ_PREKEYS_TARGET,
  ONE_TIME_PREKEYS_TARGET,
  SIGNED_PREKEY_GRACE_MS,
  SIGNED_PREKEY_ROTATION_MS,
} from './prekeys.js';
export { OUTBOX_RESEND_AFTER_MS, RATE_LIMIT_BACKOFF_MS } from './outbox.js';

export interface ClientOptions {
  readonly store: ClientStore;
  readonly crypto: CryptoProvider;
  readonly e2ee: E2ee;
  readonly account: Account;
  /** Milliseconds since the epoch (default: the host clock). */
  readonly clock?: Clock;
  /** Timers for request bounds and outbox retries (default: the host's, unref'd). */
  readonly timers?: Timers;
  /**
   * mtls mode: checks a peer's certificate (DER) against our organisation's CA and
   * returns the Ed25519 key it certifies for `name`, or throws. Absent in open mode.
   */
  readonly verifyPeerCertificate?: PeerCertificateCheck;
  /** mtls mode: revocation of our own and our contacts' certificates. */
  readonly revocation?: RevocationHooks;
  /**
   * mtls mode without a TLS client certificate (a browser on the relay's browser
   * listener): our CA-signed certificate (DER), presented in `cert.login`.
   */
  readonly loginCertificate?: Uint8Array;
  /** Repair bounds (repair.ts); the defaults are its named constants. Tests shorten them. */
  readonly repairPolicy?: Partial<RepairPolicy>;
}

type Phase = 'offline' | 'authenticating' | 'ready';

/** Pause between looks at the outbox while `settle` waits. */
const SETTLE_POLL_MS = 50;

/** What a person reads when the relay refused our certificate login. */
const CERT_REFUSAL_TEXT: Readonly<Record<CertRefusalReason, string>> = {
  untrusted: 'the relay does not accept this certificate (not from its CA)',
  revoked: 'this device certificate has been revoked',
  expired: 'this device certificate has expired',
  mismatch: 'the certificate does not match this profile',
};

export class ParleyClient {
  private readonly store: ClientStore;
  private readonly e2ee: E2ee;
  private account: Account;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly queue = new KeyedQueue();
  private readonly listeners = new Set<ClientListener>();
  private transport: ClientTransport | undefined;
  private phase: Phase = 'offline';
  private closed = false;
  private drained = false;
  /** Names the relay reports online. */
  readonly online = new Set<string>();
  private readonly revocation: RevocationHooks | undefined;
  private readonly auth: Auth;
  private readonly requests: Requests;
  private readonly prekeys: Prekeys;
  private readonly contactBook: Contacts;
  private readonly outbox: Outbox;
  private readonly sender: Sender;
  private readonly inbox: Inbox;
  /** Disappearing messages: conversation timers and the expiry sweep. */
  private readonly disappearing: Disappearing;
  /** Receipts, repairs and re-sends (delivery.ts); runs inside the peer queues. */
  private readonly delivery: Delivery;
  /** Attachment uploads and downloads (attachments.ts). */
  readonly attachments: Attachments;
  private readonly crypto: CryptoProvider;
  /** Groups and shared rooms (groups/). */
  private readonly groups: GroupPart;

  constructor(options: ClientOptions) {
    this.store = options.store;
    this.crypto = options.crypto;
    this.e2ee = options.e2ee;
    this.account = options.account;
    this.clock = options.clock ?? systemClock;
    this.revocation = options.revocation;
    this.timers = options.timers ?? systemTimers;
    const ctx: CoreContext = {
      store: this.store,
      crypto: options.crypto,
      e2ee: this.e2ee,
      clock: this.clock,
      timers: this.timers,
      queue: this.queue,
      account: () => this.account,
      isReady: () => this.phase === 'ready',
      send: (frame) => this.sendFrame(frame),
      emit: (e) => this.emit(e),
    };
    const isClosed = (): boolean => this.closed;
    const reportError = (err: unknown, what: string): void => this.reportError(err, what);
    this.auth = new Auth(ctx, options.loginCertificate);
    this.requests = new Requests(ctx);
    this.prekeys = new Prekeys(ctx);
    this.attachments = new Attachments({
      crypto: options.crypto,
      timers: this.timers,
      send: (f) => this.sendFrame(f),
      nextRequestId: () => this.requests.allocateId(),
      isReady: () => this.phase === 'ready',
      onConnection: (l) =>
        this.on((e) => (e.type === 'ready' || e.type === 'disconnected') && l(e.type === 'ready')),
    });
    this.contactBook = new Contacts({
      ...ctx,
      requests: this.requests,
      verifyPeerCertificate: options.verifyPeerCertificate,
    });
    this.outbox = new Outbox({
      ...ctx,
      isClosed,
      retry: async () => {
        await this.outbox.flush();
        await this.sender.startPending();
      },
    });
    this.disappearing = new Disappearing({ ...ctx, isClosed, reportError });
    this.sender = new Sender({
      ...ctx,
      disappearing: this.disappearing,
      contacts: this.contactBook,
      outbox: this.outbox,
      isClosed,
      reportError,
    });
    this.delivery = new Delivery({
      store: this.store,
      e2ee: this.e2ee,
      policy: { ...DEFAULT_REPAIR_POLICY, ...options.repairPolicy },
      identity: () => this.account,
      now: () => this.clock(),
      newId: () => toHex(options.crypto.randomBytes(CLIENT_MESSAGE_ID_BYTES)),
      isReady: () => this.phase === 'ready',
      lookup: (peer) => this.contactBook.lookup(peer),
      trustKey: (peer, deviceId, key, cert, writes) =>
        this.contactBook.trustForSending(peer, deviceId, key, cert, writes),
      sendEntry: (entry, frame) => {
        this.outbox.send(entry, frame === 'session.terminate');
      },
      pendingIds: (peer) => this.sender.pendingIds(peer),
      emit: (e) => this.emit(e),
    });
    this.groups = new GroupPart({
      ...ctx,
      isClosed,
      reportError,
      sendControl: (peer, envelope) =>
        this.queue.run(peer, () => this.sender.sendControl(peer, envelope)),
      sendEntry: (entry) => {
        this.outbox.send(entry, false);
      },
      memberKey: async (name) => (await this.fetchContact(name)).identityKey,
    });
    this.groups.rooms.online = () => this.requestPresence();
    this.inbox = new Inbox({
      ...ctx,
      groups: this.groups,
      disappearing: this.disappearing,
      contacts: this.contactBook,
      delivery: this.delivery,
      isClosed,
      reportError,
    });
    // What expired while the client was closed goes before anything is shown.
    void this.disappearing
      .sweep()
      .catch((err: unknown) => this.reportError(err, 'expiring messages failed'));
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

  private reportError(err: unknown, what: string): void {
    this.emit({
      type: 'error',
      error: err instanceof ClientError ? err : new ClientError('PROTOCOL', what, { cause: err }),
    });
  }

  /* ---------------- connection lifecycle ---------------- */

  /** The transport connected: start authenticating. */
  connectionOpened(transport: ClientTransport): void {
    if (this.closed) return;
    this.transport = transport;
    this.phase = 'authenticating';
    this.drained = false;
    this.outbox.connectionOpened();
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
    this.auth.connectionClosed();
    this.transport = undefined;
    this.online.clear();
    this.outbox.connectionClosed();
    this.prekeys.connectionClosed();
    this.requests.failAll();
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
      this.reportError(err, 'frame handling failed');
    }
  }

  private async dispatch(frame: ServerFrame): Promise<void> {
    switch (frame.type) {
      case 'challenge':
        return this.auth.answerChallenge(
          frame.nonce,
          frame.timestamp,
          frame.serverId,
          this.phase === 'authenticating',
        );
      case 'welcome':
        this.attachments.blockBytes = frame.limits.blockBytes;
        return this.onWelcome(frame.sessionToken, frame.expiresAt);
      case 'blob.status':
      case 'blob.data':
        return this.attachments.onFrame(frame);
      case 'deliver':
        return this.inbox.deliver(frame);
      case 'receipt':
        return this.outbox.receipt(frame);
      case 'receipt.stored':
        return this.outbox.storedReceipt(frame);
      case 'mailbox.empty':
        // Wait for the backlog's jobs so "drained" means "committed", not just "arrived".
        await this.queue.idle();
        this.drained = true;
        this.emit({ type: 'mailbox-drained' });
        return;
      case 'keys.bundle':
      case 'identity.result':
        return this.requests.settle(frame.requestId, frame);
      case 'prekeys.stored':
        return this.prekeys.onStored(frame);
      case 'presence.list.result':
        this.online.clear();
        for (const n of frame.names) this.online.add(n);
        for (const n of frame.names) this.emit({ type: 'presence', name: n, online: true });
        return this.requests.settle(frame.requestId, frame.names);
      case 'presence':
        if (frame.event === 'join') this.online.add(frame.name);
        else this.online.delete(frame.name);
        this.emit({ type: 'presence', name: frame.name, online: frame.event === 'join' });
        return;
      case 'crl':
        return this.revocation?.onCrl(frame.crl);
      case 'prekeys.low':
        return this.prekeys.onLow(frame);
      case 'error':
        return this.onErrorFrame(frame.code, frame.requestId, frame.clientMessageId);
      case 'cert.refused':
        this.emit({ type: 'auth-rejected', reason: CERT_REFUSAL_TEXT[frame.reason] });
        return;
      case 'ping':
        this.sendFrame({ type: 'pong', timestamp: frame.timestamp });
        return;
      case 'pong':
        return;
    }
  }

  private async onWelcome(sessionToken: Uint8Array, expiresAt: number): Promise<void> {
    this.auth.welcomed(sessionToken, expiresAt);
    if (this.account.info.mode === 'open' && !this.account.info.registered) {
      const { account, write } = this.account.withInfo({ registered: true });
      await this.store.commit([write]);
      this.account = account;
    }
    this.phase = 'ready';
    // Prekeys before anything else.
    await this.prekeys.onWelcome();
    if (this.phase !== 'ready') return;
    this.revocation?.connected((f) => this.sendFrame(f));
    // No `mailbox.fetch`: the relay pushes the backlog after `welcome` by itself.
    this.emit({ type: 'ready' });
    void this.requestPresence().catch(() => undefined);
    // Older outbox entries go out first; messages still waiting for keys follow them.
    await this.outbox.flush();
    await this.sender.startPending();
    await this.inbox.flushDueReceipts();
    await this.groups.connected();
  }

  private onErrorFrame(
    code: string,
    requestId: number | undefined,
    clientMessageId: Uint8Array | undefined,
  ): void {
    if (this.phase === 'authenticating' && code === 'auth_failed') {
      // Only the token was refused: not a verdict on our identity key.
      if (this.auth.resumeRefused()) return;
      this.emit({ type: 'auth-rejected', reason: code });
    }
    if (this.attachments.onError(code, requestId)) return;
    // The upload that waits for this answer reports it.
    if (requestId === undefined && clientMessageId === undefined && this.prekeys.refused(code))
      return;
    if (requestId !== undefined && this.requests.refuse(requestId, code)) return;
    // Not stored by the relay: the entry stays in the outbox for a later attempt.
    if (clientMessageId && this.outbox.refused(toHex(clientMessageId), code) === 'backing-off')
      return;
    const about = clientMessageId ? ` for message ${toHex(clientMessageId)}` : '';
    this.emit({
      type: 'error',
      error: new ClientError('RELAY_ERROR', `relay error ${code}${about}`),
    });
  }

  /* ---------------- requests ---------------- */

  /** Asks the relay who is online; also refreshes `online`. */
  requestPresence(): Promise<readonly string[]> {
    return this.requests.request<readonly string[]>((requestId) => ({
      type: 'presence.list',
      requestId,
    }));
  }

  /* ---------------- contacts and trust ---------------- */

  /** Fetches and checks a peer's key from the relay (used by `verify` before any message). */
  async fetchContact(name: string): Promise<Contact> {
    checkUserName(name);
    return this.queue.run(name, () => this.contactBook.fetch(name));
  }

  contacts(): Promise<Contact[]> {
    return this.contactBook.list();
  }

  safetyNumber(name: string): Promise<{ contact: Contact; number: SafetyNumber }> {
    return this.contactBook.safetyNumber(name);
  }

  /** The user compared the safety number out of band and accepts the key. */
  async markVerified(name: string): Promise<Contact> {
    const updated = await this.contactBook.markVerified(name);
    // Messages held for the key change go out now, encrypted to the key just accepted.
    await this.sender.startPending();
    return updated;
  }

  /* ---------------- sending ---------------- */

  /**
   * Uploads `bytes` as an encrypted attachment (resuming across reconnects), then sends
   * the message that names it, like `send`. Needs a connection for the upload. The same
   * file sent to the same peer after a crash or kill resumes the unfinished upload, and
   * its message is sent once (pending-uploads.ts).
   */
  async sendFile(
    peer: string,
    file: { bytes: Uint8Array; name: string; type: string },
    progress?: TransferProgress,
  ): Promise<{ message: StoredMessage; upload: UploadReport }> {
    checkUserName(peer, 'recipient');
    const digest = this.crypto.sha256(file.bytes);
    const pending = await readPendingUpload(this.store, peer, digest);
    if (pending?.phase === 'sending') {
      const sent = await sentMessageOf(this.store, peer, pending.entry);
      if (sent) {
        await this.store.commit([pendingUploadDone(peer, digest)]);
        return { message: sent, upload: [] };
      }
    }
    const prepared = this.attachments.prepare(file.bytes, file.name, file.type, {
      sha256: digest,
      ...(pending ? { resume: pending.entry } : {}),
    });
    let upload: UploadReport;
    try {
      // Durable before the first chunk: a run after a crash resumes this very blob.
      await this.store.commit([
        pendingUploadWrite(peer, digest, { entry: prepared.entry, phase: 'uploading' }),
      ]);
      upload = await this.attachments.upload(prepared, progress);
    } finally {
      prepared.dispose();
    }
    await this.store.commit([
      pendingUploadWrite(peer, digest, { entry: prepared.entry, phase: 'sending' }),
    ]);
    const message = await this.send(peer, fileText(prepared.entry));
    await this.store.commit([pendingUploadDone(peer, digest)]);
    return { message, upload };
  }

  /**
   * Encrypts and stores a message (status `sending`) and hands it to the relay if
   * connected. The message is durable when this resolves; `waitForStatus` follows it.
   *
   * With no session and no way to fetch the peer's keys now (offline, relay
   * unreachable, lookup timed out), the message is stored as `sending` all the same and
   * encrypted once the client is connected (now or after a reconnect or restart), in
   * order with later messages to the same peer. So is a message to a contact whose key
   * changed, until the user accepts the key (`markVerified`). A definite refusal of the
   * keys at that point marks it `failed` (see `sendFailure`). A refusal while connected
   * is thrown here and nothing is stored.
   */
  async send(peer: string, text: string): Promise<StoredMessage> {
    checkUserName(peer, 'recipient');
    if (this.closed) throw new ClientError('CLOSED', 'client is closed');
    await this.revocation?.assertSendable(peer);
    return this.queue.run(peer, () => this.sender.send(peer, text));
  }

  /**
   * Sets the disappearing-message timer of the conversation with `peer` (one of
   * `DISAPPEARING_TIMERS_MS`, 0 = off) for both sides: sent to the peer like a message
   * and shown in the conversation as a timer-change event (the returned entry).
   */
  async setTimer(peer: string, timerMs: number): Promise<StoredMessage> {
    checkUserName(peer, 'recipient');
    if (!DISAPPEARING_TIMERS_MS.includes(timerMs))
      throw new ClientError('INVALID_ARGUMENT', 'timer: not a disappearing-message timer');
    if (this.closed) throw new ClientError('CLOSED', 'client is closed');
    await this.revocation?.assertSendable(peer);
    return this.queue.run(peer, () => this.sender.send(peer, '', timerMs));
  }

  /** The conversation's disappearing-message timer in ms (0 = off). */
  timer(peer: string): Promise<number> {
    return readTimer(this.store, peer);
  }

  /** Deletes every disappearing message whose time is up (also run at start and on a timer). */
  expireNow(): Promise<void> {
    return this.disappearing.sweep();
  }

  /** Why a `failed` message could not be sent, if it failed. */
  async sendFailure(
    peer: string,
    id: string,
  ): Promise<{ code: string; reason: string } | undefined> {
    return readSendFailure(this.store, peer, id);
  }

  /** Sends every pending outbox entry (again). Safe to call at any time: the relay dedupes by id. */
  flushOutbox(): Promise<void> {
    return this.outbox.flush();
  }

  /** Resolves when an outgoing message reaches `status` (or a later one). */
  waitForStatus(
    peer: string,
    id: string,
    status: 'queued' | 'on-device' | 'delivered',
    timeoutMs: number,
  ): Promise<void> {
    const rank = statusRank;
    const { timers } = this;
    return new Promise((resolve, reject) => {
      let off: () => void = () => undefined;
      const timer = timers.set(() => {
        off();
        reject(new ClientError('TIMEOUT', `message ${id} did not become ${status} in time`));
      }, timeoutMs);
      const done = (): void => {
        timers.clear(timer);
        off();
        resolve();
      };
      const failed = (): void => {
        timers.clear(timer);
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

  /**
   * Marks these incoming messages of `peer` shown, leaving the rest of the conversation
   * as it is: a file that could not be fetched stays unshown, to be tried again. Runs in
   * the peer's queue, so a message that expired meanwhile is not brought back.
   */
  async markMessagesShown(peer: string, ids: readonly string[]): Promise<void> {
    await this.queue.run(peer, async () => {
      const writes: StoreWrite[] = [];
      for (const id of ids) {
        const m = await this.store.getMessage(peer, 'in', id);
        if (m && !m.shown) writes.push({ op: 'message.put', message: { ...m, shown: true } });
      }
      if (writes.length > 0) await this.store.commit(writes);
    });
  }

  /* ---------------- groups ---------------- */

  /** Creates group `name` with us as admin and `members` (their keys fetched now: needs the relay). */
  createGroup(name: string, members: readonly string[]): Promise<GroupInfo> {
    return this.groups.membership.create(name, members);
  }
  /** An admin adds members (a signed change sent to every member). */
  addToGroup(name: string, members: readonly string[]): Promise<GroupInfo> {
    return this.groups.membership.add(name, members);
  }
  /** An admin removes members; everyone starts new sender chains the removed never get. */
  removeFromGroup(name: string, members: readonly string[]): Promise<GroupInfo> {
    return this.groups.membership.remove(name, members);
  }
  leaveGroup(name: string): Promise<GroupInfo> {
    return this.groups.membership.leave(name);
  }
  /** Joins the server-wide room `room`, creating it if no admin of one answers. */
  joinRoom(room: string): Promise<GroupInfo> {
    return this.groups.rooms.join(room);
  }
  groupList(): Promise<GroupInfo[]> {
    return this.groups.list();
  }
  /** Sends `text` to group `name`: one relay upload; status like a message, per member receipts. */
  sendToGroup(name: string, text: string): Promise<StoredMessage> {
    if (this.closed) return Promise.reject(new ClientError('CLOSED', 'client is closed'));
    return this.groups.send(name, text);
  }

  /**
   * Waits (bounded) until every job has run and the relay took everything in the
   * outbox: what a short-lived command does before it exits, so the group updates it
   * caused (gsyncs, acks, receipts) are at the relay and not only on this device.
   * Resolves false if something is still waiting when `timeoutMs` is up.
   */
  async settle(timeoutMs: number): Promise<boolean> {
    const deadline = this.clock() + timeoutMs;
    for (;;) {
      await this.queue.idle();
      if ((await this.store.listOutbox()).length === 0) return true;
      if (this.clock() >= deadline || this.phase !== 'ready') return false;
      await new Promise<void>((r) => this.timers.set(() => r(), SETTLE_POLL_MS));
    }
  }

  /* ---------------- termination ---------------- */

  /**
   * Ends the session with `peer` (M31): tells the peer (encrypted under the session, so
   * nobody else can end it) and deletes our session state in the same commit.
   */
  async terminate(peer: string): Promise<void> {
    checkUserName(peer, 'peer');
    await this.queue.run(peer, () => this.sender.terminate(peer));
    this.emit({ type: 'session-ended', peer });
  }

  /** Waits for in-flight work, then stops; the store is the caller's to close. */
  async close(): Promise<void> {
    this.closed = true;
    await this.queue.idle();
    this.connectionClosed();
    this.disappearing.close();
    this.groups.close();
    this.auth.dispose();
    this.listeners.clear();
    this.e2ee.dispose?.(this.account);
  }
}
