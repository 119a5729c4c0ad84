/**
 * The README's quick start and walkthrough, run as written: every `npx parley` command of
 * those sections in order, relays left running in the background as the text says, in a
 * fresh folder and in a network namespace of its own (so the README's fixed ports collide
 * with nothing). The interactive `chat` steps are replaced by a `send` and a `read`
 * between the two profiles the walkthrough made. Needs root and `unshare`/`nsenter`/`ip`
 * (.ci/run installs them); a missing tool fails the test.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { until } from './cli-process.js';
import { hasCommand, root } from './deploy-files.js';

const bin = join(root, 'apps', 'cli', 'bin', 'parley.js');
const env = { ...process.env, PARLEY_PASSPHRASE: 'readme walkthrough passphrase' };

/** The `npx parley …` commands of the quick start and walkthrough, in reading order. */
function walkthroughCommands(): string[][] {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const start = readme.indexOf('## Quick start');
  const end = readme.indexOf('\n## ', readme.indexOf('## Chat in two terminals'));
  expect(start, 'README has a quick start').toBeGreaterThan(0);
  const text = readme.slice(start, end);
  const commands: string[] = [];
  // Shell blocks (with `\` continuations and `#` comments) and inline code, in order.
  for (const m of text.matchAll(/```sh\n([\s\S]*?)```|`(npx parley [^`]+)`/g)) {
    if (m[2] !== undefined) {
      commands.push(m[2]);
      continue;
    }
    const joined = (m[1] ?? '').replace(/\\\n\s*/g, ' ');
    for (const line of joined.split('\n')) {
      const code = line.replace(/(^|\s)#.*$/, '').trim();
      if (code.startsWith('npx parley ')) commands.push(code);
    }
  }
  return commands.map((c) => c.split(/\s+/).slice(2));
}

const dir = mkdtempSync(join(tmpdir(), 'parley-readme-'));
const running = new Set<ChildProcess>();
afterAll(() => {
  for (const c of running) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

interface Bg {
  out: string;
  err: string;
  code: number | null | undefined;
  child: ChildProcess;
}

function background(cmd: string, args: string[]): Bg {
  const child = spawn(cmd, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const p: Bg = { out: '', err: '', code: undefined, child };
  child.stdout?.on('data', (d: Buffer) => (p.out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (p.err += d.toString()));
  child.on('exit', (c) => {
    p.code = c;
    running.delete(child);
  });
  return p;
}

describe('README quick start and walkthrough', () => {
  it('run in order as one path, with the relays the text leaves running', async () => {
    const missing = ['unshare', 'nsenter', 'ip'].filter((c) => !hasCommand(c));
    expect(missing, 'tools (.ci/run installs util-linux and iproute2)').toEqual([]);
    expect(process.getuid?.(), 'network namespaces need root (CI runs as root)').toBe(0);

    const commands = walkthroughCommands();
    expect(commands[0]?.[0], 'the quick start starts the relay').toBe('server');

    // A network namespace of its own, held open by a sleeping process (killed at the end).
    const holder = background('unshare', [
      '--net',
      'sh',
      '-c',
      'ip link set lo up && echo "ready $$" && exec sleep infinity',
    ]);
    await until(() => /ready \d+/.test(holder.out) || holder.code != null, 'the namespace');
    const nsPid = Number(/ready (\d+)/.exec(holder.out)?.[1]);
    expect(nsPid, holder.err).toBeGreaterThan(0);
    const inNs = ['nsenter', `--target=${nsPid}`, '--net', '--', process.execPath, bin];

    const relays: Bg[] = [];
    const chats: string[][] = [];
    const afterChat: string[][] = [];
    for (const args of commands) {
      if (args[0] === 'server') {
        const relay = background(inNs[0] ?? '', [...inNs.slice(1), ...args]);
        relays.push(relay);
        await until(
          () => /listening on wss:/.test(relay.out) || relay.code != null,
          `parley ${args.join(' ')}`,
        );
        expect(relay.code, `parley ${args.join(' ')}: ${relay.err}`).toBeUndefined();
        continue;
      }
      if (args[0] === 'chat') {
        chats.push(args);
        continue;
      }
      if (args[0] === 'verify') {
        afterChat.push(args); // compares safety numbers of a conversation: after the chat
        continue;
      }
      const r = spawnSync(inNs[0] ?? '', [...inNs.slice(1), ...args], {
        cwd: dir,
        env,
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.status, `parley ${args.join(' ')}:\n${r.stdout}\n${r.stderr}`).toBe(0);
      for (const relay of relays) expect(relay.code, relay.err).toBeUndefined();
    }
    expect(relays.length, 'the quick-start relay and the open-mode relay').toBe(2);

    // The two chats of the walkthrough, as commands: alice writes, bob reads it.
    const profiles = chats.map((a) => a[a.indexOf('--profile') + 1] ?? '');
    expect(profiles).toEqual(['./alice', './bob']);
    const run = (...args: string[]) =>
      spawnSync(inNs[0] ?? '', [...inNs.slice(1), ...args], {
        cwd: dir,
        env,
        encoding: 'utf8',
        timeout: 60_000,
      });
    const sent = run('send', '--profile', './alice', 'bob', 'hello from the README');
    expect(sent.status, sent.stderr).toBe(0);
    let read = run('read', '--profile', './bob', '--json');
    await until(() => {
      if (read.stdout.includes('hello from the README')) return true;
      read = run('read', '--profile', './bob', '--json');
      return read.stdout.includes('hello from the README');
    }, 'bob to read alice’s message');

    expect(afterChat.length, 'the walkthrough compares safety numbers').toBeGreaterThan(0);
    for (const args of afterChat) {
      const r = run(...args);
      expect(r.status, `parley ${args.join(' ')}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(/(\d{5}\s+){11}\d{5}/);
    }

    for (const relay of relays) relay.child.kill('SIGTERM');
    await until(() => relays.every((r) => r.code != null), 'the relays to stop');
    expect(relays.map((r) => r.code)).toEqual([0, 0]);
  }, 180_000);
});
