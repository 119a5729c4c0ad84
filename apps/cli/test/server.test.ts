/**
 * `parley server` as a real process: initialises the PKI when absent, prints where it
 * listens and where the credentials are, serves mutual-TLS WebSocket clients, and
 * stops cleanly on SIGTERM and SIGINT. Config errors name the field.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { issueClient } from '@parley/pki';
import { FrameReader, FrameWriter } from '@parley/wire';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const mainTs = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'parley-cli-server-'));
const running = new Set<ChildProcess>();
afterAll(() => {
  for (const c of running) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

interface Proc {
  readonly child: ChildProcess;
  out: string;
  err: string;
  code: number | null | undefined;
}

function parley(...args: string[]): Proc {
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
      env: { ...process.env, TSX_TSCONFIG_PATH: join(root, 'tsconfig.test.json') },
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

async function until(cond: () => boolean, what: string, maxMs = 30_000): Promise<void> {
  for (let waited = 0; !cond(); waited += 20) {
    if (waited > maxMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Connects with a client certificate and returns the name the relay welcomed. */
async function welcomeName(url: string, data: string, name: string): Promise<string> {
  const f = await issueClient(data, name, join(dir, 'clients', name));
  const ws = new WebSocket(url, {
    ca: readFileSync(join(data, 'pki', 'ca.crt')),
    cert: f.certPem,
    key: readFileSync(f.keyPath),
  });
  const reader = new FrameReader({ direction: 'toClient', now: Date.now });
  let welcomed: string | undefined;
  ws.on('message', (d: Buffer) => {
    const frame = reader.push(new Uint8Array(d));
    if (frame?.type === 'welcome') welcomed = frame.name;
  });
  ws.on('error', () => undefined);
  await until(() => ws.readyState === WebSocket.OPEN, 'ws open');
  for (const b of new FrameWriter().write({
    type: 'hello',
    protocolVersions: [1],
    timestamp: Date.now(),
  })) {
    ws.send(b);
  }
  await until(() => welcomed !== undefined, 'welcome');
  ws.terminate();
  return welcomed as string;
}

describe('parley server', () => {
  const data = join(dir, 'data');

  it('initialises the PKI, prints where it listens, serves mtls clients, stops on SIGTERM', async () => {
    const p = parley('server', '--data', data, '--port', '0');
    await until(() => /listening on (wss:\/\/\S+)/.test(p.out) || p.code != null, 'listening');
    const url = /listening on (wss:\/\/\S+)/.exec(p.out)?.[1];
    expect(url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+\/ws$/);
    expect(p.out).toContain('(auth mtls)');
    expect(p.out).toContain(`CA certificate: ${join(data, 'pki', 'ca.crt')}`);
    for (const f of ['ca.crt', 'ca.key', 'server.crt', 'server.key', 'crl.pem']) {
      expect(existsSync(join(data, 'pki', f))).toBe(true);
    }
    expect(await welcomeName(url as string, data, 'alice')).toBe('alice');
    p.child.kill('SIGTERM');
    await until(() => p.code != null, 'exit');
    expect(p.code).toBe(0);
    expect(p.out).toContain('parley relay stopped');
  });

  it('reuses the existing CA on restart and stops on SIGINT', async () => {
    const ca = readFileSync(join(data, 'pki', 'ca.crt'), 'utf8');
    const p = parley('server', '--data', data, '--port', '0', '--auth', 'mtls');
    await until(() => p.out.includes('listening on') || p.code != null, 'listening');
    expect(readFileSync(join(data, 'pki', 'ca.crt'), 'utf8')).toBe(ca);
    const url = /listening on (wss:\/\/\S+)/.exec(p.out)?.[1] as string;
    expect(await welcomeName(url, data, 'bob')).toBe('bob');
    p.child.kill('SIGINT');
    await until(() => p.code != null, 'exit');
    expect(p.code).toBe(0);
  });

  it('refuses an invalid config file, naming the field, and a bad --auth', async () => {
    const cfg = join(dir, 'bad.json');
    writeFileSync(cfg, JSON.stringify({ limits: { idleTimeoutMs: -5 } }));
    const p = parley('server', '--data', data, '--port', '0', '--config', cfg);
    await until(() => p.code != null, 'exit');
    expect(p.code).toBe(1);
    expect(p.err).toContain('limits.idleTimeoutMs');
    const q = parley('server', '--data', data, '--auth', 'password');
    await until(() => q.code != null, 'exit');
    expect(q.code).toBe(1);
    expect(q.err).toContain('--auth');
  });
});
