/**
 * Test harness: several relay processes (`fixtures/relay-child.ts`) sharing one
 * PostgreSQL database, one Redis and one private CA, each with a data folder of its own,
 * and mTLS clients for them. The caller starts the servers (pg-server.ts,
 * redis-server.ts) and hands them in.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initPki, issueClient } from '@parley/pki';
import type { RelayConfigFile } from '../src/config.js';
import { TestClient, until } from './helpers.js';
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

export function scrape(adminPort: number): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port: adminPort, path: '/metrics' }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve(text));
    }).on('error', reject);
  });
}
