/**
 * The TLS/WebSocket adapter (M2, M3, M4, M8): node:https + ws.
 *
 * - TLS 1.3 only (min and max version), so every connection gets a modern AEAD suite.
 * - mtls: the handshake itself requires a certificate from the private CA, checked
 *   against the CRL; anything else fails before any application byte. The relay then
 *   reads the verified certificate once more to bind the connection to its CN and key.
 * - TLS handshakes that do not finish in time are cut (slowloris); the HTTP upgrade
 *   must come quickly too.
 * - Connections from one remote address that have not authenticated yet are capped
 *   (`limits.maxUnauthenticatedPerAddress`), counted from TCP accept, before any TLS
 *   byte, so one machine cannot hold every connection slot with half-sent handshakes.
 * - ws refuses any message above one block before buffering it (`maxPayload`), and
 *   compression is off (it would make sizes depend on content: M28).
 * - The browser listener of an mtls relay (`certificateLogin`) asks for no client
 *   certificate: the device logs in inside the connection with its CA-signed certificate
 *   and a signature over a fresh challenge (certificate-login.ts), and is then bound to
 *   that certificate exactly like an mTLS connection.
 * Every refusal is audited; the peer learns nothing beyond a closed connection (a
 * refused certificate login is told why its own certificate failed).
 */
import { createServer, type Server } from 'node:https';
import type { X509Certificate } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { WebSocketServer, type WebSocket } from 'ws';
import { isValidName, type VerifiedClientCertificate } from '@parley/pki';
import { WS_PATH, tlsFragmentForBlocks } from '@parley/wire';
import { CertificateLoginGate, type CertificateCheck } from './certificate-login.js';
import type { PeerInfo } from './connection.js';
import { RejectionAuditLimiter } from './rejection-audit.js';
import type { RelayCore } from './relay.js';
import type { WebHandler } from './web.js';
import type { Session } from './session.js';

/** TLS material; PEM strings. */
export interface TlsMaterial {
  readonly key: string;
  readonly cert: string;
  readonly ca: string;
  readonly crl: string;
}

export interface TransportOptions {
  readonly host: string;
  readonly port: number;
  readonly mtls: boolean;
  readonly tls: TlsMaterial;
  /**
   * Optional full re-check of a peer certificate that TLS already accepted (the relay
   * passes none on the hot path; see {@link peerIdentity}).
   */
  readonly verifyPeer?: (der: Uint8Array) => VerifiedClientCertificate;
  /** Serves plain HTTPS requests (the web client); without it they get a 404. */
  readonly web?: WebHandler;
  /**
   * The browser listener of an mtls relay: no certificate in the TLS handshake (`mtls`
   * must be false); every connection first logs in with a device certificate that this
   * check accepts (certificate-login.ts).
   */
  readonly certificateLogin?: CertificateCheck;
}

export interface Transport {
  readonly port: number;
  /** Installs new TLS material (a re-read CRL) for new handshakes. */
  updateTls(tls: TlsMaterial): void;
  close(): Promise<void>;
}

const remoteOf = (s: {
  remoteAddress?: string | undefined;
  remotePort?: number | undefined;
}): string => `${s.remoteAddress ?? '?'}:${s.remotePort ?? 0}`;

function secureOptions(tls: TlsMaterial, mtls: boolean) {
  return {
    key: tls.key,
    cert: tls.cert,
    minVersion: 'TLSv1.3' as const,
    maxVersion: 'TLSv1.3' as const,
    // The certificate is checked by OpenSSL against the CA and CRL during the handshake;
    // the verdict is acted on in `secureConnection` below (before any application byte
    // is read), where the refused certificate is still readable for the audit record.
    // Node's own rejectUnauthorized does the same after the handshake, minus the record.
    ...(mtls ? { ca: tls.ca, crl: tls.crl, requestCert: true, rejectUnauthorized: false } : {}),
  };
}

/** Starts listening; resolves once bound. */
export async function startTransport(core: RelayCore, opts: TransportOptions): Promise<Transport> {
  const { limits } = core.deps.config;
  const server: Server = createServer({
    ...secureOptions(opts.tls, opts.mtls),
    handshakeTimeout: limits.handshakeTimeoutMs,
    // The upgrade request must arrive within the authentication budget.
    headersTimeout: limits.authTimeoutMs,
    requestTimeout: limits.authTimeoutMs,
    // Node checks those deadlines on this period (default 30 s): check often enough
    // that a slow request is cut close to its deadline.
    connectionsCheckingInterval: Math.max(
      50,
      Math.min(1_000, Math.floor(limits.authTimeoutMs / 2)),
    ),
  });
  server.maxConnections = limits.maxConnections;
  const preAuth = new PreAuthCounter(core, limits.maxUnauthenticatedPerAddress);
  // First listener of the server, so a refused socket is gone before TLS wraps it.
  server.prependListener('connection', (s: Socket) => preAuth.admit(s));
  // Every TCP socket, so that close() also ends those still in the TLS handshake.
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });

  const refusals = new RejectionAuditLimiter((e) => core.audit(e), core.deps.now);
  if (opts.mtls) {
    // First listener of `secureConnection`, so an unauthorized socket is gone before the
    // HTTP layer sees a byte of it.
    server.prependListener('secureConnection', (s: TLSSocket) => {
      if (s.authorized) return;
      const cert = s.getPeerX509Certificate();
      const name = cert ? /^CN=(.*)$/.exec(cert.subject.trim())?.[1] : undefined;
      refusals.record(
        {
          type: 'tls.rejected',
          remote: remoteOf(s),
          code: String(s.authorizationError ?? 'certificate'),
          ...(cert ? { serial: cert.serialNumber.toLowerCase() } : {}),
          ...(name !== undefined && isValidName(name) ? { identity: name } : {}),
        },
        addressOf(s.remoteAddress),
      );
      core.deps.metrics.rejections.inc({ reason: 'tls.rejected' });
      s.destroy();
    });
  }

  server.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
    // A socket refused by the per-address cap is already audited; its TLS wrapper then
    // reports the reset, which is no new event.
    if (preAuth.wasRefused(socket)) return;
    const timeout = err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT';
    core.audit({
      type: timeout ? 'tls.timeout' : 'tls.rejected',
      remote: remoteOf(socket),
      code: err.code ?? 'tls-error',
    });
    core.deps.metrics.rejections.inc({ reason: timeout ? 'tls.timeout' : 'tls.rejected' });
    socket.destroy();
  });
  server.on('drop', (data?: { remoteAddress?: string; remotePort?: number }) => {
    core.audit({ type: 'conn.cap', remote: remoteOf(data ?? {}), code: 'max-connections' });
    core.deps.metrics.rejections.inc({ reason: 'conn.cap' });
  });
  // HTTP-level failures after TLS: a request that never completes (slowloris on the
  // upgrade), malformed HTTP. Node answers and closes; we audit.
  server.on('clientError', (err: Error & { code?: string }, socket: Socket) => {
    if (preAuth.wasRefused(socket)) return;
    const timeout =
      err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'ERR_HTTP_HEADERS_TIMEOUT';
    core.audit({
      type: timeout ? 'auth.timeout' : 'frame.malformed',
      remote: remoteOf(socket),
      code: err.code ?? 'http-error',
    });
    core.deps.metrics.rejections.inc({ reason: timeout ? 'http.timeout' : 'http.malformed' });
    socket.destroy();
  });
  // Plain HTTPS requests: the web client when it is served, otherwise nothing useful.
  const web = opts.web;
  server.on('request', (req, res) => {
    if (web) return web(req, res);
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: limits.blockBytes,
    perMessageDeflate: false,
    clientTracking: false,
  });

  server.on('upgrade', (req, socket: Socket, head: Buffer) => {
    const tlsSocket = socket as TLSSocket;
    const remote = remoteOf(tlsSocket);
    const path = (req.url ?? '').split('?')[0];
    if (path !== WS_PATH) {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\n');
      return;
    }
    let peer: PeerInfo = { remote };
    if (opts.mtls) {
      // Unreachable while the secureConnection check runs first; kept so that no
      // unverified certificate can ever be bound to a connection.
      if (!tlsSocket.authorized) {
        socket.destroy();
        return;
      }
      try {
        const x509 = tlsSocket.getPeerX509Certificate();
        if (!x509) throw new Error('no certificate');
        const der = new Uint8Array(x509.raw);
        const v = opts.verifyPeer ? opts.verifyPeer(der) : peerIdentity(x509);
        peer = {
          remote,
          certificate: {
            name: v.name,
            identityKey: v.identityKey,
            der,
            serial: v.serial,
            notAfter: v.notAfter.getTime(),
          },
        };
      } catch (err) {
        core.audit({
          type: 'tls.rejected',
          remote,
          code: (err as { code?: string }).code ?? 'certificate',
        });
        socket.destroy();
        return;
      }
    }
    const release = preAuth.releaser(remote);
    // One block per TLS record, so record sizes never count the blocks of a burst (M42).
    tlsSocket.setMaxSendFragment(tlsFragmentForBlocks(limits.blockBytes, false));
    const check = opts.certificateLogin;
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      if (check) loginFirst(core, ws, socket, remote, check, release);
      else attach(core, ws, socket, peer, release);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });

  return {
    port: (server.address() as AddressInfo).port,
    updateTls: (tls) => server.setSecureContext(secureOptions(tls, opts.mtls)),
    close: () =>
      new Promise<void>((resolve) => {
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections();
        for (const s of sockets) s.destroy();
      }),
  };
}

/** `::ffff:1.2.3.4` (IPv4 on a dual-stack socket) and `1.2.3.4` are the same client. */
const addressOf = (a: string | undefined): string =>
  a === undefined ? '?' : a.startsWith('::ffff:') ? a.slice(7) : a;

/**
 * Counts not-yet-authenticated connections per remote address. A slot is taken at TCP
 * accept and given back when the session authenticates or the socket closes, whichever
 * comes first.
 */
class PreAuthCounter {
  readonly #perAddress = new Map<string, number>();
  /** Release function of each held slot, by remote `ip:port` (unique while connected). */
  readonly #held = new Map<string, () => void>();
  readonly #refused = new WeakSet<Socket>();

  constructor(
    private readonly core: RelayCore,
    private readonly cap: number,
  ) {}

  admit(socket: Socket): void {
    const address = addressOf(socket.remoteAddress);
    const remote = remoteOf(socket);
    const count = this.#perAddress.get(address) ?? 0;
    if (count >= this.cap) {
      this.core.audit({
        type: 'conn.cap',
        remote,
        code: 'max-unauthenticated-per-address',
        value: count,
      });
      this.core.deps.metrics.rejections.inc({ reason: 'conn.cap.address' });
      this.#refused.add(socket);
      socket.destroy();
      return;
    }
    this.#perAddress.set(address, count + 1);
    this.core.deps.metrics.unauthenticated.inc();
    let holding = true;
    const release = (): void => {
      if (!holding) return;
      holding = false;
      if (this.#held.get(remote) === release) this.#held.delete(remote);
      const left = (this.#perAddress.get(address) ?? 1) - 1;
      if (left > 0) this.#perAddress.set(address, left);
      else this.#perAddress.delete(address);
      this.core.deps.metrics.unauthenticated.dec();
    };
    this.#held.set(remote, release);
    socket.once('close', release);
  }

  /**
   * Whether `socket` (the TLS or HTTP view of a TCP connection) was refused at accept.
   * Node's TLS server wraps the TCP socket it was given and keeps it as `_parent`; where
   * that is absent the answer is false and the reset is merely audited twice.
   */
  wasRefused(socket: Socket): boolean {
    const parent = (socket as unknown as { _parent?: unknown })._parent;
    return parent instanceof Object && this.#refused.has(parent as Socket);
  }

  /** The release function of the connection from `remote`, or a no-op if none is held. */
  releaser(remote: string): () => void {
    return this.#held.get(remote) ?? (() => undefined);
  }
}

/**
 * The identity of a client certificate that OpenSSL has just verified in the handshake
 * (chain to our CA, validity period, CRL). What TLS does not check is checked here: the
 * key is Ed25519 (the device's E2EE identity key; this also rules out the relay's own
 * P-256 certificate) and the subject is exactly CN=<valid name>. Reading the already
 * parsed certificate keeps connection setup cheap (no second ASN.1 parse per connect).
 */
export function peerIdentity(cert: X509Certificate): VerifiedClientCertificate {
  if (cert.publicKey.asymmetricKeyType !== 'ed25519') {
    throw Object.assign(new Error('client key must be Ed25519'), { code: 'bad_usage' });
  }
  const name = /^CN=(.*)$/.exec(cert.subject.trim())?.[1];
  if (name === undefined || !isValidName(name)) {
    throw Object.assign(new Error('subject must be CN=<name>'), { code: 'bad_usage' });
  }
  const jwk = cert.publicKey.export({ format: 'jwk' });
  const identityKey = new Uint8Array(Buffer.from(jwk.x ?? '', 'base64url'));
  if (identityKey.length !== 32) {
    throw Object.assign(new Error('bad Ed25519 key'), { code: 'bad_usage' });
  }
  return {
    name,
    identityKey,
    notAfter: new Date(cert.validTo),
    serial: cert.serialNumber.toLowerCase(),
  };
}

/** Runs the certificate login on `ws`, then wires it to a session bound to that certificate. */
function loginFirst(
  core: RelayCore,
  ws: WebSocket,
  socket: Socket,
  remote: string,
  check: CertificateCheck,
  releasePreAuth: () => void,
): void {
  const onMessage = (data: unknown, isBinary: boolean): void => gate.onMessage(data, isBinary);
  const onClose = (): void => gate.closed();
  const onError = (): void => {
    gate.closed();
    ws.terminate();
  };
  const gate = new CertificateLoginGate(
    core,
    {
      remote,
      send: (block) => ws.send(block, { binary: true }),
      close: (code) => {
        ws.close(code);
        setTimeout(() => ws.terminate(), 1_000).unref();
      },
    },
    check,
    (peer) => {
      ws.off('message', onMessage);
      ws.off('close', onClose);
      ws.off('error', onError);
      const session = attach(core, ws, socket, peer, releasePreAuth);
      return (data, isBinary) => session.onMessage(data, isBinary);
    },
  );
  ws.on('message', onMessage);
  ws.on('close', onClose);
  ws.on('error', onError);
}

/**
 * Wires one WebSocket to a core session.
 *
 * Outgoing blocks are coalesced per event-loop turn: the first send of a turn corks the
 * TLS socket and the check phase of the same turn uncorks it, so a `deliver` and the
 * receipts that one turn produces for a connection leave as one TLS write (one
 * encryption call and one syscall) instead of one each. ws writes each message as its
 * own WebSocket frame either way; nothing is delayed beyond the current turn.
 */
function attach(
  core: RelayCore,
  ws: WebSocket,
  socket: Socket,
  peer: PeerInfo,
  releasePreAuth: () => void,
): Session {
  let corked = false;
  const uncork = (): void => {
    corked = false;
    socket.uncork();
  };
  // The session sends `welcome` right after it authenticates: the first send that finds
  // an identity gives the per-address pre-authentication slot back.
  let preAuth = true;
  const session: Session = core.accept({
    peer,
    send: (block) => {
      if (preAuth && session.identity !== undefined) {
        preAuth = false;
        releasePreAuth();
      }
      if (!corked) {
        corked = true;
        socket.cork();
        setImmediate(uncork);
      }
      ws.send(block, { binary: true });
    },
    get bufferedAmount() {
      return ws.bufferedAmount;
    },
    close: (code) => {
      ws.close(code);
      // A peer that ignores the closing handshake is cut after a short grace period.
      setTimeout(() => ws.terminate(), 1_000).unref();
    },
  });
  ws.on('message', (data, isBinary) => session.onMessage(data, isBinary));
  ws.on('error', (err: Error & { code?: string }) => {
    if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
      session.onOversize();
      return;
    }
    if (session.isOpen) {
      core.audit({ type: 'frame.malformed', remote: peer.remote, code: err.code ?? 'ws-error' });
      session.close(1002);
    }
  });
  ws.on('close', () => session.onClose());
  return session;
}
