/**
 * Authenticating a connection (docs/client.md, "Connection and transport"; wire.md
 * §4.1): answer the relay's `challenge` by registering, logging in (a signature over
 * `authSignedData`) or, in open mode, resuming with the single-use token of the last
 * `welcome`. An mtls device that cannot present its certificate in the TLS handshake
 * (a browser, on the relay's browser listener) answers with `cert.login`: the
 * certificate and the same signature as a login.
 *
 * Owns: the resume ticket (memory only, never stored or logged) and whether this
 * connection is resuming. Knows nothing of messages or keys beyond the identity key.
 */
import { zeroize } from '@parley/crypto';
import { authSignedData } from '@parley/wire';
import type { CoreContext } from './context.js';
import { ResumeTicket } from './resume-ticket.js';

export class Auth {
  /**
   * Open mode: the single-use session token of the last `welcome`, spent on the next
   * connection's challenge instead of a signature. Memory only, never stored or logged.
   */
  private ticket: ResumeTicket | undefined;
  /** This connection answered its challenge with `resume` and awaits the verdict. */
  private resuming = false;

  constructor(
    private readonly ctx: Pick<CoreContext, 'account' | 'clock' | 'crypto' | 'send'>,
    /** mtls without a TLS client certificate: our CA-signed certificate (DER) to log in with. */
    private readonly loginCertificate?: Uint8Array,
  ) {}

  /** `authenticating`: the challenge opens a new connection (not a re-authentication). */
  answerChallenge(
    nonce: Uint8Array,
    timestamp: number,
    serverId: string,
    authenticating: boolean,
  ): void {
    const { ctx } = this;
    const a = ctx.account();
    const now = ctx.clock();
    // A token is spent at most once, whatever happens next.
    const ticket = this.ticket;
    this.ticket = undefined;
    if (
      ticket !== undefined &&
      authenticating &&
      a.info.mode === 'open' &&
      a.info.registered &&
      ticket.usableAt(timestamp)
    ) {
      // A reconnect within the signed session: no signature needed. If the relay
      // refuses (restarted, token expired or evicted) it closes the connection and the
      // next connection signs, as there is no ticket any more.
      this.resuming = true;
      ctx.send({
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
    const certificate = a.info.mode === 'mtls' ? this.loginCertificate : undefined;
    const register = certificate === undefined && !a.info.registered;
    const signed = authSignedData({
      purpose: register ? 'register' : 'login',
      challenge: { nonce, timestamp, serverId },
      name: a.name,
      deviceId: a.deviceId,
      timestamp: now,
      ...(register ? { identityKey: a.keyPair.publicKey } : {}),
    });
    const signature = ctx.crypto.ed25519.sign(a.keyPair.secretKey, signed);
    if (certificate !== undefined)
      ctx.send({ type: 'cert.login', ...base, certificate, signature });
    else if (register)
      ctx.send({ type: 'register', ...base, identityKey: a.keyPair.publicKey, signature });
    else ctx.send({ type: 'login', ...base, signature });
  }

  /** `welcome`: keep its token for the next connection (open mode). */
  welcomed(sessionToken: Uint8Array, expiresAt: number): void {
    this.resuming = false;
    this.ticket?.dispose();
    // mtls welcomes carry no token: the certificate authenticates every handshake.
    this.ticket =
      this.ctx.account().info.mode === 'open' && sessionToken.length > 0
        ? new ResumeTicket(sessionToken, expiresAt)
        : undefined;
    zeroize(sessionToken);
  }

  /**
   * `auth_failed` while authenticating: true if only our resume token was refused (the
   * relay closes this connection and the next one signs), which is no verdict on our
   * identity key.
   */
  resumeRefused(): boolean {
    if (!this.resuming) return false;
    this.resuming = false;
    return true;
  }

  connectionClosed(): void {
    this.resuming = false;
  }

  dispose(): void {
    this.ticket?.dispose();
    this.ticket = undefined;
  }
}
