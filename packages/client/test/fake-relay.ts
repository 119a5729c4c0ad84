/**
 * An in-process relay for client-core tests: the frame semantics of the real relay
 * (authenticate, key directory, store-and-forward mailbox, queued/delivered receipts,
 * presence) without sockets or TLS, so core behaviour (ordering, retries, dedupe,
 * restarts) can be exercised quickly and deterministically. The real relay is covered
 * by the end-to-end tests in apps/cli/test and packages/client/test/e2e*.test.ts.
 */
import { toHex } from '@parley/crypto';
import type { ClientFrame, KeysBundleFrame, ServerFrame } from '@parley/wire';
import type { ClientTransport, ParleyClient } from '@parley/client';

interface Stored {
  readonly serverMessageId: number;
  readonly frame: ServerFrame & { type: 'deliver' };
  readonly sender: string;
  readonly clientMessageId: Uint8Array;
}

interface UserRecord {
  identityKey: Uint8Array;
  signedPrekey?: KeysBundleFrame['signedPrekey'];
  pqLastResort?: KeysBundleFrame['pqPrekey'];
  oneTime: NonNullable<KeysBundleFrame['oneTimePrekey']>[];
  oneTimePq: KeysBundleFrame['pqPrekey'][];
  mailbox: Stored[];
  pendingReceipts: (ServerFrame & { type: 'receipt' })[];
  conn?: FakeConnection;
  certificate?: Uint8Array;
  /** The identity's signed X25519 key, carried with the first upload. */
  identityDh?: KeysBundleFrame['identityDh'];
}

export class FakeConnection {
  open = true;
  constructor(
    readonly relay: FakeRelay,
    readonly name: string,
    readonly client: ParleyClient,
  ) {}
  /** Frames delivered to the client asynchronously, in order, like a socket. */
  private chain: Promise<void> = Promise.resolve();
  toClient(frame: ServerFrame): void {
    if (!this.open) return;
    this.chain = this.chain.then(async () => {
      await new Promise((r) => setTimeout(r, 0));
      if (this.open) void this.client.handleFrame(frame);
    });
  }
  close(): void {
    if (!this.open) return;
    this.open = false;
    this.relay.disconnected(this);
    this.client.connectionClosed();
  }
}

export class FakeRelay {
  readonly users = new Map<string, UserRecord>();
  private nextServerId = 1;
  /** Every payload the relay saw, to check it never holds plaintext. */
  readonly seenPayloads: Uint8Array[] = [];
  /** Who relayed what to whom, in arrival order (stored or not). */
  readonly relayed: { readonly from: string; readonly to: string; readonly payload: Uint8Array }[] =
    [];
  /** When set, `send` frames are dropped (no receipt): exercises the outbox retry. */
  dropSends = false;
  /** When set, `ack` frames are ignored: the relay redelivers on the next connection. */
  dropAcks = false;
  /** When set, `keys.lookup` frames go unanswered: a relay that stalls mid-lookup. */
  dropLookups = false;
  /** `keys.lookup` frames received (answered or not). */
  lookups = 0;
  /** `identity.lookup` frames received. */
  identityLookups = 0;
  /** When set, `prekeys.upload` is refused (uncorrelated `error`, as the relay does) and not stored. */
  refuseUploads = false;
  /** This many `send` frames are answered `rate_limited` (and not stored). */
  rateLimitNext = 0;
  /** This many `send` frames are answered `server_error` (storage unreachable; not stored). */
  serverErrorNext = 0;
  /**
   * A hostile relay: mail for this user is answered `queued` and then with a forged
   * `delivered` receipt, and thrown away.
   */
  swallowFor: string | undefined;
  /**
   * Fault injection per stored copy: `drop` loses it (the relay still said `queued`),
   * `dup` stores it twice (two server ids), `hold` keeps it back until `releaseHeld`,
   * which delivers the held copies in reverse order.
   */
  fault:
    | ((c: {
        readonly from: string;
        readonly to: string;
        readonly kind: 'message' | 'session.terminate' | 'group';
      }) => 'ok' | 'drop' | 'dup' | 'hold')
    | undefined;
  private held: { to: string; stored: Stored }[] = [];
  /** `group.send` frames received. */
  groupUploads = 0;

  /** Stores one copy in `to`'s mailbox (subject to `fault`) and delivers it if online. */
  private place(to: string, stored: Stored, faulty = true): void {
    const verdict =
      faulty && this.fault
        ? this.fault({ from: stored.sender, to, kind: stored.frame.kind as 'message' })
        : 'ok';
    if (verdict === 'drop') return;
    if (verdict === 'hold') {
      this.held.push({ to, stored });
      return;
    }
    const u = this.users.get(to);
    if (!u) return;
    u.mailbox.push(stored);
    this.delivered.set(to, [...(this.delivered.get(to) ?? []), stored.frame]);
    u.conn?.toClient(stored.frame);
    if (verdict === 'dup') {
      const id = this.nextServerId++;
      const again = {
        ...stored,
        serverMessageId: id,
        frame: { ...stored.frame, serverMessageId: id },
      };
      u.mailbox.push(again);
      u.conn?.toClient(again.frame);
    }
  }

  /** Delivers every held copy, last held first (a reordering relay). */
  releaseHeld(): void {
    const held = this.held.reverse();
    this.held = [];
    for (const h of held) this.place(h.to, h.stored, false);
  }

  /** Provision a user as `parley pki issue` + mtls would: identity known by certificate. */
  provision(name: string, identityKey: Uint8Array, certificate?: Uint8Array): void {
    this.users.set(name, {
      identityKey,
      oneTime: [],
      oneTimePq: [],
      mailbox: [],
      pendingReceipts: [],
      ...(certificate ? { certificate } : {}),
    });
  }

  connect(name: string, client: ParleyClient): FakeConnection {
    const user = this.users.get(name);
    if (!user) throw new Error(`unknown user ${name}`);
    user.conn?.close();
    const conn = new FakeConnection(this, name, client);
    user.conn = conn;
    const transport: ClientTransport = {
      send: (frame) => {
        if (!conn.open) return false;
        queueMicrotask(() => this.handle(conn, frame));
        return true;
      },
    };
    client.connectionOpened(transport);
    return conn;
  }

  disconnected(conn: FakeConnection): void {
    const user = this.users.get(conn.name);
    if (user?.conn === conn) delete user.conn;
    for (const [n, u] of this.users) {
      if (n !== conn.name) u.conn?.toClient({ type: 'presence', event: 'leave', name: conn.name });
    }
  }

  private handle(conn: FakeConnection, frame: ClientFrame): void {
    const me = this.users.get(conn.name) as UserRecord;
    switch (frame.type) {
      case 'hello':
        conn.toClient({
          type: 'welcome',
          version: 1,
          name: conn.name,
          deviceId: 1,
          sessionToken: new Uint8Array(16),
          expiresAt: Date.now() + 3_600_000,
          limits: {
            blockBytes: 4096,
            maxFrameBytes: 131072,
            maxPayloadBytes: 65536,
            rateLimitMessages: 1000,
            rateLimitWindowMs: 1000,
          },
        });
        for (const [n, u] of this.users) {
          if (n !== conn.name)
            u.conn?.toClient({ type: 'presence', event: 'join', name: conn.name });
        }
        for (const r of me.pendingReceipts.splice(0)) conn.toClient(r);
        // Like the real relay: a device short of one-time prekeys hears so at once, which
        // races its own first upload (the client must not allocate prekey ids twice).
        if (me.oneTime.length < 10) {
          conn.toClient({
            type: 'prekeys.low',
            remainingOneTime: me.oneTime.length,
            remainingOneTimePq: me.oneTimePq.length,
          });
        }
        // Like the real relay: the backlog is pushed unasked, then the "queue empty" marker.
        for (const s of me.mailbox) conn.toClient(s.frame);
        conn.toClient({ type: 'mailbox.empty' });
        return;
      case 'prekeys.upload':
        if (this.refuseUploads) {
          conn.toClient({ type: 'error', code: 'failed' });
          return;
        }
        if (frame.signedPrekey) me.signedPrekey = frame.signedPrekey;
        if (frame.identityDh) me.identityDh = frame.identityDh;
        if (frame.pqLastResort) me.pqLastResort = frame.pqLastResort;
        me.oneTime.push(...frame.oneTime);
        me.oneTimePq.push(...frame.oneTimePq);
        conn.toClient({
          type: 'prekeys.stored',
          remainingOneTime: me.oneTime.length,
          remainingOneTimePq: me.oneTimePq.length,
        });
        return;
      case 'identity.lookup': {
        this.identityLookups++;
        const u = this.users.get(frame.name);
        if (!u || !u.identityDh) {
          conn.toClient({ type: 'error', code: 'failed', requestId: frame.requestId });
          return;
        }
        conn.toClient({
          type: 'identity.result',
          requestId: frame.requestId,
          name: frame.name,
          deviceId: 1,
          identityKey: u.identityKey,
          identityDh: u.identityDh,
          ...(u.certificate ? { certificate: u.certificate } : {}),
        });
        return;
      }
      case 'keys.lookup': {
        this.lookups++;
        if (this.dropLookups) return;
        const u = this.users.get(frame.name);
        if (!u || !u.signedPrekey || !u.pqLastResort || !u.identityDh) {
          conn.toClient({ type: 'error', code: 'failed', requestId: frame.requestId });
          return;
        }
        const ot = u.oneTime.shift();
        const pq = u.oneTimePq.shift() ?? u.pqLastResort;
        conn.toClient({
          type: 'keys.bundle',
          identityDh: u.identityDh,
          requestId: frame.requestId,
          name: frame.name,
          deviceId: 1,
          identityKey: u.identityKey,
          ...(u.certificate ? { certificate: u.certificate } : {}),
          signedPrekey: u.signedPrekey,
          pqPrekey: pq,
          ...(ot ? { oneTimePrekey: ot } : {}),
        });
        if (u.oneTime.length < 10)
          u.conn?.toClient({
            type: 'prekeys.low',
            remainingOneTime: u.oneTime.length,
            remainingOneTimePq: u.oneTimePq.length,
          });
        return;
      }
      case 'send':
      case 'session.terminate': {
        if (this.dropSends) return;
        if (this.rateLimitNext > 0) {
          this.rateLimitNext--;
          conn.toClient({
            type: 'error',
            code: 'rate_limited',
            clientMessageId: frame.clientMessageId,
          });
          return;
        }
        if (this.serverErrorNext > 0) {
          this.serverErrorNext--;
          conn.toClient({
            type: 'error',
            code: 'server_error',
            clientMessageId: frame.clientMessageId,
          });
          return;
        }
        this.seenPayloads.push(frame.payload);
        this.relayed.push({ from: conn.name, to: frame.to.name, payload: frame.payload });
        if (frame.to.name === this.swallowFor) {
          for (const status of ['queued', 'delivered'] as const) {
            conn.toClient({
              type: 'receipt',
              clientMessageId: frame.clientMessageId,
              status,
              serverMessageId: this.nextServerId,
              timestamp: Date.now(),
            });
          }
          this.nextServerId++;
          return;
        }
        const to = this.users.get(frame.to.name);
        if (!to) {
          conn.toClient({ type: 'error', code: 'failed', clientMessageId: frame.clientMessageId });
          return;
        }
        // Dedupe retries by (sender, client message id), as the real relay does.
        const dup = to.mailbox.find(
          (s) =>
            s.sender === conn.name && toHex(s.clientMessageId) === toHex(frame.clientMessageId),
        );
        const id = dup?.serverMessageId ?? this.nextServerId++;
        conn.toClient({
          type: 'receipt',
          clientMessageId: frame.clientMessageId,
          status: 'queued',
          serverMessageId: id,
          timestamp: Date.now(),
        });
        if (dup) return;
        const stored: Stored = {
          serverMessageId: id,
          sender: conn.name,
          clientMessageId: frame.clientMessageId,
          frame: {
            type: 'deliver',
            serverMessageId: id,
            kind: frame.type === 'send' ? 'message' : 'session.terminate',
            from: { name: conn.name, deviceId: 1 },
            timestamp: Date.now(),
            payload: frame.payload,
          },
        };
        this.place(frame.to.name, stored);
        return;
      }
      case 'group.send': {
        this.groupUploads++;
        if (this.dropSends) return;
        this.seenPayloads.push(frame.payload);
        const first = this.nextServerId;
        for (const t of frame.to) {
          this.relayed.push({ from: conn.name, to: t.name, payload: frame.payload });
          const to = this.users.get(t.name);
          if (!to) continue;
          const dup = to.mailbox.some(
            (s) =>
              s.sender === conn.name && toHex(s.clientMessageId) === toHex(frame.clientMessageId),
          );
          if (dup) continue;
          const id = this.nextServerId++;
          this.place(t.name, {
            serverMessageId: id,
            sender: conn.name,
            clientMessageId: frame.clientMessageId,
            frame: {
              type: 'deliver',
              serverMessageId: id,
              kind: 'group',
              from: { name: conn.name, deviceId: 1 },
              timestamp: Date.now(),
              payload: frame.payload,
            },
          });
        }
        // One receipt per upload, and never a `delivered` (the relay's contract).
        conn.toClient({
          type: 'receipt',
          clientMessageId: frame.clientMessageId,
          status: 'queued',
          serverMessageId: first,
          timestamp: Date.now(),
        });
        return;
      }
      case 'ack': {
        if (this.dropAcks) return;
        this.acked.add(frame.serverMessageId);
        const i = me.mailbox.findIndex((s) => s.serverMessageId === frame.serverMessageId);
        if (i < 0) return;
        const [s] = me.mailbox.splice(i, 1);
        if (!s || s.frame.kind === 'group') return;
        const receipt = {
          type: 'receipt' as const,
          clientMessageId: s.clientMessageId,
          status: 'delivered' as const,
          serverMessageId: s.serverMessageId,
          timestamp: Date.now(),
        };
        const sender = this.users.get(s.sender);
        if (sender?.conn) sender.conn.toClient(receipt);
        else sender?.pendingReceipts.push(receipt);
        return;
      }
      case 'mailbox.fetch':
        // A sync point only, as on the real relay: the backlog went out after `welcome`.
        conn.toClient({ type: 'mailbox.empty' });
        return;
      case 'presence.list':
        conn.toClient({
          type: 'presence.list.result',
          requestId: frame.requestId,
          names: [...this.users.entries()].filter(([, u]) => u.conn).map(([n]) => n),
          truncated: false,
        });
        return;
      case 'ping':
        conn.toClient({ type: 'pong', timestamp: frame.timestamp });
        return;
      case 'register':
      case 'login':
      case 'pong':
        return;
    }
  }

  /** Every frame ever delivered, per recipient, for replay attacks. */
  readonly delivered = new Map<string, (ServerFrame & { type: 'deliver' })[]>();

  /** A hostile relay: sends every frame `name` ever received again, under new server ids. */
  replayAll(name: string): number[] {
    const u = this.users.get(name);
    const ids: number[] = [];
    for (const f of this.delivered.get(name) ?? []) {
      const id = this.nextServerId++;
      ids.push(id);
      u?.conn?.toClient({ ...f, serverMessageId: id });
    }
    return ids;
  }

  /** Server ids the clients acknowledged. */
  readonly acked = new Set<number>();

  /** Redelivers everything still in a user's mailbox (a relay that lost acks). */
  redeliver(name: string): void {
    const u = this.users.get(name);
    for (const s of u?.mailbox ?? []) u?.conn?.toClient(s.frame);
  }
}
