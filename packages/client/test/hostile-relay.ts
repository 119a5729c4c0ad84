/**
 * A hostile relay for end-to-end tests: a TLS-terminating man in the middle between
 * real clients and a real Parley relay. It holds what a malicious relay operator
 * holds — the relay's own server certificate and key (so clients accept it as their
 * relay) — and, to reach the genuine relay behind it, each client's transport
 * certificate (the operator of a real relay needs no such thing: it is the relay).
 * Every block in both directions is decoded with `@parley/wire`, handed to a
 * programmable tamper policy, and whatever the policy returns is re-encoded and sent
 * on. The policy sees frames only: it never gets the clients' keys, so it can do
 * exactly what a relay can do to the traffic it routes.
 *
 * 127.0.0.1 only; each connection pair closes when either side does, and `close()`
 * ends everything (there are no timers or loops of its own).
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import WebSocket, { WebSocketServer } from 'ws';
import {
  FrameReader,
  FrameWriter,
  validateBlockSize,
  type ClientFrame,
  type ServerFrame,
} from '@parley/wire';
import type { ClientEvent } from '@parley/client';
import {
  IdentityKeyPair,
  generateKemPreKey,
  generateSignedPreKey,
  publicKemPreKey,
  publicSignedPreKey,
} from '@parley/protocol';
import { initProfile, openNodeClient, type NodeClient } from '@parley/client-node';
import { startRelay, type RunningRelay } from '@parley/server';
import { KDF, PASS, crypto, initMtlsProfile, until } from './e2e-helpers.js';

/** `up`: a client's frame on its way to the relay; `down`: the relay's frame to a client. */
export type Leg = 'up' | 'down';

/** One frame caught in flight, with the certificate name of the client whose connection carries it. */
export type Intercepted =
  | { readonly leg: 'up'; readonly name: string; readonly frame: ClientFrame }
  | { readonly leg: 'down'; readonly name: string; readonly frame: ServerFrame };

/**
 * What to do with a caught frame: `undefined` forwards it unchanged; an array replaces
 * it by those frames, in order, on the same leg (`[]` drops it). A frame that does not
 * travel in that leg's direction makes the receiver close the connection, as it would
 * for a real relay. Frames for another connection go through `HostileRelay.inject`.
 */
export type Verdict = readonly (ClientFrame | ServerFrame)[] | undefined;

/** The attack: called once per caught frame, synchronously, in arrival order per leg. */
export type TamperPolicy = (x: Intercepted) => Verdict;

/** `seen` keeps the newest frames only, so a long test cannot grow it without bound. */
const MAX_SEEN_FRAMES = 10_000;

/** Forwards everything: an honest relay. */
export const passThrough: TamperPolicy = () => undefined;

export interface HostileRelayOptions {
  /** The genuine relay behind the proxy (`wss://127.0.0.1:PORT/ws`). */
  readonly upstreamUrl: string;
  /** The organisation's CA (PEM): the relay's certificate and every client's chain to it. */
  readonly caPem: string;
  /** The relay's own TLS server certificate and key (PEM). */
  readonly serverCertPem: string;
  readonly serverKeyPem: string;
  /**
   * mtls: each client's transport credentials by certificate name, to reach the genuine
   * relay. Absent for an open-mode relay: clients then present no certificate, and a
   * connection is named by the first `register`/`login`/`resume` it carries.
   */
  readonly clients?: Readonly<
    Record<string, { readonly certPem: string; readonly keyPem: string }>
  >;
}

interface Pair {
  name: string;
  readonly down: WebSocket;
  readonly up: WebSocket;
  readonly toRelay: FrameWriter;
  readonly toClient: FrameWriter;
  /** Blocks from the client before the upstream connection opened. */
  readonly backlog: Uint8Array[];
}

export class HostileRelay {
  /** The attack in force; replace it at any time. */
  policy: TamperPolicy = passThrough;
  /** The frames the proxy caught, oldest first (its own injections are not listed). */
  readonly seen: Intercepted[] = [];
  private readonly pairs = new Set<Pair>();

  private constructor(
    private readonly server: Server,
    private readonly wss: WebSocketServer,
    private readonly options: HostileRelayOptions,
  ) {}

  static async start(options: HostileRelayOptions): Promise<HostileRelay> {
    const server = createServer({
      cert: options.serverCertPem,
      key: options.serverKeyPem,
      ca: options.caPem,
      requestCert: options.clients !== undefined,
      rejectUnauthorized: options.clients !== undefined,
      minVersion: 'TLSv1.3',
    });
    const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 65536 });
    const relay = new HostileRelay(server, wss, options);
    wss.on('connection', (ws, req) => relay.accept(ws, req.socket as TLSSocket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return relay;
  }

  /** Where clients connect instead of the genuine relay. */
  get url(): string {
    return `wss://127.0.0.1:${(this.server.address() as AddressInfo).port}/ws`;
  }

  /** Names with a connection open through the proxy now. */
  get connected(): string[] {
    return [...this.pairs].filter((p) => p.up.readyState === WebSocket.OPEN).map((p) => p.name);
  }

  /**
   * Sends a frame the relay made up: `down` to the client `name`, or `up` to the genuine
   * relay on `name`'s connection. False if `name` has no open connection.
   */
  inject(name: string, leg: 'down', frame: ServerFrame): boolean;
  inject(name: string, leg: 'up', frame: ClientFrame): boolean;
  inject(name: string, leg: Leg, frame: ClientFrame | ServerFrame): boolean {
    const pair = [...this.pairs].reverse().find((p) => p.name === name);
    return pair !== undefined && this.send(pair, leg, frame);
  }

  private send(pair: Pair, leg: Leg, frame: ClientFrame | ServerFrame): boolean {
    const ws = leg === 'up' ? pair.up : pair.down;
    if (ws.readyState !== WebSocket.OPEN) return false;
    for (const b of (leg === 'up' ? pair.toRelay : pair.toClient).write(frame)) ws.send(b);
    return true;
  }

  private record(x: Intercepted): void {
    if (this.seen.length >= MAX_SEEN_FRAMES) this.seen.shift();
    this.seen.push(x);
  }

  /** True once `name` acknowledged `serverMessageId` to the relay: its client has dealt with that delivery. */
  acked(name: string, serverMessageId: number): boolean {
    return this.seen.some(
      (x) =>
        x.leg === 'up' &&
        x.name === name &&
        x.frame.type === 'ack' &&
        x.frame.serverMessageId === serverMessageId,
    );
  }

  /** The deliveries from `from` that reached `to`, as the relay sent them (before any tampering). */
  deliveries(to: string, from: string): Extract<ServerFrame, { type: 'deliver' }>[] {
    return this.seen.flatMap((x) => deliverOf(x, to, from) ?? []);
  }

  /** Drops every connection through the proxy (clients reconnect as after a network change). */
  dropAll(): void {
    for (const p of this.pairs) {
      p.down.terminate();
      p.up.terminate();
    }
  }

  async close(): Promise<void> {
    this.dropAll();
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(down: WebSocket, socket: TLSSocket): void {
    const clients = this.options.clients;
    const name = clients ? String(socket.getPeerCertificate().subject?.CN ?? '') : '';
    const creds = clients?.[name];
    if (clients && !creds) return down.terminate();
    const up = new WebSocket(this.options.upstreamUrl, {
      ca: this.options.caPem,
      ...(creds ? { cert: creds.certPem, key: creds.keyPem } : {}),
      minVersion: 'TLSv1.3',
      perMessageDeflate: false,
      maxPayload: 65536,
    });
    const pair: Pair = {
      name,
      down,
      up,
      toRelay: new FrameWriter(),
      toClient: new FrameWriter(),
      backlog: [],
    };
    this.pairs.add(pair);
    const fromClient = new FrameReader({ direction: 'toServer', now: () => Date.now() });
    const fromRelay = new FrameReader({ direction: 'toClient', now: () => Date.now() });
    const end = (): void => {
      this.pairs.delete(pair);
      down.terminate();
      up.terminate();
    };
    down.on('close', end);
    up.on('close', end);
    down.on('error', end);
    up.on('error', end);
    up.on('open', () => {
      for (const b of pair.backlog.splice(0)) this.fromClient(pair, fromClient, b);
    });
    down.on('message', (data: Buffer, isBinary: boolean) => {
      const checked = validateBlockSize(data, isBinary);
      if (!checked.ok) return end();
      if (up.readyState !== WebSocket.OPEN) pair.backlog.push(checked.value);
      else this.fromClient(pair, fromClient, checked.value);
    });
    up.on('message', (data: Buffer, isBinary: boolean) => {
      const checked = validateBlockSize(data, isBinary);
      if (!checked.ok) return end();
      let frame: ServerFrame | undefined;
      try {
        frame = fromRelay.push(checked.value);
      } catch {
        return end();
      }
      if (!frame) return;
      const x = { leg: 'down', name: pair.name, frame } as const;
      this.record(x);
      for (const f of this.policy(x) ?? [frame]) this.send(pair, 'down', f);
    });
  }

  private fromClient(pair: Pair, reader: FrameReader<'toServer'>, block: Uint8Array): void {
    let frame: ClientFrame | undefined;
    try {
      frame = reader.push(block);
    } catch {
      pair.down.terminate();
      return;
    }
    if (!frame) return;
    if (
      pair.name === '' &&
      (frame.type === 'register' || frame.type === 'login' || frame.type === 'resume')
    )
      pair.name = frame.name;
    const x = { leg: 'up', name: pair.name, frame } as const;
    this.record(x);
    for (const f of this.policy(x) ?? [frame]) this.send(pair, 'up', f);
  }
}

/** A client connected through the hostile relay, with everything it told its user. */
export interface Victim {
  readonly name: string;
  readonly c: NodeClient;
  readonly events: ClientEvent[];
}

/**
 * A genuine relay (`mode`, default mtls) in `root/relay`, the hostile relay in front of
 * it, and a profile per name. `connect(name)` opens that profile through the hostile relay and
 * waits until its mailbox is drained.
 */
export async function startBehindHostileRelay(
  root: string,
  names: readonly string[],
  mode: 'mtls' | 'open' = 'mtls',
): Promise<{
  relay: RunningRelay;
  hostile: HostileRelay;
  connect(name: string): Promise<Victim>;
  close(): Promise<void>;
}> {
  const dataDir = join(root, 'relay');
  const relay = await startRelay({ dataDir, port: 0, auth: mode, logLevel: 'silent' });
  const clients: Record<string, { certPem: string; keyPem: string }> = {};
  const profiles: Record<string, string> = {};
  for (const name of names) {
    const profile = join(root, name);
    profiles[name] = profile;
    if (mode === 'open') {
      await initProfile({
        profile,
        passphrase: PASS,
        server: relay.url,
        mode: 'open',
        name,
        caPem: relay.caPem,
        crypto,
        kdf: KDF,
      });
      continue;
    }
    const credsDir = join(root, `creds-${name}`);
    await initMtlsProfile({ dataDir, credsDir, name, profile, server: relay.url });
    clients[name] = {
      certPem: readFileSync(join(credsDir, `${name}.crt`), 'utf8'),
      keyPem: readFileSync(join(credsDir, `${name}.key`), 'utf8'),
    };
  }
  const hostile = await HostileRelay.start({
    upstreamUrl: relay.url,
    caPem: relay.caPem,
    serverCertPem: readFileSync(relay.paths.serverCert, 'utf8'),
    serverKeyPem: readFileSync(relay.paths.serverKey, 'utf8'),
    ...(mode === 'mtls' ? { clients } : {}),
  });
  const open = new Set<NodeClient>();
  return {
    relay,
    hostile,
    async connect(name) {
      const profile = profiles[name];
      if (profile === undefined) throw new Error(`no profile for ${name}`);
      const c = await openNodeClient({ profile, passphrase: PASS, crypto, server: hostile.url });
      open.add(c);
      const closeOnce = c.close.bind(c);
      c.close = async () => {
        if (open.delete(c)) await closeOnce();
      };
      const events: ClientEvent[] = [];
      c.client.on((e) => events.push(e));
      await c.connect();
      await until(() => c.client.mailboxDrained, `${name}'s mailbox drained`);
      return { name, c, events };
    },
    async close() {
      for (const c of [...open]) await c.close();
      await hostile.close();
      await relay.close();
    },
  };
}

/** A policy that applies `act` to the first `times` frames `match` selects and forwards the rest. */
export interface Trap {
  readonly policy: TamperPolicy;
  /** How many frames the trap has caught so far. */
  readonly hits: number;
}

export function trap(
  match: (x: Intercepted) => boolean,
  act: (x: Intercepted) => Verdict,
  times = 1,
): Trap {
  let hits = 0;
  return {
    policy: (x) => {
      if (hits >= times || !match(x)) return undefined;
      hits++;
      return act(x);
    },
    get hits() {
      return hits;
    },
  };
}

/** The `deliver` in `x` if it carries a relayed frame from `from` to `to`. */
export function deliverOf(
  x: Intercepted,
  to: string,
  from: string,
): Extract<ServerFrame, { type: 'deliver' }> | undefined {
  return x.leg === 'down' &&
    x.name === to &&
    x.frame.type === 'deliver' &&
    x.frame.from.name === from
    ? x.frame
    : undefined;
}

/** The `send` in `x` if `from` is sending it to `to`. */
export function sendOf(
  x: Intercepted,
  from: string,
  to: string,
): Extract<ClientFrame, { type: 'send' }> | undefined {
  return x.leg === 'up' && x.name === from && x.frame.type === 'send' && x.frame.to.name === to
    ? x.frame
    : undefined;
}

/**
 * `genuine` with every key replaced by the impostor's: a bundle whose signatures all
 * verify, for a key the relay holds (the certificate, if any, stays the genuine one).
 */
export function substitutedBundle(
  genuine: Extract<ServerFrame, { type: 'keys.bundle' }>,
  impostor: IdentityKeyPair,
  now = Date.now(),
): Extract<ServerFrame, { type: 'keys.bundle' }> {
  const { oneTimePrekey: _dropped, ...rest } = genuine;
  return {
    ...rest,
    identityKey: impostor.publicIdentity.signingKey,
    identityDh: {
      publicKey: impostor.publicIdentity.dhKey,
      signature: impostor.publicIdentity.dhSignature,
    },
    signedPrekey: publicSignedPreKey(generateSignedPreKey(crypto, impostor, 9, now)),
    pqPrekey: publicKemPreKey(generateKemPreKey(crypto, impostor, 10, 'last-resort', now)),
  };
}

/** A fresh identity the relay makes up. */
export const impostorIdentity = (): IdentityKeyPair =>
  IdentityKeyPair.fromSeed(crypto, crypto.randomBytes(32));
