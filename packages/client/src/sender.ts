/**
 * The send pipeline (docs/client.md, "Sending"): in the peer's queue, encrypt a message
 * under the session (or start one from a fetched bundle whose key passed the trust
 * rules) and commit session + outbox entry (+ history entry) in one batch, then hand the
 * entry to the outbox. A message that cannot be encrypted now (offline, lookup timed
 * out, a changed key not yet accepted) is stored as `sending` in the pending list and
 * encrypted later in conversation order; a definite refusal marks it `failed`.
 *
 * Owns: the pending list per peer (store meta, changed only inside the peer's queue).
 * Knows nothing of frames: the outbox sends what this commits.
 */
import { toHex, utf8Decode, utf8Encode, zeroize } from '@parley/crypto';
import type { Contacts } from './contacts.js';
import { isHeld, keyChangedError } from './contacts.js';
import type { CoreContext } from './context.js';
import type { Disappearing } from './disappearing.js';
import { envelopeOf, readTimer, timerWrite } from './disappearing.js';
import { encodeEnvelope, type Envelope } from './envelope.js';
import { outboxPut } from './outbox-records.js';
import { ClientError } from './errors.js';
import type { Outbox } from './outbox.js';
import { OUTBOX_RESEND_AFTER_MS } from './outbox.js';
import { sendFailureWrite } from './send-failures.js';
import type { StoreWrite, StoredMessage } from './store/types.js';

/** Client message ids are 128 random bits (wire CLIENT_MESSAGE_ID_BYTES). */
export const CLIENT_MESSAGE_ID_BYTES = 16;
/**
 * Meta key prefix (+ peer name): ids, in conversation order, of messages stored before
 * they could be encrypted because there was no session and no key lookup possible. The
 * plaintext is the history entry itself; this list only says which entries still need
 * encrypting. Changed only inside the peer's queue, so no two writers race on it.
 */
const META_PENDING_PREFIX = 'pending-send:';
/** Sessions are per peer device; this client talks to device 1 (one device per user). */
const PEER_DEVICE = 1;

/** Lookup outcomes that will not change by trying again: the message is marked failed. */
const PERMANENT_LOOKUP_FAILURES: ReadonlySet<string> = new Set(['NOT_FOUND', 'UNTRUSTED_KEY']);

export interface SenderContext extends CoreContext {
  readonly contacts: Contacts;
  readonly outbox: Outbox;
  readonly disappearing: Disappearing;
  isClosed(): boolean;
  reportError(err: unknown, what: string): void;
}

export class Sender {
  constructor(private readonly ctx: SenderContext) {}

  /**
   * A new message to `peer` (or, with `timerMs`, a change of the conversation's
   * disappearing timer, shown in the conversation); the caller runs this in the peer's queue.
   */
  async send(peer: string, text: string, timerMs?: number): Promise<StoredMessage> {
    const { ctx } = this;
    const now = ctx.clock();
    // The timer in force when it is written governs a message, wherever it is sent from.
    const ttl = timerMs === undefined ? await readTimer(ctx.store, peer) : 0;
    const draft: StoredMessage = {
      id: this.newId(),
      peer,
      direction: 'out',
      text: timerMs === undefined ? text : '',
      sentAt: now,
      storedAt: now,
      status: 'sending',
      shown: true,
      ...(ttl > 0 ? { expiresAt: now + ttl } : {}),
      ...(timerMs === undefined ? {} : { timerMs }),
    };
    // Same size and value rules as an encrypted message, checked before anything is stored.
    zeroize(encodeEnvelope(envelopeOf(draft)));
    const waiting = await this.pendingIds(peer);
    // A message already waiting for keys must not be overtaken.
    if (
      waiting.length === 0 &&
      (ctx.isReady() || (await ctx.store.getSession(peer, PEER_DEVICE)) !== undefined)
    ) {
      try {
        return (await this.encryptAndStore(peer, 'msg', draft)) ?? draft;
      } catch (err) {
        if (isHeld(err)) ctx.emit({ type: 'error', error: err });
        else if (!isTransient(err)) throw err;
      }
    }
    return this.storePending(peer, draft, waiting);
  }

  /** Ends the session: the caller runs this in the peer's queue. */
  async terminate(peer: string): Promise<void> {
    await this.encryptAndStore(peer, 'end');
  }

  /**
   * Sends `envelope` (a group envelope: no history entry of its own) to `peer` over the
   * pairwise session, starting one from the peer's keys if there is none; the caller
   * runs this in the peer's queue. Throws as a first message would (offline, unknown
   * peer, a changed key not yet accepted): the group part retries on its own rules.
   */
  async sendControl(peer: string, envelope: Envelope): Promise<void> {
    await this.encryptAndStore(peer, 'msg', undefined, undefined, envelope);
  }

  async pendingIds(peer: string): Promise<string[]> {
    const raw = await this.ctx.store.getMeta(META_PENDING_PREFIX + peer);
    return raw === undefined ? [] : (JSON.parse(utf8Decode(raw)) as string[]);
  }

  private pendingWrite(peer: string, ids: readonly string[]): StoreWrite {
    const key = META_PENDING_PREFIX + peer;
    return ids.length === 0
      ? { op: 'meta.delete', key }
      : { op: 'meta.put', key, value: utf8Encode(JSON.stringify(ids)) };
  }

  private newId(): string {
    return toHex(this.ctx.crypto.randomBytes(CLIENT_MESSAGE_ID_BYTES));
  }

  /** Commits a message that cannot be encrypted yet: history entry + pending mark, together. */
  private async storePending(
    peer: string,
    message: StoredMessage,
    waiting: readonly string[],
  ): Promise<StoredMessage> {
    const { ctx } = this;
    const { id } = message;
    await ctx.store.commit([
      { op: 'message.put', message },
      this.pendingWrite(peer, [...waiting, id]),
      ...(message.timerMs === undefined ? [] : [timerWrite(peer, message.timerMs)]),
    ]);
    ctx.disappearing.arm(message.expiresAt);
    const stored = (await ctx.store.getMessage(peer, 'out', id)) ?? message;
    ctx.emit({ type: 'message', message: stored });
    // Connected (a lookup just timed out, or earlier ones still wait): try again after them.
    if (ctx.isReady()) ctx.outbox.scheduleRetry(OUTBOX_RESEND_AFTER_MS);
    return stored;
  }

  /** Queues the encryption of every message waiting for keys, one job per peer. */
  async startPending(): Promise<void> {
    const { ctx } = this;
    if (!ctx.isReady()) return;
    for (const c of await ctx.store.listConversations()) {
      if ((await ctx.store.getMeta(META_PENDING_PREFIX + c.peer)) === undefined) continue;
      void ctx.queue
        .run(c.peer, () => this.sendPending(c.peer))
        .catch((err: unknown) => ctx.reportError(err, `sending to ${c.peer} failed`));
    }
  }

  /**
   * In the peer's queue: fetch keys, start the session and encrypt each waiting message
   * in order. The commit of session + outbox entry also removes the message from the
   * pending list, so a crash leaves it either waiting or in the outbox, never both.
   */
  private async sendPending(peer: string): Promise<void> {
    const { ctx } = this;
    for (;;) {
      if (!ctx.isReady() || ctx.isClosed()) return;
      const ids = await this.pendingIds(peer);
      const [id, ...rest] = ids;
      if (id === undefined) return;
      const dequeue = this.pendingWrite(peer, rest);
      const message = await ctx.store.getMessage(peer, 'out', id);
      if (message === undefined || message.status !== 'sending') {
        await ctx.store.commit([dequeue]);
        continue;
      }
      // Held for a key change: no lookup either (each would spend one of the peer's
      // prekeys); `markVerified` starts this again.
      if (await ctx.contacts.holdsOutgoing(peer)) return;
      try {
        await this.encryptAndStore(peer, 'msg', message, [dequeue]);
      } catch (err) {
        if (isHeld(err)) {
          ctx.emit({ type: 'error', error: err });
          return;
        }
        // Lost connection or timeout: it stays first in line for the next attempt.
        if (isTransient(err)) {
          if (ctx.isReady()) ctx.outbox.scheduleRetry(OUTBOX_RESEND_AFTER_MS);
          return;
        }
        if (!(err instanceof ClientError) || !PERMANENT_LOOKUP_FAILURES.has(err.code)) throw err;
        await ctx.store.commit([
          dequeue,
          { op: 'message.status', peer, id, status: 'failed' },
          sendFailureWrite(peer, id, { code: err.code, reason: err.message }),
        ]);
        ctx.emit({ type: 'status', peer, id, status: 'failed' });
        ctx.emit({
          type: 'error',
          error: new ClientError(err.code, `message to ${peer} not sent: ${err.message}`),
        });
      }
    }
  }

  /**
   * Encrypts `message` (a new one, or with `pendingWrites` one already stored, keeping its
   * id and time) or the session's end for `peer`, and commits session + outbox entry
   * (+ history entry for a new message) in one batch.
   */
  private async encryptAndStore(
    peer: string,
    kind: 'msg' | 'end',
    draft?: StoredMessage,
    pendingWrites?: readonly StoreWrite[],
    control?: Envelope,
  ): Promise<StoredMessage | undefined> {
    const { ctx } = this;
    const account = ctx.account();
    const now = ctx.clock();
    const id = control?.id ?? draft?.id ?? this.newId();
    const plaintext = encodeEnvelope(
      control ??
        (draft === undefined ? { kind: 'end', id, sentAt: now, body: '' } : envelopeOf(draft)),
    );
    const writes: StoreWrite[] = [...(pendingWrites ?? [])];
    const pending = pendingWrites !== undefined;
    const meta = { kind: kind === 'end' ? ('session.terminate' as const) : ('message' as const) };
    let state = await ctx.store.getSession(peer, PEER_DEVICE);
    let result;
    let deviceId = PEER_DEVICE;
    if (state) {
      // A session the peer's new key started (an initial message we received) is held too.
      if (await ctx.contacts.holdsOutgoing(peer)) {
        zeroize(state, plaintext);
        throw keyChangedError(peer);
      }
      result = ctx.e2ee.encrypt(account, state, plaintext, meta);
    } else {
      if (kind === 'end') throw new ClientError('NOT_FOUND', `no session with ${peer}`);
      const bundle = await ctx.contacts.lookup(peer);
      deviceId = bundle.deviceId;
      try {
        await ctx.contacts.trustForSending(
          peer,
          bundle.deviceId,
          bundle.identityKey,
          bundle.certificate,
          writes,
        );
      } catch (err) {
        zeroize(plaintext);
        throw err;
      }
      result = ctx.e2ee.initiate(account, bundle, plaintext, meta);
    }
    // Superseded session bytes and the plaintext are secrets we no longer need.
    zeroize(state, plaintext);
    state = undefined;
    if (kind === 'end') writes.push({ op: 'session.delete', peer, deviceId });
    else writes.push({ op: 'session.put', peer, deviceId, state: result.state });
    const entry = { id, peer, deviceId, payload: result.payload, createdAt: now, attempts: 0 };
    writes.push(
      outboxPut(
        entry,
        control
          ? { frame: 'send', kind: control.kind, message: undefined }
          : draft
            ? { frame: 'send', kind: 'msg', message: id }
            : { frame: 'session.terminate', kind: 'end', message: undefined },
      ),
    );
    if (draft && !pending) {
      writes.push({ op: 'message.put', message: draft });
      if (draft.timerMs !== undefined) writes.push(timerWrite(peer, draft.timerMs));
    }
    // The ratchet step, the ciphertext to (re)send and the history entry land together.
    await ctx.store.commit(writes);
    zeroize(result.state);
    // Hand this one entry to the relay now (in conversation order); the full outbox is
    // only walked on (re)connect and by the retry timer.
    ctx.outbox.send(entry, kind === 'end');
    if (!draft) return undefined;
    ctx.disappearing.arm(draft.expiresAt);
    const stored = (await ctx.store.getMessage(peer, 'out', id)) ?? draft;
    if (!pending) ctx.emit({ type: 'message', message: stored });
    return stored;
  }
}

/** No connection, or the relay did not answer: worth trying again later. */
function isTransient(err: unknown): boolean {
  return err instanceof ClientError && (err.code === 'TRANSPORT' || err.code === 'TIMEOUT');
}
