/**
 * The relay core: everything between "a connection delivered a block" and "these
 * blocks go to these connections", independent of TLS and WebSockets. It owns the
 * registry of authenticated sessions (presence), per-identity limits, the periodic
 * sweep (timeouts, pings, mail expiry) and routing between sessions.
 *
 * It must not know: how bytes reach the socket, how certificates are checked (the
 * transport hands over a verified identity), or anything inside payloads.
 */
import type { CryptoProvider } from '@parley/crypto';
import type { AuditEvent, AuditLog } from './audit.js';
import type { RelayConfig } from './config.js';
import type { Connection } from './connection.js';
import { CLOSE_GOING_AWAY } from './limits.js';
import type { Logger, RelayMetrics } from './observability.js';
import { LocalQuota } from './bus/local.js';
import type { IdentityQuota } from './bus/types.js';
import { Session } from './session.js';
import type { Address, RelayStore } from './storage/types.js';

/** Dependencies of the core; clock and randomness are parameters (tests use fakes). */
export interface RelayCoreDeps {
  readonly config: RelayConfig;
  readonly store: RelayStore;
  readonly audit: AuditLog;
  readonly metrics: RelayMetrics;
  readonly logger: Logger;
  readonly crypto: CryptoProvider;
  readonly now: () => number;
  /** Per-identity limits across nodes; default: this node's own, in process. */
  readonly quota?: IdentityQuota;
}

/** Smallest and largest sweep period: timers fire this often to check deadlines. */
const MIN_SWEEP_MS = 20;
const MAX_SWEEP_MS = 1_000;

const NO_SESSIONS: readonly Session[] = Object.freeze([]);

function deviceKey(address: Address): string {
  return `${address.deviceId}:${address.name}`;
}

/** New mail whose commit is still in flight. */
export interface InflightMail {
  readonly id: number;
  /** Connections that already received it live. */
  readonly liveTo: Set<Session>;
  /** Settles once the sender has been told "queued" (or the store failed). */
  queuedSent: Promise<void> | undefined;
}

export class RelayCore {
  #crl: Uint8Array | undefined;
  readonly deps: RelayCoreDeps;
  readonly #sessions = new Set<Session>();
  readonly #byName = new Map<string, Set<Session>>();
  /**
   * Authenticated sessions per device ("deviceId:name"). Each list is replaced, never
   * changed in place, so `sessionsOf` can hand it out without a copy (it is looked up
   * several times per relayed message) and callers may iterate it while sessions come
   * and go.
   */
  readonly #byDevice = new Map<string, readonly Session[]>();
  /** `prune` (optional) drops idle per-identity state; the sweep calls it. */
  readonly #quota: IdentityQuota & { prune?(): void };
  /** Sessions holding one of their identity's connections in the quota. */
  readonly #counted = new WeakSet<Session>();
  /** Per recipient device, mail still being committed, in server-id order. */
  readonly #inflight = new Map<string, InflightMail[]>();
  readonly #inflightById = new Map<number, InflightMail>();
  readonly #sweepTimer: ReturnType<typeof setInterval>;
  #lastExpiry = 0;
  #closing = false;

  constructor(deps: RelayCoreDeps) {
    this.deps = deps;
    this.#quota =
      deps.quota ??
      new LocalQuota(
        {
          maxBlocksPerIdentity: deps.config.rateLimit.maxBlocksPerIdentity,
          windowMs: deps.config.rateLimit.windowMs,
          maxConnectionsPerIdentity: deps.config.limits.maxConnectionsPerIdentity,
        },
        deps.now,
      );
    const l = deps.config.limits;
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

  /**
   * Called by a session once authenticated. Resolves false when the identity is at its
   * cap, on this node or (with a shared bus) across nodes.
   */
  async register(session: Session, name: string): Promise<boolean> {
    if ((this.#byName.get(name)?.size ?? 0) >= this.deps.config.limits.maxConnectionsPerIdentity)
      return false;
    if (!(await this.#quota.acquireConnection(name))) return false;
    const set = this.#byName.get(name) ?? new Set<Session>();
    if (!session.isOpen || set.size >= this.deps.config.limits.maxConnectionsPerIdentity) {
      this.#quota.releaseConnection(name);
      return false;
    }
    this.#counted.add(session);
    const first = set.size === 0;
    set.add(session);
    this.#byName.set(name, set);
    const device = session.identity;
    if (device) {
      const k = deviceKey(device);
      this.#byDevice.set(k, [...(this.#byDevice.get(k) ?? []), session]);
    }
    this.deps.metrics.authenticated.inc();
    if (first) this.#broadcastPresence('join', name, session);
    return true;
  }

  /** Called by a session when its connection is gone. */
  forget(session: Session): void {
    this.#sessions.delete(session);
    this.deps.metrics.connections.set(this.#sessions.size);
    const name = session.identity?.name;
    if (name === undefined) return;
    const set = this.#byName.get(name);
    if (!set?.delete(session)) return;
    if (this.#counted.delete(session)) this.#quota.releaseConnection(name);
    const k = deviceKey(session.identity as Address);
    const rest = (this.#byDevice.get(k) ?? []).filter((s) => s !== session);
    if (rest.length > 0) this.#byDevice.set(k, rest);
    else this.#byDevice.delete(k);
    this.deps.metrics.authenticated.dec();
    if (set.size === 0) {
      this.#byName.delete(name);
      if (!this.#closing) this.#broadcastPresence('leave', name, session);
    }
  }

  /** Counts one block against the identity's flood limit (all its connections together). */
  takeIdentityBlock(name: string): boolean {
    return this.#quota.takeBlock(name);
  }

  /** Sessions of one device address that are authenticated now (do not modify). */
  sessionsOf(address: Address): readonly Session[] {
    return this.#byDevice.get(deviceKey(address)) ?? NO_SESSIONS;
  }

  /** Registers new mail for `recipient` whose commit is in flight. */
  beginInflight(recipient: Address, id: number): InflightMail {
    const entry: InflightMail = { id, liveTo: new Set(), queuedSent: undefined };
    const k = deviceKey(recipient);
    const list = this.#inflight.get(k);
    if (list) list.push(entry);
    else this.#inflight.set(k, [entry]);
    this.#inflightById.set(id, entry);
    return entry;
  }

  endInflight(recipient: Address, entry: InflightMail): void {
    const k = deviceKey(recipient);
    const list = this.#inflight.get(k);
    const i = list?.indexOf(entry) ?? -1;
    if (list && i >= 0) list.splice(i, 1);
    if (list?.length === 0) this.#inflight.delete(k);
    this.#inflightById.delete(entry.id);
  }

  inflight(id: number): InflightMail | undefined {
    return this.#inflightById.get(id);
  }

  /**
   * Whether `session` may receive `entry` live: only if it received every earlier
   * in-flight item for this device live too. Otherwise an earlier item will reach it
   * from storage after its commit, and a live delivery now would overtake it.
   */
  canGoLive(recipient: Address, session: Session, entry: InflightMail): boolean {
    for (const e of this.#inflight.get(deviceKey(recipient)) ?? []) {
      if (e === entry) return true;
      if (!e.liveTo.has(session)) return false;
    }
    return true;
  }

  /**
   * Whether a new item for `recipient` could go live to `session` now: it received
   * every item still in flight for that device live (see `canGoLive`).
   */
  nextCanGoLive(recipient: Address, session: Session): boolean {
    for (const e of this.#inflight.get(deviceKey(recipient)) ?? []) {
      if (!e.liveTo.has(session)) return false;
    }
    return true;
  }

  /** Names online, sorted. */
  onlineNames(): string[] {
    return [...this.#byName.keys()].sort();
  }

  #broadcastPresence(event: 'join' | 'leave', name: string, except: Session): void {
    if (!this.deps.config.presenceBroadcast) return;
    if (this.#byName.size > this.deps.config.limits.presenceBroadcastMaxOnline) return;
    for (const set of this.#byName.values()) {
      for (const s of set) if (s !== except) s.sendFrame({ type: 'presence', event, name });
    }
  }

  /** Runs deadlines: auth, idle and ping, reassembly; drops idle limiters; expires mail. */
  #sweep(): void {
    const now = this.deps.now();
    for (const s of this.#sessions) s.tick(now);
    this.#quota.prune?.();
    if (now - this.#lastExpiry >= this.deps.config.limits.expirySweepMs) {
      this.#lastExpiry = now;
      this.deps.store.expire(now).then(
        (n) => {
          if (n > 0) this.deps.logger.info({ expired: n }, 'expired undelivered mail');
        },
        (err: unknown) => this.deps.logger.error({ err: (err as Error).message }, 'expiry failed'),
      );
    }
  }

  /** Closes every connection (going away) and stops the sweep. */
  shutdown(): void {
    this.#closing = true;
    clearInterval(this.#sweepTimer);
    for (const s of [...this.#sessions]) s.close(CLOSE_GOING_AWAY);
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
   * the CRL's signature against its own CA.
   */
  revalidate(stillValid: (certificateDer: Uint8Array) => boolean): number {
    let closed = 0;
    const crl = this.#crl;
    if (crl !== undefined) {
      for (const s of this.#sessions) {
        if (s.identity !== undefined && s.isOpen) s.sendFrame({ type: 'crl', requestId: 0, crl });
      }
    }
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
