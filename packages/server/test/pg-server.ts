/**
 * Test helper: a real PostgreSQL server (Debian's `postgresql` package) in a temporary
 * directory, on 127.0.0.1 at a free port, stopped by PID. Tests that need PostgreSQL
 * call {@link startPostgres}; when the binaries are missing it throws with the command
 * that installs them, so such tests fail instead of skipping, in CI and locally alike.
 *
 * PostgreSQL refuses to run as root, so as root the server runs as the `postgres` system
 * user (`setpriv` executes it in place, so the PID we hold is the postmaster's own).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

const PG_ROOT = '/usr/lib/postgresql';
/** Bound on the server becoming connectable after start (initdb is separate). */
const START_MAX_MS = 60_000;
/** Bound on a fast shutdown before the postmaster is killed. */
const STOP_MAX_MS = 15_000;
const POLL_MS = 50;

export const PG_USER = 'parley';

/** A running test server. */
export interface TestPostgres {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** A file holding the password (for `passwordFile` configuration). */
  readonly passwordFile: string;
  readonly pid: number;
  /** `postgres://` URL of a database on this server. */
  url(database: string): string;
  /** Creates an empty database and returns its name. */
  createDatabase(prefix?: string): Promise<string>;
  /** Stops the server (fast shutdown, then SIGKILL past the bound); data stays. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data directory. */
  start(): Promise<void>;
  /** Stops the server and removes its directory. */
  destroy(): Promise<void>;
}

/** The newest installed PostgreSQL's bin directory, or undefined. */
export function findPostgresBin(): string | undefined {
  if (!existsSync(PG_ROOT)) return undefined;
  const versions = readdirSync(PG_ROOT)
    .filter((v) => existsSync(join(PG_ROOT, v, 'bin', 'postgres')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(PG_ROOT, versions[0], 'bin');
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

const asRoot = (): boolean => process.getuid?.() === 0;

/** argv that runs `cmd` as the postgres user when we are root, in place (same PID). */
function asPostgresUser(cmd: string, args: string[]): [string, string[]] {
  if (!asRoot()) return [cmd, args];
  return ['setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', cmd, ...args]];
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

/** Starts a fresh server. Throws (never skips) when PostgreSQL is not installed. */
export async function startPostgres(): Promise<TestPostgres> {
  const bin = findPostgresBin();
  if (!bin) {
    throw new Error(
      `PostgreSQL is not installed (no ${PG_ROOT}/*/bin/postgres); these tests need a real server: ` +
        'apt-get install -y postgresql (.ci/run does this)',
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'parley-pg-'));
  const data = join(dir, 'data');
  const sockets = join(dir, 'sock');
  const password = `pw-${randomBytes(12).toString('hex')}`;
  const pwFile = join(dir, 'password');
  writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
  if (asRoot()) {
    const pgUser = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const uid = Number(pgUser.stdout.trim());
    const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    if (pgUser.status !== 0 || !Number.isInteger(uid)) {
      throw new Error('running as root but there is no `postgres` system user to run PostgreSQL');
    }
    chownSync(dir, uid, gid);
    chownSync(pwFile, uid, gid);
    mkdirSync(sockets);
    chownSync(sockets, uid, gid);
  } else {
    mkdirSync(sockets);
  }
  const [initCmd, initArgs] = asPostgresUser(join(bin, 'initdb'), [
    '-D',
    data,
    '-U',
    PG_USER,
    `--pwfile=${pwFile}`,
    '--auth-host=scram-sha-256',
    '--auth-local=trust',
    '-E',
    'UTF8',
    '--no-instructions',
  ]);
  const init = spawnSync(initCmd, initArgs, { encoding: 'utf8' });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
  }
  const port = await freePort();
  let child: ChildProcess | undefined;
  let log = '';

  const start = async (): Promise<void> => {
    const [cmd, args] = asPostgresUser(join(bin, 'postgres'), [
      '-D',
      data,
      '-k',
      sockets,
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-c',
      'max_connections=60',
    ]);
    const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child = c;
    c.stderr?.on('data', (d: Buffer) => {
      log = (log + d.toString()).slice(-4000);
    });
    for (let waited = 0; ; waited += POLL_MS) {
      if (exited(c)) throw new Error(`postgres exited at start: ${log}`);
      if (waited > START_MAX_MS) throw new Error(`postgres did not accept connections: ${log}`);
      const client = new pg.Client({
        host: '127.0.0.1',
        port,
        user: PG_USER,
        password,
        database: 'postgres',
      });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.end();
        return;
      } catch {
        await client.end().catch(() => undefined);
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    }
  };

  const stop = async (): Promise<void> => {
    const c = child;
    if (!c || exited(c)) return;
    // SIGINT is PostgreSQL's fast shutdown: it ends client sessions instead of waiting
    // for them (SIGTERM waits for every client to disconnect).
    c.kill('SIGINT');
    if (!(await waitExit(c, STOP_MAX_MS))) {
      c.kill('SIGKILL');
      await waitExit(c, STOP_MAX_MS);
    }
  };

  await start();
  let seq = 0;
  const url = (database: string): string =>
    `postgres://${PG_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
  return {
    host: '127.0.0.1',
    port,
    user: PG_USER,
    password,
    passwordFile: pwFile,
    get pid() {
      return child?.pid ?? -1;
    },
    url,
    async createDatabase(prefix = 'relay') {
      const name = `${prefix}_${process.pid}_${++seq}`;
      const client = new pg.Client({ connectionString: url('postgres') });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return name;
    },
    stop,
    start,
    async destroy() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
