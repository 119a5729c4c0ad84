/**
 * `parley server` as a real process: initialises the PKI when absent, prints where it
 * listens and where the credentials are, serves mutual-TLS WebSocket clients, and
 * stops cleanly on SIGTERM and SIGINT. Config errors name the field.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { issueClient } from '@parley/pki';
import { FrameReader, FrameWriter } from '@parley/wire';
import { afterAll, describe, expect, it } from 'vitest';
import { killAll, parley, until } from './cli-process.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-cli-server-'));
afterAll(() => {
  killAll();
  rmSync(dir, { recursive: true, force: true });
});

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
    for (const f of ['ca.crt', 'server.crt', 'server.key', 'crl.pem']) {
      expect(existsSync(join(data, 'pki', f))).toBe(true);
    }
    // One command still makes the whole CA, but its key lands beside the data folder.
    expect(existsSync(join(data, 'pki', 'ca.key'))).toBe(false);
    expect(existsSync(join(`${data}-ca`, 'ca.key'))).toBe(true);
    expect(p.out).toContain(`created the CA in ${data}-ca`);
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
