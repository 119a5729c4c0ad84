/**
 * A browser user and terminal users on `parley server --auth open --web` as a real
 * process (real TLS with its own CA, SQLite and blob files in a temporary data folder,
 * the web app built by Vite and served at `/`), which a test may SIGKILL and start again
 * on the same port and data; and the `parley` command (the built apps/cli) as real
 * processes. Every wait is bounded.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildApp } from './e2e-env.js';

const BIN = fileURLToPath(new URL('../../cli/bin/parley.js', import.meta.url));

export interface Proc {
  readonly child: ChildProcess;
  out: string;
  err: string;
  code: number | null | undefined;
  readonly exited: Promise<number | null>;
}

/** Starts `parley ARGS` with `env` added to this process's environment. */
export function parleyProc(args: readonly string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let resolveExit: (c: number | null) => void = () => undefined;
  const p: Proc = {
    child,
    out: '',
    err: '',
    code: undefined,
    exited: new Promise((r) => (resolveExit = r)),
  };
  child.stdout?.on('data', (d: Buffer) => (p.out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (p.err += d.toString()));
  child.on('exit', (code) => {
    p.code = code;
    resolveExit(code);
  });
  return p;
}

/** Runs `parley ARGS` to its end. */
export async function parley(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; out: string; err: string }> {
  const p = parleyProc(args, env);
  const code = await p.exited;
  return { code, out: p.out, err: p.err };
}

/** Waits (bounded) until `cond` holds. */
export async function until(
  cond: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

export interface CliRelay {
  readonly root: string;
  readonly data: string;
  /** https://127.0.0.1:PORT/ (the web app). */
  readonly pageUrl: string;
  /** wss://127.0.0.1:PORT (for `parley init --server`). */
  readonly wsUrl: string;
  /** The relay's CA certificate file (for `parley init --ca`). */
  readonly caFile: string;
  /** SIGKILLs the relay process and waits for it to be gone. */
  kill(): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startCliRelay(): Promise<CliRelay> {
  if (!existsSync(fileURLToPath(new URL('../../cli/dist/main.js', import.meta.url))))
    throw new Error('apps/cli is not built: run `npx tsc -b` first');
  const root = mkdtempSync(join(tmpdir(), 'parley-web-data-'));
  const appDir = join(root, 'app');
  const data = join(root, 'data');
  await buildApp(appDir);
  const port = await freePort();
  let proc: Proc | undefined;
  const start = async (): Promise<void> => {
    const p = parleyProc([
      'server',
      '--data',
      data,
      '--auth',
      'open',
      '--port',
      String(port),
      '--web',
      '--web-dir',
      appDir,
      '--log-level',
      'warn',
    ]);
    proc = p;
    await until(() => /web client: open https:/.test(p.out) || p.code != null, 'relay up', 60_000);
    if (p.code != null) throw new Error(`relay did not start: ${p.err}`);
  };
  await start();
  const kill = async (): Promise<void> => {
    const p = proc;
    if (!p || p.code != null) return;
    p.child.kill('SIGKILL');
    await p.exited;
  };
  return {
    root,
    data,
    pageUrl: `https://127.0.0.1:${port}/`,
    wsUrl: `wss://127.0.0.1:${port}`,
    caFile: join(data, 'pki', 'ca.crt'),
    kill,
    start,
    close: async () => {
      await kill();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Makes a terminal profile `name` on the relay; returns its folder. */
export async function cliProfile(relay: CliRelay, name: string, pass: string): Promise<string> {
  const dir = join(relay.root, `cli-${name}`);
  const r = await parley(
    ['init', '--profile', dir, '--server', relay.wsUrl, '--name', name, '--ca', relay.caFile],
    { PARLEY_PASSPHRASE: pass },
  );
  if (r.code !== 0) throw new Error(`parley init ${name}: ${r.out}${r.err}`);
  return dir;
}
