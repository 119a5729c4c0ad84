/**
 * A relay process on PostgreSQL, end to end: two mTLS clients exchange messages over
 * real TLS; the relay process is killed and restarted without losing queued mail; and
 * PostgreSQL itself is restarted under the running relay, which reports unhealthy,
 * refuses sends meanwhile with a retryable `server_error`, and recovers by itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initPki, issueClient } from '@parley/pki';
import type { ServerFrame } from '@parley/wire';
import { startRelay } from '../src/index.js';
import { healthz, scrape, untilHealth } from './cluster-harness.js';
import { clientId, TestClient, until } from './helpers.js';
import { startPostgres, type TestPostgres } from './pg-server.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const fixture = fileURLToPath(new URL('./fixtures/relay-child.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'parley-relay-pg-'));
const children = new Set<ChildProcess>();
let server: TestPostgres;

beforeAll(async () => {
  server = await startPostgres();
}, 120_000);
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await server?.destroy();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

interface Child {
  readonly child: ChildProcess;
  readonly port: number;
  readonly adminPort: number;
}

async function startChild(dataDir: string, configFile: string, port = 0): Promise<Child> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fixture, dataDir, String(port), configFile],
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
  await until(() => out.includes('\n') || child.exitCode !== null, 'relay child start', 30_000);
  if (!out.includes('\n')) throw new Error(`relay child exited with ${child.exitCode}`);
  const info = JSON.parse(out.split('\n')[0] as string) as { port: number; adminPort: number };
  return { child, ...info };
}

function kill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** Polls /healthz (bounded) until it answers `status`. */
/** A relay data dir with a fresh database, its config file, and mTLS credentials. */
async function setup(name: string): Promise<{
  dataDir: string;
  configFile: string;
  database: string;
  creds: (who: string) => Promise<{ ca: string; cert: string; key: string }>;
}> {
  const dataDir = join(dir, name);
  await initPki(dataDir);
  const database = await server.createDatabase(name);
  const configFile = join(dir, `${name}.json`);
  writeFileSync(
    configFile,
    JSON.stringify({
      storage: {
        engine: 'postgres',
        postgres: {
          host: server.host,
          port: server.port,
          database,
          user: server.user,
          passwordFile: server.passwordFile,
          poolSize: 4,
        },
      },
    }),
  );
  const ca = readFileSync(join(dataDir, 'pki', 'ca.crt'), 'utf8');
  return {
    dataDir,
    configFile,
    database,
    creds: async (who) => {
      const f = await issueClient(dataDir, who, join(dir, `${name}-${who}`));
      return { ca, cert: f.certPem, key: readFileSync(f.keyPath, 'utf8') };
    },
  };
}

async function connect(
  port: number,
  tls: { ca: string; cert: string; key: string },
): Promise<TestClient> {
  const c = new TestClient(`wss://127.0.0.1:${port}/ws`, tls);
  await until(() => c.opened || c.closed, 'open', 15_000);
  if (!c.opened) throw new Error('connect failed');
  c.send({ type: 'hello', protocolVersions: [1], timestamp: Date.now() });
  await c.next('welcome', 15_000);
  await c.next('mailbox.empty', 15_000);
  return c;
}

const send = (c: TestClient, from: string, to: string, n: number): void =>
  c.send({
    type: 'send',
    clientMessageId: clientId(n),
    from: { name: from, deviceId: 1 },
    to: { name: to, deviceId: 1 },
    payload: new Uint8Array([n, 0x5a]),
  });

const receiptOf = (c: TestClient, n: number, status: 'queued' | 'delivered'): boolean =>
  c.frames.some((f) => f.type === 'receipt' && f.status === status && f.clientMessageId[15] === n);

async function mailboxRows(database: string): Promise<number> {
  const c = new pg.Client({ connectionString: server.url(database) });
  await c.connect();
  try {
    return Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM mailbox')).rows[0]?.n);
  } finally {
    await c.end();
  }
}

/** Polls an async condition (bounded). */
async function untilAsync(cond: () => Promise<boolean>, what: string): Promise<void> {
  for (let waited = 0; !(await cond()); waited += 50) {
    if (waited > 15_000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('relay process on PostgreSQL', () => {
  it('two clients exchange messages; a killed relay restarts with the queued mail intact', async () => {
    const s = await setup('e2e');
    const [aliceTls, bobTls] = [await s.creds('alice'), await s.creds('bob')];
    let relay = await startChild(s.dataDir, s.configFile);
    expect((await healthz(relay.adminPort)).body).toMatchObject({
      status: 'ok',
      storage: { engine: 'postgres', ok: true },
    });
    const alice = await connect(relay.port, aliceTls);
    const bob = await connect(relay.port, bobTls);
    send(alice, 'alice', 'bob', 1);
    const d1 = await bob.next('deliver', 15_000);
    expect([d1.from.name, d1.payload]).toEqual(['alice', new Uint8Array([1, 0x5a])]);
    bob.send({ type: 'ack', serverMessageId: d1.serverMessageId });
    send(bob, 'bob', 'alice', 2);
    const d2 = await alice.next('deliver', 15_000);
    expect([d2.from.name, d2.payload]).toEqual(['bob', new Uint8Array([2, 0x5a])]);
    alice.send({ type: 'ack', serverMessageId: d2.serverMessageId });
    await until(() => receiptOf(alice, 1, 'delivered'), 'delivered receipt to alice', 15_000);
    await until(() => receiptOf(bob, 2, 'delivered'), 'delivered receipt to bob', 15_000);

    // Bob goes offline; what alice hears "queued" is in PostgreSQL, not in the process.
    bob.close();
    await until(() => bob.closed, 'bob closed');
    for (let n = 10; n < 15; n++) send(alice, 'alice', 'bob', n);
    await until(
      () => [10, 11, 12, 13, 14].every((n) => receiptOf(alice, n, 'queued')),
      'queued receipts',
      15_000,
    );
    expect(await mailboxRows(s.database)).toBe(5);
    await kill(relay.child);
    alice.close();
    relay = await startChild(s.dataDir, s.configFile, relay.port);
    const bob2 = new TestClient(`wss://127.0.0.1:${relay.port}/ws`, bobTls);
    await until(() => bob2.opened || bob2.closed, 'open', 15_000);
    bob2.send({ type: 'hello', protocolVersions: [1], timestamp: Date.now() });
    await bob2.next('mailbox.empty', 15_000);
    const got = bob2.frames.flatMap((f: ServerFrame) =>
      f.type === 'deliver' ? [f.payload[0] as number] : [],
    );
    expect(got).toEqual([10, 11, 12, 13, 14]);
    // No SQLite database was ever made: the relay ran on PostgreSQL only.
    expect(existsSync(join(s.dataDir, 'relay.db'))).toBe(false);
    bob2.close();
    await kill(relay.child);
  }, 120_000);

  it('live mail is held for its ack as on SQLite, and a relay SIGKILLed during the hold loses nothing heard "queued"', async () => {
    const s = await setup('held');
    const [aliceTls, bobTls] = [await s.creds('alice'), await s.creds('bob')];
    let relay = await startChild(s.dataDir, s.configFile);
    const ackedLive = async (): Promise<number> =>
      Number(
        /parley_messages_total\{outcome="acked-live"\} (\d+)/.exec(
          await scrape(relay.adminPort),
        )?.[1] ?? 0,
      );
    let alice = await connect(relay.port, aliceTls);
    let bob = await connect(relay.port, bobTls);
    // Acked at once: never written, and "delivered" is the only receipt.
    send(alice, 'alice', 'bob', 1);
    const d1 = await bob.next('deliver', 15_000);
    bob.send({ type: 'ack', serverMessageId: d1.serverMessageId });
    await until(() => receiptOf(alice, 1, 'delivered'), 'delivered receipt', 15_000);
    await untilAsync(async () => (await ackedLive()) === 1, 'acked-live counted');
    expect(receiptOf(alice, 1, 'queued')).toBe(false);
    expect(await mailboxRows(s.database)).toBe(0);

    // Bob gets the next one live and dies with the relay before acking: it was held in
    // memory (no "queued" yet) and never written.
    send(alice, 'alice', 'bob', 2);
    const d2 = await bob.next('deliver', 15_000);
    expect(receiptOf(alice, 2, 'queued')).toBe(false);
    await kill(relay.child);
    expect(await mailboxRows(s.database)).toBe(0);
    alice.close();
    bob.close();
    relay = await startChild(s.dataDir, s.configFile, relay.port);
    // Alice had no receipt, so she sends it again (same client message id); Bob gets it
    // on his next connection under a new server id, and the receipt reaches Alice.
    alice = await connect(relay.port, aliceTls);
    send(alice, 'alice', 'bob', 2);
    await until(() => receiptOf(alice, 2, 'queued'), 'queued after the restart', 15_000);
    bob = await connect(relay.port, bobTls);
    const again = bob.frames.flatMap((f: ServerFrame) => (f.type === 'deliver' ? [f] : []));
    expect(again.map((f) => f.payload)).toEqual([new Uint8Array([2, 0x5a])]);
    expect(again[0]?.serverMessageId).toBeGreaterThan(d2.serverMessageId);
    bob.send({ type: 'ack', serverMessageId: again[0]?.serverMessageId ?? -1 });
    await until(() => receiptOf(alice, 2, 'delivered'), 'delivered after the restart', 15_000);
    await untilAsync(async () => (await mailboxRows(s.database)) === 0, 'acked mail deleted');
    alice.close();
    bob.close();
    await kill(relay.child);
  }, 120_000);

  it('PostgreSQL restarted under a running relay: unhealthy, retryable refusals, recovery, nothing lost', async () => {
    const s = await setup('outage');
    const [aliceTls, bobTls] = [await s.creds('alice'), await s.creds('bob')];
    const relay = await startChild(s.dataDir, s.configFile);
    (await connect(relay.port, bobTls)).close(); // bob is known, then offline
    const alice = await connect(relay.port, aliceTls);
    send(alice, 'alice', 'bob', 1);
    await until(() => receiptOf(alice, 1, 'queued'), 'queued before the outage', 15_000);

    await server.stop();
    const down = await untilHealth(relay.adminPort, 503);
    expect(down).toMatchObject({
      status: 'unavailable',
      storage: { engine: 'postgres', ok: false },
    });
    // A send meanwhile is refused for that message only, with a code that says "try
    // again", and the connection and the relay process stay up.
    send(alice, 'alice', 'bob', 2);
    const refusal = await alice.next('error', 30_000);
    expect(refusal.code).toBe('server_error');
    expect(refusal.clientMessageId?.[15]).toBe(2);
    expect(receiptOf(alice, 2, 'queued')).toBe(false);
    expect(alice.closed).toBe(false);
    expect(relay.child.exitCode).toBeNull();
    expect(await scrape(relay.adminPort)).toContain('parley_storage_up{engine="postgres"} 0');
    // A device connecting meanwhile is not let in (its record cannot be written) and
    // is told so, rather than left waiting.
    const late = new TestClient(`wss://127.0.0.1:${relay.port}/ws`, bobTls);
    await until(() => late.opened || late.closed, 'open', 15_000);
    late.send({ type: 'hello', protocolVersions: [1], timestamp: Date.now() });
    expect((await late.next('error', 30_000)).code).toBe('server_error');
    expect(late.has('welcome')).toBe(false);
    late.close();

    await server.start();
    await untilHealth(relay.adminPort, 200);
    expect(await scrape(relay.adminPort)).toContain('parley_storage_up{engine="postgres"} 1');
    // The client retries the refused message (same id); the relay stores it now.
    send(alice, 'alice', 'bob', 2);
    await until(() => receiptOf(alice, 2, 'queued'), 'queued after recovery', 15_000);
    const bob = await connect(relay.port, bobTls).catch(async () => {
      throw new Error('bob could not connect after recovery');
    });
    // `connect` consumed mailbox.empty; the backlog came before it.
    const got = bob.frames.flatMap((f: ServerFrame) =>
      f.type === 'deliver' ? [f.payload[0] as number] : [],
    );
    expect(got).toEqual([1, 2]);
    alice.close();
    bob.close();
    expect(relay.child.exitCode).toBeNull();
    await kill(relay.child);
  }, 180_000);

  it('a relay that cannot reach PostgreSQL, or read its password file, does not start', async () => {
    const dataDir = join(dir, 'nostart');
    const storage = (postgres: Record<string, unknown>) => ({
      dataDir,
      port: 0,
      logLevel: 'silent',
      config: { storage: { engine: 'postgres' as const, postgres } },
    });
    // A port nothing listens on: the server's own port while it is stopped.
    await server.stop();
    try {
      await expect(
        startRelay(storage({ host: '127.0.0.1', port: server.port, user: server.user })),
      ).rejects.toMatchObject({ code: 'STORAGE' });
    } finally {
      await server.start();
    }
    await expect(
      startRelay(storage({ host: '127.0.0.1', passwordFile: join(dir, 'missing-password') })),
    ).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('storage.postgres.passwordFile') as unknown as string,
    });
  }, 60_000);
});
