/**
 * The relay core: everything between "a connection delivered a block" and "these
 * blocks go to these connections", independent of TLS and WebSockets. It owns the set
 * of connections, the periodic sweep (timeouts, pings, mail expiry), the CRL served and
 * enforced, and it composes the parts a connection talks to through `ConnectionHost`:
 * the mailbox router (mail, receipts, presence, nudges; `mailbox-router.ts`), the key
 * directory (`key-directory.ts`), the session-token registry and the identity quota of
 * the bus between nodes (`bus/`).
 *
 * It must not know: how bytes reach the socket, how certificates are checked (the
 * transport hands over a verified identity), or anything inside payloads.
 */
import type { CryptoProvider } from '@parley/crypto';
import type { AuditEvent } from './audit.js';
import { MemoryBlobStore } from './blobs/memory.js';
import type { BlobStore } from './blobs/types.js';
import { LocalBus, LocalQuota } from './bus/local.js';
import type { IdentityQuota, RelayBus } from './bus/types.js';
import type { RelayConfig } from './config.js';
import type { Connection } from './connection.js';
import type {
  AuditSink,
  ConnectionHost,
  CoreMetrics,
  HostDeps,
  RouterPeer,
  TokenRegistry,
} from './host.js';
import { KeyDirectory } from './key-directory.js';
import { CLOSE_GOING_AWAY } from './limits.js';
import { MailboxRouter } from './mailbox-router.js';
import type { Logger } from './observability.js';
import { Session } from './session.js';
import { SessionTokenRegistry } from './session-tokens.js';
import type { RelayStore } from './storage/types.js';

/** Dependencies of the core; clock and randomness are parameters (tests use fakes). */
export interface RelayCoreDeps {
  readonly config: RelayConfig;
  readonly store: RelayStore;
  /** Attachment blobs; a memory store when absent (cores built by tests). */
  readonly blobs?: BlobStore;
  readonly audit: AuditSink;
  readonly metrics: CoreMetrics;
  readonly logger: Logger;
  readonly crypto: CryptoProvider;
  readonly now: () => number;
  /**
   * The bus to other relay nodes. Default: a standalone `LocalBus` (this relay alone),
   * which the core also closes on shutdown; a bus passed in is the caller's to close.
   */
  readonly bus?: RelayBus;
  /** Open-mode session tokens. Default: a fresh in-memory registry (per node). */
  readonly tokens?: TokenRegistry;
}

/** Smallest and largest sweep period: timers fire this often to check deadlines. */
const MIN_SWEEP_MS = 20;
const MAX_SWEEP_MS = 1_000;

export class RelayCore implements ConnectionHost {
  #crl: Uint8Array | undefined;
  readonly deps: RelayCoreDeps & HostDeps;
  readonly router: MailboxRouter;
  readonly keys: KeyDirectory;
  readonly tokens: TokenRegistry;
  readonly quota: IdentityQuota;
  readonly bus: RelayBus;
  readonly blobs: BlobStore;
  readonly #ownBus: boolean;
  readonly #sessions = new Set<Session>();
  readonly #sweepTimer: ReturnType<typeof setInterval>;
  #lastExpiry = 0;

  constructor(deps: RelayCoreDeps) {
    this.deps = deps;
    this.blobs = deps.blobs ?? new MemoryBlobStore();
    const { config, now } = deps;
    const l = config.limits;
    this.#ownBus = deps.bus === undefined;
    this.bus =
      deps.bus ??
      LocalBus.standalone(
        config.serverId,
        {
          maxBlocksPerIdentity: config.rateLimit.maxBlocksPerIdentity,
          windowMs: config.rateLimit.windowMs,
          maxConnectionsPerIdentity: l.maxConnectionsPerIdentity,
        },
        now,
      );
    this.quota = this.bus.quota;
    this.tokens = deps.tokens ?? new SessionTokenRegistry({ crypto: deps.crypto, now });
    this.router = new MailboxRouter({ ...deps, bus: this.bus, audit: (e) => this.audit(e) });
    this.keys = new KeyDirectory(deps, (e) => this.audit(e), this.router);
    const sweepMs = Math.max(
      MIN_SWEEP_MS,
      Math.min(MAX_SWEEP_MS, Math.floor(Math.min(l.authTimeoutMs, l.idleTimeoutMs / 3) / 4)),
    );
    this.#sweepTimer = setInterval(() => this.#sweep(), sweepMs);
    this.#sweepTimer.unref();
  }

  /** Writes an audit record and counts it. Never throws into the caller. */
  audit(event: AuditEvent): void {
    try {
      this.deps.audit.write(event);
      this.deps.metrics.auditRecords.inc();
    } catch (err) {
      this.deps.logger.error({ err: (err as Error).message }, 'audit write failed');
    }
    this.deps.logger.info(
      { audit: event.type, remote: event.remote, identity: event.identity, code: event.code },
      'security event',
    );
  }

  /** A new transport connection: returns the session that will receive its blocks. */
  accept(conn: Connection): Session {
    const session = new Session(this, conn);
    this.#sessions.add(session);
    this.deps.metrics.connections.set(this.#sessions.size);
    return session;
  }

  get connectionCount(): number {
    return this.#sessions.size;
  }

  /** Called by a session when its connection is gone. */
  closed(peer: RouterPeer): void {
    if (!this.#sessions.delete(peer as Session)) return;
    this.deps.metrics.connections.set(this.#sessions.size);
    this.router.forget(peer);
  }

  /** Names online, sorted. */
  onlineNames(): string[] {
    return this.router.onlineNames();
  }

  /** Runs deadlines: auth, idle and ping, reassembly; drops idle limiters; expires mail. */
  #sweep(): void {
    const now = this.deps.now();
    for (const s of this.#sessions) s.tick(now);
    if (this.quota instanceof LocalQuota) this.quota.prune();
    if (now - this.#lastExpiry >= this.deps.config.limits.expirySweepMs) {
      this.#lastExpiry = now;
      this.deps.store.expire(now).then(
        (n) => {
          if (n > 0) this.deps.logger.info({ expired: n }, 'expired undelivered mail');
        },
        (err: unknown) => this.deps.logger.error({ err: (err as Error).message }, 'expiry failed'),
      );
      this.blobs.expire(now).then(
        (n) => {
          if (n > 0) this.deps.logger.info({ expired: n }, 'expired attachment blobs');
        },
        (err: unknown) =>
          this.deps.logger.error({ err: (err as Error).message }, 'blob expiry failed'),
      );
    }
  }

  /** Closes every connection (going away) and stops the sweep. */
  shutdown(): void {
    this.router.close();
    clearInterval(this.#sweepTimer);
    for (const s of [...this.#sessions]) s.close(CLOSE_GOING_AWAY);
    if (this.#ownBus) void this.bus.close();
  }

  /** The CRL (DER) this relay enforces, served in `crl` frames; undefined in open mode. */
  get crl(): Uint8Array | undefined {
    return this.#crl;
  }

  /** Installs the CRL served to clients (start, and before every `revalidate`). */
  setCrl(der: Uint8Array): void {
    this.#crl = der;
  }

  /**
   * Re-checks mtls sessions after a CRL change; closes those whose certificate no longer
   * verifies. Every authenticated session first gets the new CRL, so a revoked device
   * can tell its user why it was cut off, and its contacts learn of it, each checking
   * the CRL's signature against its own CA. `announce`: tell the other nodes to reload
   * theirs (false when this reload was itself caused by another node's).
   */
  revalidate(stillValid: (certificateDer: Uint8Array) => boolean, announce = true): number {
    let closed = 0;
    const crl = this.#crl;
    if (crl !== undefined) this.router.pushCrl(crl, this.#sessions, announce);
    for (const s of [...this.#sessions]) {
      const der = s.peerCertificate;
      if (der !== undefined && !stillValid(der)) {
        this.audit({
          type: 'tls.rejected',
          remote: s.remote,
          code: 'revoked-while-connected',
          ...(s.identity ? { identity: s.identity.name } : {}),
        });
        s.close(CLOSE_GOING_AWAY);
        closed++;
      }
    }
    return closed;
  }
}
