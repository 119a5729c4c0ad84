/**
 * One client connection's state machine: hello -> (challenge ->) authenticated, then
 * frame handling with identity binding and limits, this connection's mailbox pump and
 * its kept receipts. It sees only its own socket and a `ConnectionHost`: mail for other
 * devices, receipts to senders, presence and nudges go through the mailbox router, key
 * requests through the key directory, and frame types registered in `frame-handlers.ts`
 * to their own modules.
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
  SUPPORTED_PROTOCOL_VERSIONS,
  validateBlockSize,
  WireError,
  type ClientFrame,
  type ServerFrame,
} from '@parley/wire';
import { zeroize } from '@parley/crypto';
import { BlobFrames } from './blob-frames.js';
import { newChallenge, sameKey, verifyAuthSignature, type IssuedChallenge } from './auth.js';
import type { AuditEventType } from './audit.js';
import type { Connection } from './connection.js';
import { FRAME_HANDLERS } from './frame-handlers.js';
import type { ConnectionHost, FrameContext, RelayedFrame, RouterPeer } from './host.js';
import {
  CLOSE_GOING_AWAY,
  CLOSE_POLICY,
  CLOSE_TOO_BIG,
  CLOSE_TRY_AGAIN,
  CLOSE_UNSUPPORTED,
  MAILBOX_BATCH,
  MAX_SEND_BUFFER_BYTES,
} from './limits.js';
import { SlidingWindowLimiter } from './rate-limit.js';
import type { IssuedToken } from './session-tokens.js';
import type { Address, MailItem, Receipt } from './storage/types.js';

type State = 'hello' | 'challenged' | 'ready' | 'closed';

/** How long to wait before re-checking a full send buffer while draining mail. */
const DRAIN_POLL_MS = 5;

export class Session implements RouterPeer {
  readonly #host: ConnectionHost;
  readonly #conn: Connection;
  readonly #reader: FrameReader<'toServer'>;
  readonly #writer: FrameWriter;
  readonly #blocks: SlidingWindowLimiter;
  readonly #messages: SlidingWindowLimiter;
  /** Attachment chunk blocks, counted apart from other blocks (limits.ts). */
  readonly #chunks: SlidingWindowLimiter;
  readonly #blobs: BlobFrames;
  readonly #connectedAt: number;
  #state: State = 'hello';
  #version = 1;
  #identity: Address | undefined;
  #challenge: IssuedChallenge | undefined;
  /** Deadline for (re-)authentication; undefined while none is pending. */
  #authDeadline: number | undefined;
  #sessionExpiresAt = 0;
  /** Open mode: this connection's current session token (its hash, in the registry). */
  #token: IssuedToken | undefined;
  #lastActivity: number;
  #lastPing = 0;
  /** Mailbox pump: highest server id delivered on this connection. */
  #cursor = 0;
  #pumping = false;
  /** The stored backlog has been delivered once since login (or since the last fetch). */
  #caughtUp = false;
  #pumpAgain = false;
  #emptyMarkerDue = false;
  /** Frames are handled one at a time, in arrival order (per-peer queue). */
  #queue: Promise<void> = Promise.resolve();
  readonly #acksInFlight = new Set<Promise<unknown>>();
  /**
   * Server ids sent as `receipt.stored` on this connection and not yet acked: an ack of
   * one of them settles the kept receipt instead of touching the mailbox. Bounded by the
   * receipts kept per device (MAX_PENDING_RECEIPTS_PER_SENDER).
   */
  readonly #storedReceiptsSent = new Set<number>();
  /** Relayed frames are submitted to storage in arrival order. */
  #relayChain: Promise<void> = Promise.resolve();

  constructor(host: ConnectionHost, conn: Connection) {
    this.#host = host;
    this.#conn = conn;
    const { config, now } = host.deps;
    this.#connectedAt = now();
    this.#lastActivity = this.#connectedAt;
    this.#authDeadline = this.#connectedAt + config.limits.authTimeoutMs;
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
      identity: () => (this.#identity as Address).name,
      send: (f) => this.sendFrame(f),
      bufferedAmount: () => this.#conn.bufferedAmount,
      isOpen: () => this.isOpen,
      audit: (e) =>
        this.#host.audit({ ...e, remote: this.remote, identity: this.#identity?.name ?? '' }),
      violation: (code) => this.#reject('frame.unexpected', code, CLOSE_POLICY),
    });
  }

  /** The authenticated device (kept after close, so the core can unregister it). */
  get identity(): Address | undefined {
    return this.#identity;
  }
  get remote(): string {
    return this.#conn.peer.remote;
  }
  /** DER of the mtls client certificate, if any. */
  get peerCertificate(): Uint8Array | undefined {
    return this.#conn.peer.certificate?.der;
  }
  get isOpen(): boolean {
    return this.#state !== 'closed';
  }

  /* ---------- transport events ---------- */

  /** One WebSocket message. Size and type are checked before anything is decoded. */
  onMessage(data: unknown, isBinary: boolean): void {
    if (this.#state === 'closed') return;
    const m = this.#host.deps.metrics;
    const checked = validateBlockSize(data, isBinary, this.#host.deps.config.limits.blockBytes);
    if (!checked.ok) {
      const code = checked.error.code;
      const size = byteLength(data);
      const type: AuditEventType =
        code === 'BLOCK_NOT_BINARY'
          ? 'frame.text'
          : size > this.#host.deps.config.limits.blockBytes
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
    m.blocksIn.inc();
    this.#lastActivity = this.#host.deps.now();
    if (this.#state === 'ready' && isBlobChunkBlock(checked.value)) {
      if (!this.#chunks.take()) {
        this.#reject('rate.flood', 'connection-chunks', CLOSE_POLICY);
        return;
      }
    } else {
      if (!this.#blocks.take()) {
        this.#reject(
          'rate.flood',
          'connection-blocks',
          CLOSE_POLICY,
          Math.round(this.#blocks.count()),
        );
        return;
      }
      if (
        this.#identity &&
        this.#state === 'ready' &&
        !this.#host.quota.takeBlock(this.#identity.name)
      ) {
        this.#reject('rate.flood', 'identity-blocks', CLOSE_POLICY);
        return;
      }
    }
    let frame: ClientFrame | undefined;
    try {
      frame = this.#reader.push(checked.value);
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
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#reader.close();
    this.#host.closed(this);
  }

  /** Periodic deadline check (called by the core's sweep). */
  tick(now: number): void {
    if (this.#state === 'closed') return;
    const limits = this.#host.deps.config.limits;
    if (this.#authDeadline !== undefined && now >= this.#authDeadline) {
      this.#reject('auth.timeout', this.#state === 'hello' ? 'no-hello' : 'no-login', CLOSE_POLICY);
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
    if (this.#state === 'ready') {
      // Liveness: ping (inside a block) when quiet for a third of the idle timeout.
      const quietFor = now - this.#lastActivity;
      if (
        quietFor >= limits.idleTimeoutMs / 3 &&
        now - this.#lastPing >= limits.idleTimeoutMs / 3
      ) {
        this.#lastPing = now;
        this.sendFrame({ type: 'ping', timestamp: now });
      }
      // Re-authentication on long sessions (M6): open mode asks for a fresh signature.
      if (
        this.#host.deps.config.auth === 'open' &&
        now >= this.#sessionExpiresAt &&
        this.#authDeadline === undefined
      ) {
        this.#challenge = newChallenge(
          this.#host.deps.crypto,
          this.#host.deps.config.serverId,
          this.#version,
          now,
        );
        this.#authDeadline = now + limits.authTimeoutMs;
        this.sendFrame(this.#challenge.frame);
      }
    }
  }

  /* ---------- output ---------- */

  /** Encodes and sends a frame (all of its blocks, in order). */
  sendFrame(frame: ServerFrame): void {
    if (this.#state === 'closed') return;
    const blocks = this.#writer.write(frame);
    for (const b of blocks) this.#conn.send(b);
    this.#host.deps.metrics.blocksOut.inc(blocks.length);
  }

  close(code: number): void {
    if (this.#state === 'closed') return;
    this.#conn.close(code);
    this.onClose();
  }

  #sendError(
    code:
      | 'failed'
      | 'bad_request'
      | 'auth_failed'
      | 'rate_limited'
      | 'unsupported_version'
      | 'too_large'
      | 'server_error',
    correlation: { requestId?: number; clientMessageId?: Uint8Array } = {},
  ): void {
    this.sendFrame({ type: 'error', code, ...correlation });
  }

  /** Audits, counts and closes. The peer learns nothing beyond the close code. */
  #reject(type: AuditEventType, code: string, closeCode: number, value?: number): void {
    this.#host.audit({
      type,
      remote: this.remote,
      code,
      ...(this.#identity ? { identity: this.#identity.name } : {}),
      ...(value !== undefined ? { value } : {}),
    });
    this.#host.deps.metrics.rejections.inc({ reason: type });
    this.close(closeCode);
  }

  /* ---------- frame handling ---------- */

  #frameContext(): FrameContext {
    return {
      identity: this.#identity as Address,
      remote: this.remote,
      host: this.#host,
      send: (f) => this.sendFrame(f),
    };
  }

  async #handle(frame: ClientFrame): Promise<void> {
    if (this.#state === 'closed') {
      // An ack that arrived before the connection closed still counts: the device has
      // the mail, and dropping the ack would hand the mail over again after a reconnect.
      if (frame.type === 'ack' && this.#identity) this.#ackSoon(frame.serverMessageId);
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
        return this.#onHello(frame);
      case 'register':
      case 'login':
        return this.#onAuth(frame);
      case 'resume':
        return this.#onResume(frame);
      case 'ping':
        this.sendFrame({ type: 'pong', timestamp: frame.timestamp });
        return;
      case 'pong':
        return;
      default:
        break;
    }
    if (this.#state !== 'ready' && !(this.#state === 'challenged' && this.#identity)) {
      this.#reject('frame.unexpected', frame.type, CLOSE_POLICY);
      return;
    }
    const handler = FRAME_HANDLERS[frame.type];
    if (handler) {
      await handler(frame as never, this.#frameContext());
      return;
    }
    switch (frame.type) {
      case 'prekeys.upload':
        this.sendFrame(await this.#host.keys.upload(this.#identity as Address, this.remote, frame));
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
        this.#onRelay(frame);
        return;
      case 'ack':
        this.#ackSoon(frame.serverMessageId);
        return;
      case 'mailbox.fetch':
        // A sync point, not a second delivery: the backlog was pushed after `welcome`
        // and the cursor stays, so nothing already sent here is sent again. Acks sent
        // before it take effect before `mailbox.empty` answers it.
        await Promise.all(this.#acksInFlight);
        this.#emptyMarkerDue = true;
        this.#pump();
        return;
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

  async #onHello(frame: Extract<ClientFrame, { type: 'hello' }>): Promise<void> {
    if (this.#state !== 'hello') {
      this.#reject('frame.unexpected', 'hello', CLOSE_POLICY);
      return;
    }
    const common = frame.protocolVersions.filter((v) => SUPPORTED_PROTOCOL_VERSIONS.includes(v));
    if (common.length === 0) {
      this.#sendError('unsupported_version');
      this.#reject('auth.failed', 'VERSION_UNSUPPORTED', CLOSE_POLICY);
      return;
    }
    this.#version = Math.max(...common);
    const { config, crypto, now } = this.#host.deps;
    const cert = this.#conn.peer.certificate;
    if (config.auth === 'mtls') {
      if (!cert) {
        // The transport never hands over an mtls connection without a certificate.
        this.#reject('auth.failed', 'no-certificate', CLOSE_POLICY);
        return;
      }
      const replaced = await this.#host.deps.store.upsertDevice({
        name: cert.name,
        deviceId: 1,
        identityKey: cert.identityKey,
        certificate: cert.der,
        registeredAt: now(),
      });
      // A new CA-certified key for the name (`pki issue --replace`): the old key's
      // prekeys were dropped with it; the device uploads its own after welcome.
      if (replaced) {
        this.#host.audit({
          type: 'identity.replaced',
          remote: this.remote,
          identity: cert.name,
          code: cert.serial,
        });
      }
      await this.#authenticated({ name: cert.name, deviceId: 1 });
      return;
    }
    this.#challenge = newChallenge(crypto, config.serverId, this.#version, now());
    this.#state = 'challenged';
    this.sendFrame(this.#challenge.frame);
  }

  async #onAuth(frame: Extract<ClientFrame, { type: 'register' | 'login' }>): Promise<void> {
    const { config, store, now, crypto } = this.#host.deps;
    const challenge = this.#challenge;
    const reauth = this.#state === 'ready' && this.#authDeadline !== undefined;
    if (config.auth !== 'open' || !challenge || (this.#state !== 'challenged' && !reauth)) {
      this.#reject('frame.unexpected', frame.type, CLOSE_POLICY);
      return;
    }
    const address = { name: frame.name, deviceId: frame.deviceId };
    if (
      reauth &&
      (frame.type !== 'login' ||
        frame.name !== this.#identity?.name ||
        frame.deviceId !== this.#identity.deviceId)
    ) {
      this.#failAuth(frame.name, 'reauth-identity-changed');
      return;
    }
    let identityKey: Uint8Array;
    if (frame.type === 'register') {
      identityKey = frame.identityKey;
    } else {
      const device = await store.getDevice(address);
      // Unknown name and wrong key take the same path: verify against a dummy key, so
      // the answer and the work done do not reveal which names exist (M13).
      identityKey = device?.identityKey ?? new Uint8Array(32);
    }
    const ok = verifyAuthSignature(crypto, challenge, {
      purpose: frame.type,
      name: frame.name,
      deviceId: frame.deviceId,
      identityKey,
      timestamp: frame.timestamp,
      signature: frame.signature,
    });
    if (!ok) {
      this.#failAuth(frame.name, 'bad-signature');
      return;
    }
    if (frame.type === 'register') {
      const result = await store.registerDevice({ ...address, identityKey, registeredAt: now() });
      if (!result.created && !sameKey(result.device.identityKey, identityKey)) {
        // The name belongs to another key: same answer as a bad signature.
        this.#failAuth(frame.name, 'name-taken');
        return;
      }
      if (result.created)
        this.#host.audit({ type: 'auth.register', remote: this.remote, identity: frame.name });
    }
    if (reauth) {
      this.#authDeadline = undefined;
      this.#challenge = undefined;
      this.#sessionExpiresAt = now() + config.limits.sessionTtlMs;
      this.#sendWelcome(address);
      return;
    }
    await this.#authenticated(address);
  }

  /**
   * Open mode: the first challenge of a connection answered with a session token
   * instead of a signature (docs/operations.md). It consumes the challenge like a login
   * (one attempt per connection), fails exactly like a bad signature, and the session
   * keeps the expiry of the signed login the token descends from.
   */
  async #onResume(frame: Extract<ClientFrame, { type: 'resume' }>): Promise<void> {
    const challenge = this.#challenge;
    if (this.#host.deps.config.auth !== 'open' || !challenge) {
      // mtls has no tokens: the certificate authenticates every handshake.
      this.#reject('frame.unexpected', frame.type, CLOSE_POLICY);
      return;
    }
    if (this.#state !== 'challenged' || challenge.used) {
      // A re-authentication needs a fresh signature; a token cannot stand in for one.
      this.#failAuth(frame.name, 'resume-on-reauth');
      return;
    }
    challenge.used = true;
    const address = { name: frame.name, deviceId: frame.deviceId };
    const result = this.#host.tokens.redeem(address, frame.sessionToken);
    if (!result.ok) {
      this.#failAuth(frame.name, `resume-${result.reason}`);
      return;
    }
    await this.#authenticated(address, result.expiresAt);
  }

  #failAuth(name: string, code: string): void {
    this.#sendError('auth_failed');
    this.#host.audit({ type: 'auth.failed', remote: this.remote, identity: name, code });
    this.#host.deps.metrics.rejections.inc({ reason: 'auth.failed' });
    this.close(CLOSE_POLICY);
  }

  /**
   * Sends `welcome`. Open mode: with a fresh single-use session token that replaces this
   * connection's previous one; the relay keeps only its hash. mtls: an empty token.
   */
  #sendWelcome(address: Address): void {
    const { config } = this.#host.deps;
    let sessionToken: Uint8Array = new Uint8Array(0);
    if (config.auth === 'open') {
      const issued = this.#host.tokens.issue(address, this.#sessionExpiresAt, this.#token);
      this.#token = issued.handle;
      sessionToken = issued.token;
    }
    this.sendFrame({
      type: 'welcome',
      version: this.#version,
      name: address.name,
      deviceId: address.deviceId,
      sessionToken,
      expiresAt: this.#sessionExpiresAt,
      limits: {
        blockBytes: config.limits.blockBytes,
        maxFrameBytes: config.limits.maxFrameBytes,
        maxPayloadBytes: config.limits.maxPayloadBytes,
        rateLimitMessages: config.rateLimit.maxMessagesPerConnection,
        rateLimitWindowMs: config.rateLimit.windowMs,
      },
    });
    // Encoded into the blocks already: the relay keeps no copy of the token itself.
    zeroize(sessionToken);
  }

  /**
   * The connection is authenticated as `address`. `resumedUntil`: it resumed a session
   * with a token, and keeps that session's signed expiry instead of starting a new one.
   */
  async #authenticated(address: Address, resumedUntil?: number): Promise<void> {
    const { config, now } = this.#host.deps;
    this.#identity = address;
    const granted = this.#host.router.register(this, address);
    if (!(typeof granted === 'boolean' ? granted : await granted)) {
      this.#identity = undefined;
      this.#sendError('rate_limited');
      this.#reject('conn.cap', 'per-identity', CLOSE_TRY_AGAIN);
      return;
    }
    this.#state = 'ready';
    this.#authDeadline = undefined;
    this.#challenge = undefined;
    this.#sessionExpiresAt = resumedUntil ?? now() + config.limits.sessionTtlMs;
    this.#host.audit({
      type: 'auth.ok',
      remote: this.remote,
      identity: address.name,
      ...(resumedUntil !== undefined ? { code: 'resume' } : {}),
    });
    this.#sendWelcome(address);
    await this.#flushReceipts();
    const low = await this.#host.keys.lowOnLogin(address);
    if (low) this.sendFrame(low);
    this.#emptyMarkerDue = true;
    this.#pump();
  }

  /**
   * Checks a relayed frame synchronously, then submits it to storage in arrival order
   * without waiting for the commit: a sender's next frames are handled while the group
   * commit is in flight (one fsync serves many frames), and receipts still come back in
   * order because commits resolve in submission order.
   */
  #onRelay(frame: RelayedFrame): void {
    const me = this.#identity as Address;
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

  /** Whether a new item would be delivered live now (see `pushLive`). */
  canTakeLive(): boolean {
    return (
      this.#state === 'ready' &&
      this.#caughtUp &&
      !this.#pumping &&
      !this.#pumpAgain &&
      this.#conn.bufferedAmount <= MAX_SEND_BUFFER_BYTES
    );
  }

  /**
   * Delivers one new item now if this connection is caught up: authenticated, no
   * backlog being drained, room in its send buffer. Returns whether it did.
   */
  pushLive(item: MailItem): boolean {
    if (!this.canTakeLive()) return false;
    if (item.serverMessageId <= this.#cursor) return false;
    this.sendFrame({
      type: 'deliver',
      serverMessageId: item.serverMessageId,
      kind: item.kind,
      from: item.sender,
      timestamp: item.storedAt,
      payload: item.payload,
    });
    this.#cursor = item.serverMessageId;
    return true;
  }

  /** Not awaited: acks of one connection commit together in the next group commit. */
  #ackSoon(serverMessageId: number): void {
    const done = this.#onAck(serverMessageId).catch((err: unknown) => {
      this.#host.deps.logger.error({ err: (err as Error).message }, 'ack failed');
    });
    this.#acksInFlight.add(done);
    void done.finally(() => this.#acksInFlight.delete(done));
  }

  /** Not an async function of its own: one promise per ack, as on the hot path before. */
  #onAck(serverMessageId: number): Promise<unknown> {
    const me = this.#identity as Address;
    // The sender applied a kept receipt: only now may it go (at-least-once).
    if (this.#storedReceiptsSent.delete(serverMessageId)) {
      return this.#host.deps.store.settleReceipt(me, serverMessageId);
    }
    return this.#host.router.ack(me, serverMessageId);
  }

  /**
   * Sends a kept receipt as `receipt.stored`; it stays in storage until this device
   * acks its server id (see #onAck).
   */
  sendStoredReceipt(r: Receipt): void {
    if (this.#state === 'closed') return;
    this.#storedReceiptsSent.add(r.serverMessageId);
    this.sendFrame({
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
    const me = this.#identity as Address;
    let after = 0;
    for (;;) {
      const batch = await store.pendingReceipts(me, after, MAILBOX_BATCH);
      for (const r of batch) {
        while (this.#conn.bufferedAmount > MAX_SEND_BUFFER_BYTES && this.isOpen) {
          await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
        }
        if (!this.isOpen) return;
        this.sendStoredReceipt(r);
        after = r.receiptId;
      }
      if (batch.length < MAILBOX_BATCH) return;
    }
  }

  /** New mail for this device was stored: deliver it (in order, after any backlog). */
  notifyMail(): void {
    if (this.#state !== 'ready') return;
    this.#pump();
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
    const me = this.#identity as Address;
    do {
      this.#pumpAgain = false;
      for (;;) {
        if (!this.isOpen) return;
        const items: MailItem[] = await store.pending(me, this.#cursor, MAILBOX_BATCH);
        for (const item of items) {
          if (!this.isOpen) return;
          while (this.#conn.bufferedAmount > MAX_SEND_BUFFER_BYTES && this.isOpen) {
            await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
          }
          this.sendFrame({
            type: 'deliver',
            serverMessageId: item.serverMessageId,
            kind: item.kind,
            from: item.sender,
            timestamp: item.storedAt,
            payload: item.payload,
          });
          this.#cursor = item.serverMessageId;
        }
        if (items.length < MAILBOX_BATCH) break;
      }
    } while (this.#pumpAgain);
    this.#caughtUp = true;
    if (this.#emptyMarkerDue) {
      this.#emptyMarkerDue = false;
      this.sendFrame({ type: 'mailbox.empty' });
    }
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
