/**
 * The `parley` command as a real child process, for tests of long-running commands
 * (`parley server`): run from the TypeScript sources through tsx, output collected,
 * every process started here killed by `killAll` (call it from `afterAll`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const mainTs = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const running = new Set<ChildProcess>();

/** A started `parley` process; `out`/`err` grow as it writes, `code` is set on exit. */
export interface Proc {
  readonly child: ChildProcess;
  out: string;
  err: string;
  code: number | null | undefined;
}

/** Starts `parley ARGS…` without waiting for it. */
export function parley(...args: string[]): Proc {
  return parleyWithEnv({}, ...args);
}

/** Starts `parley ARGS…` with `env` added to this process's environment. */
export function parleyWithEnv(env: Readonly<Record<string, string>>, ...args: string[]): Proc {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      `const { main } = await import(${JSON.stringify(mainTs)}); process.exitCode = await main(['node', 'parley', ...process.argv.slice(1)]);`,
      ...args,
    ],
    {
      cwd: root,
      env: { ...process.env, ...env, TSX_TSCONFIG_PATH: join(root, 'tsconfig.test.json') },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  running.add(child);
  const p: Proc = { child, out: '', err: '', code: undefined };
  child.stdout?.on('data', (d: Buffer) => (p.out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (p.err += d.toString()));
  child.on('exit', (code) => {
    p.code = code;
    running.delete(child);
  });
  return p;
}

/** Polls `cond` until true; the bound only stops a hang (no timing is asserted). */
export async function until(cond: () => boolean, what: string, maxMs = 30_000): Promise<void> {
  for (let waited = 0; !cond(); waited += 20) {
    if (waited > maxMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Runs `parley ARGS…` to completion. */
export async function run(...args: string[]): Promise<Proc> {
  const p = parley(...args);
  await until(() => p.code != null, `parley ${args.join(' ')}`);
  return p;
}

/** Kills every process this module started that is still running. */
export function killAll(): void {
  for (const c of running) c.kill('SIGKILL');
}
