/**
 * One client connection: a thin shell over its socket and the `ConnectionHost`. It
 * checks and decodes blocks, applies the per-connection and per-identity limits, and
 * dispatches frames to the parts that own their state:
 * - `connection-auth.ts`: hello -> challenge -> register/login/resume -> welcome,
 *   re-authentication, the mtls path;
 * - `mailbox-pump.ts`: this device's mail and kept receipts on this connection;
 * - `frame-handlers.ts`, `blob-frames.ts`, the key directory and the mailbox router
 *   for everything else.
 *
 * Rules this file enforces, in the order a block meets them:
 * 1. size and type of the WebSocket message (exactly one binary block) before decoding;
 * 2. per-connection and per-identity block rate (flood -> close);
 * 3. decoding errors of any kind -> close (typed `WireError` only, audited by code);
 * 4. before authentication only hello/register/login/resume are legal;
 * 5. a relayed frame whose `from` is not the authenticated device is dropped silently;
 * 6. answers to failed requests are the generic `failed` error (M13).
 */
import {
  FrameReader,
  FrameWriter,
  isBlobChunkBlock,
  MAX_PRESENCE_NAMES,
  validateBlockSize,
  WireError,
  type ClientFrame,
  type ServerFrame,
} from '@parley/wire';
import { BlobFrames } from './blob-frames.js';
import type { AuditEventType } from './audit.js';
import type { Connection } from './connection.js';
import { ConnectionAuth } from './connection-auth.js';
import { FRAME_HANDLERS } from './frame-handlers.js';
import type { ConnectionHost, FrameContext, RelayedFrame, RouterPeer } from './host.js';
import { CLOSE_GOING_AWAY, CLOSE_POLICY, CLOSE_TOO_BIG, CLOSE_UNSUPPORTED } from './limits.js';
import { MailboxPump } from './mailbox-pump.js';
import { SlidingWindowLimiter } from './rate-limit.js';
import type { Address, MailItem, Receipt } from './storage/types.js';

type ErrorCode = Extract<ServerFrame, { type: 'error' }>['code'];

/** A block that passed the per-connection checks and waits its turn for decoding. */
interface HeldBlock {
  readonly block: Uint8Array;
  /** It still has to be counted against the identity's cluster-wide limit. */
  readonly identityQuota: boolean;
}

export class Session implements RouterPeer {
  readonly #host: ConnectionHost;
  readonly #conn: Connection;
  readonly #auth: ConnectionAuth;
  readonly #reader: FrameReader<'toServer'>;
  readonly #writer: FrameWriter;
  readonly #blocks: SlidingWindowLimiter;
  readonly #messages: SlidingWindowLimiter;
  /** Attachment chunk blocks, counted apart from other blocks (limits.ts). */
  readonly #chunks: SlidingWindowLimiter;
  readonly #blobs: BlobFrames;
  #mailbox: MailboxPump | undefined;
  #closed = false;
  #lastActivity: number;
  #lastPing = 0;
  /**
   * Blocks behind one whose identity quota is being asked of the other nodes: decoded in
   * arrival order once it is answered. Bounded by the per-connection block limit.
   */
  readonly #held: HeldBlock[] = [];
  #awaitingQuota = false;
  /** Frames are handled one at a time, in arrival order (per-peer queue). */
  #queue: Promise<void> = Promise.resolve();
  /** Relayed frames are submitted to storage in arrival order. */
  #relayChain: Promise<void> = Promise.resolve();

  constructor(host: ConnectionHost, conn: Connection) {
    this.#host = host;
    this.#conn = conn;
    const { config, now } = host.deps;
    const connectedAt = now();
    this.#lastActivity = connectedAt;
    this.#auth = new ConnectionAuth(
      host,
      {
        peer: this,
        remote: conn.peer.remote,
        certificate: conn.peer.certificate,
        send: (f) => this.sendFrame(f),
        reject: (type, code, closeCode) => this.#reject(type, code, closeCode),
        close: (code) => this.close(code),
        authenticated: () => this.#mailboxOf()?.start() ?? Promise.resolve(),
      },
      connectedAt,
    );
    this.#reader = new FrameReader({
      direction: 'toServer',
      now,
      blockBytes: config.limits.blockBytes,
      maxFrameBytes: config.limits.maxFrameBytes,
    });
    this.#writer = new FrameWriter({
      blockBytes: config.limits.blockBytes,
      maxFrameBytes: config.limits.maxFrameBytes,
    });
    this.#blocks = new SlidingWindowLimiter(
      config.rateLimit.maxBlocksPerConnection,
      config.rateLimit.windowMs,
      now,
    );
    this.#messages = new SlidingWindowLimiter(
      config.rateLimit.maxMessagesPerConnection,
      config.rateLimit.windowMs,
      now,
    );
    this.#chunks = new SlidingWindowLimiter(
      config.attachments.maxChunksPerConnection,
      config.rateLimit.windowMs,
      now,
    );
    this.#blobs = new BlobFrames({
      store: host.blobs,
      limits: config.attachments,
      blockBytes: config.limits.blockBytes,
      now,
      identity: () => (this.#auth.identity as Address).name,
      send: (f) => this.sendFrame(f),
      bufferedAmount: () => this.#conn.bufferedAmount,
      isOpen: () => this.isOpen,
      audit: (e) =>
        this.#host.audit({ ...e, remote: this.remote, identity: this.#auth.identity?.name ?? '' }),
      violation: (code) => this.#reject('frame.unexpected', code, CLOSE_POLICY),
    });
  }

  /** The authenticated device (kept after close, so the core can unregister it). */
  get identity(): Address | undefined {
    return this.#auth.identity;
  }
  get remote(): string {
    return this.#conn.peer.remote;
  }
  /** DER of the mtls client certificate, if any. */
  get peerCertificate(): Uint8Array | undefined {
    return this.#conn.peer.certificate?.der;
  }
  get isOpen(): boolean {
    return !this.#closed;
  }

  /** This device's mailbox on this connection, once the device is known. */
  #mailboxOf(): MailboxPump | undefined {
    const device = this.#auth.identity;
    if (this.#mailbox === undefined && device !== undefined) {
      this.#mailbox = new MailboxPump(this.#host, device, {
        send: (f) => this.sendFrame(f),
        isOpen: () => this.isOpen,
        bufferedAmount: () => this.#conn.bufferedAmount,
      });
    }
    return this.#mailbox;
  }

  /* ---------- transport events ---------- */

  /** One WebSocket message. Size and type are checked before anything is decoded. */
  onMessage(data: unknown, isBinary: boolean): void {
    if (this.#closed) return;
    const { config, metrics, now } = this.#host.deps;
    const checked = validateBlockSize(data, isBinary, config.limits.blockBytes);
    if (!checked.ok) {
      const code = checked.error.code;
      const size = byteLength(data);
      const type: AuditEventType =
        code === 'BLOCK_NOT_BINARY'
          ? 'frame.text'
          : size > config.limits.blockBytes
            ? 'frame.oversize'
            : 'frame.wrong-size';
      this.#reject(
        type,
        code,
        code === 'BLOCK_NOT_BINARY' ? CLOSE_UNSUPPORTED : CLOSE_POLICY,
        size,
      );
      return;
    }
    metrics.blocksIn.inc();
    this.#lastActivity = now();
    const block = checked.value;
    const chunk = this.#auth.ready && isBlobChunkBlock(block);
    if (chunk) {
      if (!this.#chunks.take()) {
        this.#reject('rate.flood', 'connection-chunks', CLOSE_POLICY);
        return;
      }
    } else if (!this.#blocks.take()) {
      this.#reject(
        'rate.flood',
        'connection-blocks',
        CLOSE_POLICY,
        Math.round(this.#blocks.count()),
      );
      return;
    }
    const held = { block, identityQuota: !chunk && this.#auth.ready };
    if (this.#awaitingQuota) this.#held.push(held);
    else this.#admit(held);
  }

  /**
   * Counts a block against its identity's limit (all nodes), then decodes it. When the
   * quota has to ask the other nodes first, this block and every later one wait, so
   * blocks are still decoded in arrival order.
   */
  #admit(h: HeldBlock): void {
    const name = this.#auth.identity?.name;
    if (h.identityQuota && name !== undefined) {
      const verdict = this.#host.quota.takeBlock(name);
      if (verdict === false) {
        this.#reject('rate.flood', 'identity-blocks', CLOSE_POLICY);
        return;
      }
      if (verdict !== true) {
        this.#awaitingQuota = true;
        void verdict.then((ok) => {
          this.#awaitingQuota = false;
          if (this.#closed) return;
          if (!ok) {
            this.#reject('rate.flood', 'identity-blocks', CLOSE_POLICY);
            return;
          }
          this.#decode(h.block);
          while (!this.#awaitingQuota && !this.#closed && this.#held.length > 0) {
            this.#admit(this.#held.shift() as HeldBlock);
          }
        });
        return;
      }
    }
    this.#decode(h.block);
  }

  #decode(block: Uint8Array): void {
    let frame: ClientFrame | undefined;
    try {
      frame = this.#reader.push(block);
    } catch (err) {
      const code = err instanceof WireError ? err.code : 'INTERNAL';
      this.#reject(
        code === 'FRAME_TOO_LARGE' ? 'frame.oversize' : 'frame.malformed',
        code,
        CLOSE_POLICY,
      );
      return;
    }
    if (frame === undefined) return;
    const f = frame;
    this.#queue = this.#queue
      .then(
        () => this.#handle(f),
        () => undefined,
      )
      .catch((err: unknown) => {
        this.#host.deps.logger.error(
          { err: (err as Error).message, remote: this.remote },
          'frame handler failed',
        );
        this.#sendError('server_error');
      });
  }

  /** An oversized message the transport refused to buffer (ws maxPayload). */
  onOversize(): void {
    this.#reject('frame.oversize', 'BLOCK_SIZE', CLOSE_TOO_BIG);
  }

  /** The transport connection is gone. */
  onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#held.length = 0;
    this.#reader.close();
    this.#host.closed(this);
  }

  /** Periodic deadline check (called by the core's sweep). */
  tick(now: number): void {
    if (this.#closed) return;
    const limits = this.#host.deps.config.limits;
    const authExpired = this.#auth.expired(now);
    if (authExpired !== undefined) {
      this.#reject('auth.timeout', authExpired, CLOSE_POLICY);
      return;
    }
    const notAfter = this.#conn.peer.certificate?.notAfter;
    if (notAfter !== undefined && now > notAfter) {
      // A certificate that expires during a long-lived connection ends it, as a new
      // handshake would fail.
      this.#reject('tls.rejected', 'expired-while-connected', CLOSE_GOING_AWAY);
      return;
    }
    if (now - this.#lastActivity >= limits.idleTimeoutMs) {
      this.#reject('conn.idle', 'idle-timeout', CLOSE_POLICY);
      return;
    }
    try {
      this.#reader.checkTimeouts();
    } catch (err) {
      this.#reject(
        'frame.malformed',
        err instanceof WireError ? err.code : 'INTERNAL',
        CLOSE_POLICY,
      );
      return;
    }
    if (this.#auth.ready) {
      // Liveness: ping (inside a block) when quiet for a third of the idle timeout.
      const quietFor = now - this.#lastActivity;
      if (
        quietFor >= limits.idleTimeoutMs / 3 &&
        now - this.#lastPing >= limits.idleTimeoutMs / 3
      ) {
        this.#lastPing = now;
        this.sendFrame({ type: 'ping', timestamp: now });
      }
      this.#auth.reauthIfDue(now);
    }
  }

  /* ---------- output ---------- */

  /** Encodes and sends a frame (all of its blocks, in order). */
  sendFrame(frame: ServerFrame): void {
    if (this.#closed) return;
    const blocks = this.#writer.write(frame);
    for (const b of blocks) this.#conn.send(b);
    this.#host.deps.metrics.blocksOut.inc(blocks.length);
  }

  close(code: number): void {
    if (this.#closed) return;
    this.#conn.close(code);
    this.onClose();
  }

  #sendError(
    code: ErrorCode,
    correlation: { requestId?: number; clientMessageId?: Uint8Array } = {},
  ): void {
    this.sendFrame({ type: 'error', code, ...correlation });
  }

  /** Audits, counts and closes. The peer learns nothing beyond the close code. */
  #reject(type: AuditEventType, code: string, closeCode: number, value?: number): void {
    const identity = this.#auth.identity;
    this.#host.audit({
      type,
      remote: this.remote,
      code,
      ...(identity ? { identity: identity.name } : {}),
      ...(value !== undefined ? { value } : {}),
    });
    this.#host.deps.metrics.rejections.inc({ reason: type });
    this.close(closeCode);
  }

  /* ---------- frame handling ---------- */

  #frameContext(): FrameContext {
    return {
      identity: this.#auth.identity as Address,
      remote: this.remote,
      host: this.#host,
      send: (f) => this.sendFrame(f),
    };
  }

  async #handle(frame: ClientFrame): Promise<void> {
    if (this.#closed) {
      // An ack that arrived before the connection closed still counts: the device has
      // the mail, and dropping the ack would hand the mail over again after a reconnect.
      if (frame.type === 'ack') this.#mailboxOf()?.ackSoon(frame.serverMessageId);
      return;
    }
    const now = this.#host.deps.now();
    if (
      'timestamp' in frame &&
      (frame.type === 'hello' ||
        frame.type === 'register' ||
        frame.type === 'login' ||
        frame.type === 'resume' ||
        frame.type === 'ping')
    ) {
      if (Math.abs(now - frame.timestamp) > this.#host.deps.config.limits.freshnessWindowMs) {
        this.#sendError(frame.type === 'ping' ? 'bad_request' : 'auth_failed');
        this.#reject('frame.malformed', 'STALE_TIMESTAMP', CLOSE_POLICY);
        return;
      }
    }
    switch (frame.type) {
      case 'hello':
      case 'register':
      case 'login':
      case 'resume':
        return this.#auth.handle(frame);
      case 'ping':
        this.sendFrame({ type: 'pong', timestamp: frame.timestamp });
        return;
      case 'pong':
        return;
      default:
        break;
    }
    if (!this.#auth.admitsFrames) {
      this.#reject('frame.unexpected', frame.type, CLOSE_POLICY);
      return;
    }
    const handler = FRAME_HANDLERS[frame.type];
    if (handler) {
      await handler(frame as never, this.#frameContext());
      return;
    }
    const me = this.#auth.identity as Address;
    switch (frame.type) {
      case 'prekeys.upload':
        this.sendFrame(await this.#host.keys.upload(me, this.remote, frame));
        return;
      case 'keys.lookup':
        return this.#host.keys.lookup(frame, (answer) => this.sendFrame(answer));
      case 'identity.lookup':
        this.sendFrame(await this.#host.keys.identity(frame));
        return;
      case 'blob.begin':
      case 'blob.chunk':
      case 'blob.fetch':
        return this.#blobs.handle(frame);
      case 'send':
      case 'session.terminate':
      case 'group.send':
        this.#onRelay(me, frame);
        return;
      case 'ack':
        this.#mailboxOf()?.ackSoon(frame.serverMessageId);
        return;
      case 'mailbox.fetch':
        return this.#mailboxOf()?.fetch();
      case 'crl.fetch': {
        const crl = this.#host.crl;
        if (crl === undefined) this.#sendError('failed', { requestId: frame.requestId });
        else this.sendFrame({ type: 'crl', requestId: frame.requestId, crl });
        return;
      }
      case 'presence.list': {
        const names = this.#host.router.onlineNames();
        this.sendFrame({
          type: 'presence.list.result',
          requestId: frame.requestId,
          names: names.slice(0, MAX_PRESENCE_NAMES),
          truncated: names.length > MAX_PRESENCE_NAMES,
        });
        return;
      }
    }
  }

  /**
   * Checks a relayed frame synchronously, then submits it to storage in arrival order
   * without waiting for the commit: a sender's next frames are handled while the group
   * commit is in flight (one fsync serves many frames), and receipts still come back in
   * order because commits resolve in submission order.
   */
  #onRelay(me: Address, frame: RelayedFrame): void {
    const { config, metrics } = this.#host.deps;
    if (frame.from.name !== me.name || frame.from.deviceId !== me.deviceId) {
      // Identity binding (M5): silent drop, so a spoofer learns nothing.
      this.#host.audit({
        type: 'sender.spoofed',
        remote: this.remote,
        identity: me.name,
        code: frame.type,
      });
      metrics.messages.inc({ outcome: 'spoofed' });
      return;
    }
    if (!this.#messages.take()) {
      this.#reject('rate.flood', 'connection-messages', CLOSE_POLICY);
      return;
    }
    if (frame.payload.length > config.limits.maxPayloadBytes) {
      this.#sendError('too_large', { clientMessageId: frame.clientMessageId });
      return;
    }
    this.#relayChain = this.#relayChain
      .then(() => this.#host.router.submit(this, me, frame))
      .catch((err: unknown) => {
        this.#host.deps.logger.error({ err: (err as Error).message }, 'relay failed');
        this.#sendError('server_error', { clientMessageId: frame.clientMessageId });
      });
  }

  /* ---------- the router's side (RouterPeer) ---------- */

  /** Whether a new item would be delivered live now (see `pushLive`). */
  canTakeLive(): boolean {
    return !this.#closed && this.#auth.ready && (this.#mailbox?.canTakeLive() ?? false);
  }

  /**
   * Delivers one new item now if this connection is caught up: authenticated, no
   * backlog being drained, room in its send buffer. Returns whether it did.
   */
  pushLive(item: MailItem): boolean {
    if (!this.canTakeLive()) return false;
    return (this.#mailbox as MailboxPump).pushLive(item);
  }

  /** Sends a kept receipt as `receipt.stored` (settled when this device acks it). */
  sendStoredReceipt(r: Receipt): void {
    if (this.#closed) return;
    this.#mailboxOf()?.sendStoredReceipt(r);
  }

  /** New mail for this device was stored: deliver it (in order, after any backlog). */
  notifyMail(): void {
    if (this.#closed || !this.#auth.ready) return;
    this.#mailboxOf()?.notifyMail();
  }
}

function byteLength(data: unknown): number {
  if (data instanceof Uint8Array) return data.length;
  if (data instanceof ArrayBuffer) return data.byteLength;
  if (Array.isArray(data))
    return data.reduce((n: number, d: unknown) => n + (d instanceof Uint8Array ? d.length : 0), 0);
  if (typeof data === 'string') return data.length;
  return 0;
}
