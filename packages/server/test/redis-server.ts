/**
 * Test helper: a real Redis server (Debian's `redis-server` package) in a temporary
 * directory, on 127.0.0.1 at a free port, stopped by PID. Tests that need Redis call
 * {@link startRedis}; when the binary is missing it throws with the command that
 * installs it, so such tests fail instead of skipping, in CI and locally alike.
 *
 * Persistence is off (no RDB snapshots, no AOF): the relay keeps nothing in Redis that
 * must survive a Redis restart, and the restart tests rely on exactly that.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

const REDIS_BIN = 'redis-server';
/** Bound on the server answering PING after start. */
const START_MAX_MS = 20_000;
/** Bound on a SIGTERM shutdown before the server is killed. */
const STOP_MAX_MS = 10_000;
const POLL_MS = 25;

/** A running test server. */
export interface TestRedis {
  readonly host: string;
  readonly port: number;
  readonly pid: number;
  /** `redis://` URL of this server. */
  readonly url: string;
  /** Stops the server (SIGTERM, then SIGKILL past the bound). */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
  /** Stops the server and removes its directory. */
  destroy(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function waitExit(child: ChildProcess, maxMs: number): Promise<boolean> {
  for (let waited = 0; !exited(child); waited += POLL_MS) {
    if (waited > maxMs) return false;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  return true;
}

async function pings(port: number): Promise<boolean> {
  const c = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  c.on('error', () => undefined);
  try {
    await c.connect();
    return (await c.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    c.disconnect();
  }
}

/** Starts a fresh server. Throws (never skips) when redis-server is not installed. */
export async function startRedis(): Promise<TestRedis> {
  if (spawnSync(REDIS_BIN, ['--version']).status !== 0) {
    throw new Error(
      'redis-server is not installed; these tests need a real server: ' +
        'apt-get install -y redis-server (.ci/run does this)',
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'parley-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  let log = '';

  const start = async (): Promise<void> => {
    const c = spawn(
      REDIS_BIN,
      [
        '--bind',
        '127.0.0.1',
        '--port',
        String(port),
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'no',
        '--daemonize',
        'no',
        '--protected-mode',
        'yes',
        '--loglevel',
        'warning',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = c;
    const keep = (d: Buffer): void => {
      log = (log + d.toString()).slice(-4000);
    };
    c.stdout?.on('data', keep);
    c.stderr?.on('data', keep);
    for (let waited = 0; ; waited += POLL_MS) {
      if (exited(c)) throw new Error(`redis-server exited at start: ${log}`);
      if (waited > START_MAX_MS) throw new Error(`redis-server did not answer PING: ${log}`);
      if (await pings(port)) return;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  };

  const stop = async (): Promise<void> => {
    const c = child;
    if (!c || exited(c)) return;
    c.kill('SIGTERM');
    if (!(await waitExit(c, STOP_MAX_MS))) {
      c.kill('SIGKILL');
      await waitExit(c, STOP_MAX_MS);
    }
  };

  await start();
  return {
    host: '127.0.0.1',
    port,
    get pid() {
      return child?.pid ?? -1;
    },
    url: `redis://127.0.0.1:${port}`,
    stop,
    start,
    async destroy() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
