/**
 * One connection's authentication state machine:
 *
 *   hello -> (mtls) authenticated
 *   hello -> challenged -> register | login | resume -> authenticated
 *   authenticated -> (open mode, session expired) re-auth challenge -> login -> authenticated
 *
 * It owns everything that decides who the connection is: the negotiated version, the
 * pending challenge and its deadline, the session's expiry and the connection's
 * session token. It reaches the rest of the relay only through the `ConnectionHost` and
 * the few callbacks of `AuthOutput`; the connection shell (`session.ts`) asks it
 * whether a frame may pass and tells it about deadlines.
 *
 * Failures answer with the generic `auth_failed` (M13): an unknown name, a wrong key, a
 * taken name and a bad token take the same path.
 */
import { SUPPORTED_PROTOCOL_VERSIONS, type ClientFrame, type ServerFrame } from '@parley/wire';
import { zeroize } from '@parley/crypto';
import { newChallenge, sameKey, verifyAuthSignature, type IssuedChallenge } from './auth.js';
import type { AuditEventType } from './audit.js';
import type { PeerInfo } from './connection.js';
import type { ConnectionHost, RouterPeer } from './host.js';
import { CLOSE_POLICY, CLOSE_TRY_AGAIN } from './limits.js';
import type { IssuedToken } from './session-tokens.js';
import type { Address } from './storage/types.js';

/** Where the connection stands; `ready` = authenticated (possibly re-authenticating). */
export type AuthPhase = 'hello' | 'challenged' | 'ready';

/** The frames this machine handles. */
export type AuthFrame = Extract<ClientFrame, { type: 'hello' | 'register' | 'login' | 'resume' }>;

/** What the machine needs from its connection. */
export interface AuthOutput {
  /** The connection as the router registers it. */
  readonly peer: RouterPeer;
  readonly remote: string;
  readonly certificate: PeerInfo['certificate'];
  send(frame: ServerFrame): void;
  /** Audits, counts and closes. */
  reject(type: AuditEventType, code: string, closeCode: number): void;
  close(code: number): void;
  /** `welcome` was sent after a (first) authentication: start serving the device. */
  authenticated(address: Address): Promise<void>;
}

export class ConnectionAuth {
  readonly #host: ConnectionHost;
  readonly #out: AuthOutput;
  #phase: AuthPhase = 'hello';
  #version = 1;
  #identity: Address | undefined;
  #challenge: IssuedChallenge | undefined;
  /** Deadline for (re-)authentication; undefined while none is pending. */
  #deadline: number | undefined;
  #sessionExpiresAt = 0;
  /** Open mode: this connection's current session token (its hash, in the registry). */
  #token: IssuedToken | undefined;

  constructor(host: ConnectionHost, out: AuthOutput, connectedAt: number) {
    this.#host = host;
    this.#out = out;
    this.#deadline = connectedAt + host.deps.config.limits.authTimeoutMs;
  }

  get phase(): AuthPhase {
    return this.#phase;
  }

  /** The authenticated device (kept after close, so the core can unregister it). */
  get identity(): Address | undefined {
    return this.#identity;
  }

  /** Authenticated, and not in the middle of a re-authentication. */
  get ready(): boolean {
    return this.#phase === 'ready';
  }

  /**
   * Whether frames other than the auth frames may be handled now: after authentication
   * (also while a re-authentication is pending), or while the device registers with
   * the router.
   */
  get admitsFrames(): boolean {
    return this.#phase === 'ready' || (this.#phase === 'challenged' && !!this.#identity);
  }

  /** The (re-)authentication deadline passed: the reason to close, if any. */
  expired(now: number): 'no-hello' | 'no-login' | undefined {
    if (this.#deadline === undefined || now < this.#deadline) return undefined;
    return this.#phase === 'hello' ? 'no-hello' : 'no-login';
  }

  /** Re-authentication on long sessions (M6): open mode asks for a fresh signature. */
  reauthIfDue(now: number): void {
    const { config, crypto } = this.#host.deps;
    if (
      this.#phase !== 'ready' ||
      config.auth !== 'open' ||
      now < this.#sessionExpiresAt ||
      this.#deadline !== undefined
    ) {
      return;
    }
    this.#challenge = newChallenge(crypto, config.serverId, this.#version, now);
    this.#deadline = now + config.limits.authTimeoutMs;
    this.#out.send(this.#challenge.frame);
  }

  handle(frame: AuthFrame): Promise<void> {
    switch (frame.type) {
      case 'hello':
        return this.#onHello(frame);
      case 'register':
      case 'login':
        return this.#onAuth(frame);
      case 'resume':
        return this.#onResume(frame);
    }
  }

  async #onHello(frame: Extract<ClientFrame, { type: 'hello' }>): Promise<void> {
    if (this.#phase !== 'hello') {
      this.#out.reject('frame.unexpected', 'hello', CLOSE_POLICY);
      return;
    }
    const common = frame.protocolVersions.filter((v) => SUPPORTED_PROTOCOL_VERSIONS.includes(v));
    if (common.length === 0) {
      this.#out.send({ type: 'error', code: 'unsupported_version' });
      this.#out.reject('auth.failed', 'VERSION_UNSUPPORTED', CLOSE_POLICY);
      return;
    }
    this.#version = Math.max(...common);
    const { config, crypto, now } = this.#host.deps;
    if (config.auth === 'mtls') return this.#onCertificate();
    this.#challenge = newChallenge(crypto, config.serverId, this.#version, now());
    this.#phase = 'challenged';
    this.#out.send(this.#challenge.frame);
  }

  /** mtls: the transport verified the certificate; hello is all the device says. */
  async #onCertificate(): Promise<void> {
    const cert = this.#out.certificate;
    if (!cert) {
      // The transport never hands over an mtls connection without a certificate.
      this.#out.reject('auth.failed', 'no-certificate', CLOSE_POLICY);
      return;
    }
    const replaced = await this.#host.deps.store.upsertDevice({
      name: cert.name,
      deviceId: 1,
      identityKey: cert.identityKey,
      certificate: cert.der,
      registeredAt: this.#host.deps.now(),
    });
    // A new CA-certified key for the name (`pki issue --replace`): the old key's
    // prekeys were dropped with it; the device uploads its own after welcome.
    if (replaced) {
      this.#host.audit({
        type: 'identity.replaced',
        remote: this.#out.remote,
        identity: cert.name,
        code: cert.serial,
      });
    }
    await this.#authenticated({ name: cert.name, deviceId: 1 });
  }

  async #onAuth(frame: Extract<ClientFrame, { type: 'register' | 'login' }>): Promise<void> {
    const { config, store, now, crypto } = this.#host.deps;
    const challenge = this.#challenge;
    const reauth = this.#phase === 'ready' && this.#deadline !== undefined;
    if (config.auth !== 'open' || !challenge || (this.#phase !== 'challenged' && !reauth)) {
      this.#out.reject('frame.unexpected', frame.type, CLOSE_POLICY);
      return;
    }
    const address = { name: frame.name, deviceId: frame.deviceId };
    if (
      reauth &&
      (frame.type !== 'login' ||
        frame.name !== this.#identity?.name ||
        frame.deviceId !== this.#identity.deviceId)
    ) {
      this.#fail(frame.name, 'reauth-identity-changed');
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
      this.#fail(frame.name, 'bad-signature');
      return;
    }
    if (frame.type === 'register') {
      const result = await store.registerDevice({ ...address, identityKey, registeredAt: now() });
      if (!result.created && !sameKey(result.device.identityKey, identityKey)) {
        // The name belongs to another key: same answer as a bad signature.
        this.#fail(frame.name, 'name-taken');
        return;
      }
      if (result.created)
        this.#host.audit({ type: 'auth.register', remote: this.#out.remote, identity: frame.name });
    }
    if (reauth) {
      this.#deadline = undefined;
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
      this.#out.reject('frame.unexpected', frame.type, CLOSE_POLICY);
      return;
    }
    if (this.#phase !== 'challenged' || challenge.used) {
      // A re-authentication needs a fresh signature; a token cannot stand in for one.
      this.#fail(frame.name, 'resume-on-reauth');
      return;
    }
    challenge.used = true;
    const address = { name: frame.name, deviceId: frame.deviceId };
    const result = this.#host.tokens.redeem(address, frame.sessionToken);
    if (!result.ok) {
      this.#fail(frame.name, `resume-${result.reason}`);
      return;
    }
    await this.#authenticated(address, result.expiresAt);
  }

  #fail(name: string, code: string): void {
    this.#out.send({ type: 'error', code: 'auth_failed' });
    this.#host.audit({ type: 'auth.failed', remote: this.#out.remote, identity: name, code });
    this.#host.deps.metrics.rejections.inc({ reason: 'auth.failed' });
    this.#out.close(CLOSE_POLICY);
  }

  /**
   * The connection is authenticated as `address`. `resumedUntil`: it resumed a session
   * with a token, and keeps that session's signed expiry instead of starting a new one.
   */
  async #authenticated(address: Address, resumedUntil?: number): Promise<void> {
    const { config, now } = this.#host.deps;
    this.#identity = address;
    const granted = this.#host.router.register(this.#out.peer, address);
    if (!(typeof granted === 'boolean' ? granted : await granted)) {
      this.#identity = undefined;
      this.#out.send({ type: 'error', code: 'rate_limited' });
      this.#out.reject('conn.cap', 'per-identity', CLOSE_TRY_AGAIN);
      return;
    }
    this.#phase = 'ready';
    this.#deadline = undefined;
    this.#challenge = undefined;
    this.#sessionExpiresAt = resumedUntil ?? now() + config.limits.sessionTtlMs;
    this.#host.audit({
      type: 'auth.ok',
      remote: this.#out.remote,
      identity: address.name,
      ...(resumedUntil !== undefined ? { code: 'resume' } : {}),
    });
    this.#sendWelcome(address);
    await this.#out.authenticated(address);
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
    this.#out.send({
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
}
