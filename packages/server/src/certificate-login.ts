/**
 * Certificate login for the browser listener of an mtls relay: a browser cannot present
 * a client certificate in the TLS handshake, so it presents its CA-signed device
 * certificate inside the connection instead, with a signature over a fresh challenge.
 *
 *   C: hello        S: challenge (fresh nonce, relay time, serverId)
 *   C: cert.login   S: (certificate and signature good) the session takes over: welcome
 *                   S: cert.refused(reason), close                     (otherwise)
 *
 * This gate runs before any relay session exists. The certificate is checked by the
 * same verifier the relay re-checks mTLS sessions with (chain to the CA, validity, the
 * current CRL, Ed25519 key, subject CN=<name>); the signature is the open-mode login's
 * (`authSignedData`, purpose login) by the certified key. A passing connection is then
 * handed to the core exactly like an mTLS one: with the verified certificate as its peer
 * identity, and its `hello` replayed to the new session. So the key directory, CRL
 * revalidation and certificate expiry apply to it unchanged.
 */
import { PkiError, type VerifiedClientCertificate } from '@parley/pki';
import {
  FrameReader,
  FrameWriter,
  SUPPORTED_PROTOCOL_VERSIONS,
  WireError,
  checkFrameFreshness,
  negotiateVersion,
  validateBlockSize,
  type CertRefusalReason,
  type ClientFrame,
  type ServerFrame,
} from '@parley/wire';
import { newChallenge, verifyAuthSignature, type IssuedChallenge } from './auth.js';
import type { PeerInfo } from './connection.js';
import type { RelayCore } from './relay.js';

/** Checks a device certificate presented in a `cert.login`; throws a `PkiError` if it fails. */
export type CertificateCheck = (der: Uint8Array, now: Date) => VerifiedClientCertificate;

/** Close code for a refused or malformed login (WebSocket 1008 policy violation). */
const CLOSE_POLICY = 1008;
/** The only device id of a name (one device per certificate). */
const DEVICE_ID = 1;
/** Blocks a login may take: hello and cert.login, each a few blocks at most. */
const MAX_LOGIN_BLOCKS = 16;

/** The socket side of one browser connection, as the gate needs it. */
export interface LoginSocket {
  readonly remote: string;
  send(block: Uint8Array): void;
  close(code: number): void;
}

/** How the PKI verdict reads on the wire: the device learns why its own certificate failed. */
function refusalOf(err: unknown): CertRefusalReason {
  if (err instanceof PkiError) {
    if (err.code === 'revoked') return 'revoked';
    if (err.code === 'expired') return 'expired';
  }
  return 'untrusted';
}

/**
 * One connection's login. Feed it every message until `onMessage` returns `'done'`;
 * after that the messages belong to the session `admit` created.
 */
export class CertificateLoginGate {
  readonly #reader: FrameReader<'toServer'>;
  readonly #writer: FrameWriter;
  readonly #hello: Uint8Array[] = [];
  #challenge: IssuedChallenge | undefined;
  #state: 'hello' | 'challenged' | 'busy' | 'done' = 'hello';
  #blocks = 0;
  readonly #deadline: ReturnType<typeof setTimeout>;

  constructor(
    private readonly core: RelayCore,
    private readonly socket: LoginSocket,
    private readonly check: CertificateCheck,
    /** Hands the authenticated connection to the core; returns what takes its messages. */
    private readonly admit: (peer: PeerInfo) => (data: unknown, isBinary: boolean) => void,
  ) {
    const { config, now } = core.deps;
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
    this.#deadline = setTimeout(
      () => this.#reject('auth.timeout', this.#state === 'hello' ? 'no-hello' : 'no-login'),
      config.limits.authTimeoutMs,
    );
    this.#deadline.unref();
  }

  /** The connection closed before the login finished. */
  closed(): void {
    this.#finish();
  }

  onMessage(data: unknown, isBinary: boolean): void {
    if (this.#state === 'done') return;
    const { limits } = this.core.deps.config;
    const checked = validateBlockSize(data, isBinary, limits.blockBytes);
    if (!checked.ok) return this.#reject('frame.malformed', checked.error.code);
    if (++this.#blocks > MAX_LOGIN_BLOCKS) return this.#reject('rate.flood', 'login-blocks');
    if (this.#state === 'hello') this.#hello.push(checked.value.slice());
    let frame: ClientFrame | undefined;
    try {
      frame = this.#reader.push(checked.value);
    } catch (err) {
      return this.#reject('frame.malformed', err instanceof WireError ? err.code : 'INTERNAL');
    }
    if (frame === undefined) return;
    if (this.#state === 'hello' && frame.type === 'hello') return this.#onHello(frame);
    if (this.#state === 'challenged' && frame.type === 'cert.login') {
      this.#state = 'busy';
      return this.#onLogin(frame);
    }
    this.#reject('frame.unexpected', frame.type);
  }

  #onHello(frame: Extract<ClientFrame, { type: 'hello' }>): void {
    const { crypto, config, now } = this.core.deps;
    let version: number;
    try {
      checkFrameFreshness(frame, now(), config.limits.freshnessWindowMs);
      version = negotiateVersion(frame.protocolVersions, SUPPORTED_PROTOCOL_VERSIONS);
    } catch (err) {
      this.#send({ type: 'error', code: 'auth_failed' });
      return this.#reject('auth.failed', err instanceof WireError ? err.code : 'bad-hello');
    }
    this.#challenge = newChallenge(crypto, config.serverId, version, now());
    this.#state = 'challenged';
    this.#send(this.#challenge.frame);
  }

  #onLogin(frame: Extract<ClientFrame, { type: 'cert.login' }>): void {
    const { crypto, config, now } = this.core.deps;
    const challenge = this.#challenge;
    if (!challenge) return this.#reject('frame.unexpected', frame.type);
    try {
      checkFrameFreshness(frame, now(), config.limits.freshnessWindowMs);
    } catch {
      this.#send({ type: 'error', code: 'auth_failed' });
      return this.#reject('frame.malformed', 'STALE_TIMESTAMP', frame.name);
    }
    let cert: VerifiedClientCertificate;
    try {
      cert = this.check(frame.certificate, new Date(now()));
    } catch (err) {
      const reason = refusalOf(err);
      return this.#refuse(reason, frame.name, (err as { code?: string }).code ?? reason);
    }
    const signed = verifyAuthSignature(crypto, challenge, {
      purpose: 'login',
      name: frame.name,
      deviceId: frame.deviceId,
      identityKey: cert.identityKey,
      timestamp: frame.timestamp,
      signature: frame.signature,
    });
    if (!signed || cert.name !== frame.name || frame.deviceId !== DEVICE_ID) {
      return this.#refuse('mismatch', frame.name, signed ? 'name-mismatch' : 'bad-signature');
    }
    this.#finish();
    const deliver = this.admit({
      remote: this.socket.remote,
      certificate: {
        name: cert.name,
        identityKey: cert.identityKey,
        der: frame.certificate.slice(),
        serial: cert.serial,
        notAfter: cert.notAfter.getTime(),
      },
    });
    // The session starts where an mTLS connection does: at its `hello`.
    for (const block of this.#hello.splice(0)) deliver(block, true);
  }

  #send(frame: ServerFrame): void {
    for (const block of this.#writer.write(frame)) this.socket.send(block);
  }

  #refuse(reason: CertRefusalReason, name: string, code: string): void {
    this.#send({ type: 'cert.refused', reason });
    this.#reject('auth.failed', code, name);
  }

  #reject(
    type: 'auth.failed' | 'auth.timeout' | 'frame.malformed' | 'frame.unexpected' | 'rate.flood',
    code: string,
    identity?: string,
  ): void {
    if (this.#state === 'done') return;
    this.#finish();
    this.core.audit({
      type,
      remote: this.socket.remote,
      code,
      ...(identity !== undefined ? { identity } : {}),
    });
    this.core.deps.metrics.rejections.inc({ reason: type });
    this.socket.close(CLOSE_POLICY);
  }

  #finish(): void {
    this.#state = 'done';
    clearTimeout(this.#deadline);
    this.#reader.close();
  }
}
