/**
 * Test harness: several relay processes (`fixtures/relay-child.ts`) sharing one
 * PostgreSQL database, one Redis and one private CA, each with a data folder of its own,
 * and mTLS clients for them, with the small client moves the cluster tests share
 * (send, receipts, auto-ack, presence, health polling). The caller starts the servers
 * (pg-server.ts, redis-server.ts) and hands them in.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initPki, issueClient } from '@parley/pki';
import type { RelayConfigFile } from '../src/config.js';
import type { ServerFrame } from '@parley/wire';
import { clientId, TestClient, until } from './helpers.js';
import type { TestPostgres } from './pg-server.js';
import type { TestRedis } from './redis-server.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const fixture = fileURLToPath(new URL('./fixtures/relay-child.ts', import.meta.url));

export interface Node {
  readonly child: ChildProcess;
  readonly port: number;
  readonly adminPort: number;
}

export interface Tls {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export interface Cluster {
  readonly database: string;
  /** Starts node `i` (1-based; its data folder persists across restarts). */
  start(i: number, port?: number): Promise<Node>;
  /** mTLS credentials for `who`, from the shared CA. */
  creds(who: string): Promise<Tls>;
  /** Node `i`'s data folder (node 1's also holds the CA). */
  dataDir(i: number): string;
  /** SIGKILLs every node still running and removes the folders. */
  destroy(): Promise<void>;
}

/**
 * A cluster configuration: PostgreSQL storage, and the Redis bus unless `bus` says
 * `local` (the control case: nodes that share nothing but the store).
 */
export async function cluster(
  pg: TestPostgres,
  redis: TestRedis | undefined,
  extra: RelayConfigFile = {},
): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-cluster-'));
  const database = await pg.createDatabase('cluster');
  const first = join(dir, 'node1');
  await initPki(first);
  const configFile = join(dir, 'config.json');
  const config: RelayConfigFile = {
    storage: {
      engine: 'postgres',
      postgres: {
        host: pg.host,
        port: pg.port,
        database,
        user: pg.user,
        passwordFile: pg.passwordFile,
        poolSize: 4,
      },
    },
    ...(redis
      ? {
          bus: {
            engine: 'redis' as const,
            redis: { host: redis.host, port: redis.port, keyPrefix: `${database}:` },
          },
        }
      : {}),
    ...extra,
  };
  writeFileSync(configFile, JSON.stringify(config));
  const ca = readFileSync(join(first, 'pki', 'ca.crt'), 'utf8');
  const children = new Set<ChildProcess>();

  const dataDir = (i: number): string => {
    const d = join(dir, `node${i}`);
    // Every node serves the same CA, server certificate and CRL.
    if (i !== 1) cpSync(join(first, 'pki'), join(d, 'pki'), { recursive: true, force: false });
    return d;
  };

  return {
    database,
    async start(i, port = 0) {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', fixture, dataDir(i), String(port), configFile],
        {
          cwd: root,
          env: { ...process.env, TSX_TSCONFIG_PATH: join(root, 'tsconfig.test.json') },
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      children.add(child);
      child.on('exit', () => children.delete(child));
      let out = '';
      child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      await until(() => out.includes('\n') || child.exitCode !== null, `node ${i} start`, 60_000);
      if (!out.includes('\n')) throw new Error(`node ${i} exited with ${child.exitCode}`);
      const info = JSON.parse(out.split('\n')[0] as string) as { port: number; adminPort: number };
      return { child, ...info };
    },
    dataDir,
    async creds(who) {
      const f = await issueClient(first, who, join(dir, `creds-${who}`));
      return { ca, cert: f.certPem, key: readFileSync(f.keyPath, 'utf8') };
    },
    async destroy() {
      await Promise.all([...children].map((c) => kill(c)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function kill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** Opens a TLS WebSocket to `port` and says hello; resolves after `welcome` or refusal. */
export async function open(port: number, tls: Tls): Promise<TestClient> {
  const c = new TestClient(`wss://127.0.0.1:${port}/ws`, tls);
  await until(() => c.opened || c.closed, 'open', 15_000);
  if (!c.opened) throw new Error('connect failed');
  c.send({ type: 'hello', protocolVersions: [1], timestamp: Date.now() });
  await until(() => c.has('welcome') || c.has('error') || c.closed, 'welcome', 15_000);
  return c;
}

/** `open`, then waits until the backlog is drained (`mailbox.empty`). */
export async function connect(port: number, tls: Tls): Promise<TestClient> {
  const c = await open(port, tls);
  await c.next('welcome', 15_000);
  await c.next('mailbox.empty', 15_000);
  return c;
}

export function healthz(
  adminPort: number,
): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port: adminPort, path: '/healthz' }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }),
      );
    }).on('error', reject);
  });
}

/** Polls `/healthz` until it answers `status` (bounded); returns its body. */
export async function untilHealth(
  adminPort: number,
  status: number,
): Promise<Record<string, unknown>> {
  let last: { status: number; body: Record<string, unknown> } | undefined;
  for (let waited = 0; waited < 30_000; waited += 50) {
    last = await healthz(adminPort);
    if (last.status === status) return last.body;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`healthz stayed ${last?.status}: ${JSON.stringify(last?.body)}`);
}

export function scrape(adminPort: number): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port: adminPort, path: '/metrics' }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve(text));
    }).on('error', reject);
  });
}

export const send = (c: TestClient, from: string, to: string, n: number): void =>
  c.send({
    type: 'send',
    clientMessageId: clientId(n),
    from: { name: from, deviceId: 1 },
    to: { name: to, deviceId: 1 },
    payload: new Uint8Array([n, 0x5a]),
  });

/** Relay receipts (live or kept) for message `n` with `status`. */
export const receiptOf = (c: TestClient, n: number, status: 'queued' | 'delivered'): boolean =>
  c.frames.some(
    (f) =>
      (f.type === 'receipt' || f.type === 'receipt.stored') &&
      f.status === status &&
      f.clientMessageId[15] === n,
  );

/** Acks every delivery as it comes (a real client acks after committing). */
export function autoAck(c: TestClient): { got: () => number[] } {
  const acked = new Set<number>();
  const timer = setInterval(() => {
    for (const f of c.frames) {
      if (f.type === 'deliver' && !acked.has(f.serverMessageId) && !c.closed) {
        acked.add(f.serverMessageId);
        c.send({ type: 'ack', serverMessageId: f.serverMessageId });
      }
      if (f.type === 'receipt.stored' && !acked.has(-f.serverMessageId) && !c.closed) {
        acked.add(-f.serverMessageId);
        c.send({ type: 'ack', serverMessageId: f.serverMessageId });
      }
    }
  }, 10);
  timer.unref();
  return {
    got: () =>
      c.frames.flatMap((f: ServerFrame) => (f.type === 'deliver' ? [f.payload[0] as number] : [])),
  };
}

export async function online(c: TestClient, names: string[], id: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    c.send({ type: 'presence.list', requestId: id * 1000 + i });
    const r = await c.next('presence.list.result', 10_000);
    if (names.every((n) => r.names.includes(n))) return;
    await new Promise((r2) => setTimeout(r2, 50));
  }
  throw new Error(`presence never showed ${names.join(', ')}`);
}
