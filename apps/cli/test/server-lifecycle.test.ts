/**
 * The relay's data folder and trust root as real processes see them (issue 9 §3, §4):
 * the CA certificate is never replaced when its key is offline and the relay still
 * serves; one relay per data folder; a relay that cannot start exits non-zero.
 */
import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { initPki, issueClient } from '@parley/pki';
import { FrameReader, FrameWriter } from '@parley/wire';
import { afterAll, describe, expect, it } from 'vitest';
import { killAll, parley, run, until, type Proc } from './cli-process.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-cli-lifecycle-'));
afterAll(() => {
  killAll();
  rmSync(dir, { recursive: true, force: true });
});

const urlOf = (p: Proc): string | undefined => /listening on (wss:\/\/\S+)/.exec(p.out)?.[1];

async function listening(p: Proc): Promise<string> {
  await until(() => urlOf(p) !== undefined || p.code != null, 'listening');
  const url = urlOf(p);
  if (url === undefined) throw new Error(`relay did not start: ${p.err}`);
  return url;
}

async function stop(p: Proc): Promise<void> {
  p.child.kill('SIGTERM');
  await until(() => p.code != null, 'exit');
}

/** Connects over real mutual TLS and returns the name the relay welcomed. */
async function welcomeName(
  url: string,
  caPem: string,
  creds: { certPem: string; keyPath: string },
): Promise<string> {
  const ws = new WebSocket(url, {
    ca: caPem,
    cert: creds.certPem,
    key: readFileSync(creds.keyPath),
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
  }))
    ws.send(b);
  await until(() => welcomed !== undefined, 'welcome');
  ws.terminate();
  return welcomed as string;
}

describe('CA key offline', () => {
  it('pki init and parley server leave ca.crt byte-identical and the relay serves', async () => {
    const data = join(dir, 'offline');
    expect((await run('pki', 'init', '--data', data)).code).toBe(0);
    const alice = await issueClient(data, 'alice', join(dir, 'offline-alice'));
    const caCrt = join(data, 'pki', 'ca.crt');
    const before = readFileSync(caCrt);
    rmSync(join(`${data}-ca`, 'ca.key'));

    const init = await run('pki', 'init', '--data', data);
    expect(init.code).toBe(0);
    expect(init.out).toMatch(/CA key is offline/);
    expect(readFileSync(caCrt).equals(before)).toBe(true);

    const server = parley('server', '--data', data, '--port', '0');
    const url = await listening(server);
    expect(readFileSync(caCrt).equals(before)).toBe(true);
    expect(existsSync(join(data, 'pki', 'ca.key'))).toBe(false);
    expect(existsSync(join(`${data}-ca`, 'ca.key'))).toBe(false);
    expect(await welcomeName(url, before.toString('utf8'), alice)).toBe('alice');
    // Without the CA key the relay does not warn that it can read it.
    expect(server.err).not.toMatch(/CA private key is readable/);
    await stop(server);
    expect(server.code).toBe(0);
  });

  it('without the CA key, a CRL close to its nextUpdate is reported at start', async () => {
    const data = join(dir, 'offline-due');
    await initPki(data, { now: () => new Date(Date.now() - 25 * 86_400_000) });
    rmSync(join(`${data}-ca`, 'ca.key'));
    const server = parley('server', '--data', data, '--port', '0');
    await listening(server);
    await until(() => /CRL expires soon and the CA key is offline/.test(server.err), 'CRL warning');
    await stop(server);
    expect(server.code).toBe(0);
  });

  it('the relay serves with its CA folder gone: it reads DATA/pki only', async () => {
    const data = join(dir, 'ca-gone');
    const first = parley('server', '--data', data, '--port', '0');
    await listening(first);
    expect(first.out).toContain(`created the CA in ${data}-ca`);
    await stop(first);
    const alice = await issueClient(data, 'alice', join(dir, 'ca-gone-alice'));
    rmSync(`${data}-ca`, { recursive: true });
    const server = parley('server', '--data', data, '--port', '0');
    const url = await listening(server);
    expect(server.out).not.toContain('created the CA');
    expect(existsSync(`${data}-ca`)).toBe(false);
    const ca = readFileSync(join(data, 'pki', 'ca.crt'), 'utf8');
    expect(await welcomeName(url, ca, alice)).toBe('alice');
    expect(server.err).not.toMatch(/CA private key is readable/);
    await stop(server);
    expect(server.code).toBe(0);
  });

  it('warns at start when the default CA folder beside the data folder is readable by the relay', async () => {
    const data = join(dir, 'sibling-readable');
    const server = parley('server', '--data', data, '--port', '0');
    await listening(server);
    expect(existsSync(join(`${data}-ca`, 'ca.key'))).toBe(true);
    await until(
      () =>
        /CA private key is readable by the relay process \(it does not use it\)/.test(server.err),
      'sibling CA key warning',
    );
    await stop(server);
    expect(server.code).toBe(0);
  });

  it('warns at start when the CA key is readable by the relay (CA inside DATA/pki, the older layout)', async () => {
    const data = join(dir, 'online');
    await initPki(data);
    cpSync(`${data}-ca`, join(data, 'pki'), { recursive: true });
    rmSync(`${data}-ca`, { recursive: true });
    const server = parley('server', '--data', data, '--port', '0');
    await listening(server);
    await until(() => /CA private key is readable/.test(server.err), 'CA key warning');
    await stop(server);
  });
});

describe('one relay per data folder', () => {
  it('a second relay on the same --data exits non-zero; the first keeps a verifying audit log', async () => {
    const data = join(dir, 'shared');
    const first = parley('server', '--data', data, '--port', '0');
    await listening(first);
    const second = parley('server', '--data', data, '--port', '0');
    await until(() => second.code != null, 'second relay exits', 10_000);
    expect(second.code).not.toBe(0);
    expect(second.err).toMatch(new RegExp(`in use by another relay \\(pid ${first.child.pid}`));
    expect(first.code).toBeUndefined();
    await stop(first);
    expect(first.code).toBe(0);
    const verify = await run('audit', 'verify', '--data', data);
    expect(verify.err).toBe('');
    expect(verify.code).toBe(0);
    expect(existsSync(join(data, 'relay.lock'))).toBe(false);
  });

  it('a lock left by a dead process is taken over', async () => {
    const data = join(dir, 'stale');
    const first = parley('server', '--data', data, '--port', '0');
    await listening(first);
    first.child.kill('SIGKILL');
    await until(() => first.code !== undefined, 'killed');
    expect(existsSync(join(data, 'relay.lock'))).toBe(true);
    const next = parley('server', '--data', data, '--port', '0');
    await listening(next);
    await stop(next);
    expect(next.code).toBe(0);
  });
});

describe('parley server backup / restore', () => {
  it('backs up a serving relay, refuses to restore under it, restores once it stopped', async () => {
    const data = join(dir, 'backed-up');
    const server = parley('server', '--data', data, '--port', '0');
    await listening(server);
    const out = join(dir, 'backup-1.tar');
    const backup = await run('server', 'backup', '--data', data, '--out', out);
    expect(backup.err).toBe('');
    expect(backup.code).toBe(0);
    // ONE file, a tar archive any tar reads, private to its owner.
    expect(statSync(out).isFile()).toBe(true);
    expect(statSync(out).mode & 0o077).toBe(0);
    const entries = execFileSync('tar', ['-tf', out], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => l.replace(/\/$/, ''));
    for (const f of ['relay.db', 'audit.log', 'audit.key', 'pki/ca.crt', 'pki/server.key']) {
      expect(entries).toContain(f);
    }
    expect(entries.filter((e) => e.endsWith('ca.key'))).toEqual([]);
    // An existing FILE is never overwritten, and no temporary file is left beside it.
    const bytes = readFileSync(out);
    const twice = await run('server', 'backup', '--data', data, '--out', out);
    expect(twice.code).toBe(1);
    expect(twice.err).toMatch(/already exists/);
    expect(readFileSync(out).equals(bytes)).toBe(true);
    expect(readdirSync(dir).filter((f) => f.startsWith('.backup-1.tar'))).toEqual([]);
    // Something that is not a backup is refused with a clear error.
    const junk = join(dir, 'not-a-backup.tar');
    writeFileSync(junk, 'hello');
    const busy = await run('server', 'restore', '--data', data, '--from', out);
    expect(busy.code).toBe(1);
    expect(busy.err).toMatch(/in use by another relay/);
    await stop(server);
    const bad = await run('server', 'restore', '--data', data, '--from', junk);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/not a readable relay backup archive/);
    expect(readdirSync(data).filter((f) => f.includes('before-restore'))).toEqual([]);
    const restore = await run('server', 'restore', '--data', data, '--from', out);
    expect(restore.err).toBe('');
    expect(restore.code).toBe(0);
    expect(restore.out).toMatch(/one-time prekeys marked spent/);
    expect((await run('audit', 'verify', '--data', data)).code).toBe(0);
    const again = parley('server', '--data', data, '--port', '0');
    await listening(again);
    await stop(again);
    expect(again.code).toBe(0);
  });
});

describe('start-up failure', () => {
  let blocker: Server | undefined;
  afterAll(() => blocker?.close());

  it('a bad CRL exits non-zero and releases the data folder', async () => {
    const data = join(dir, 'bad-crl');
    await initPki(data);
    writeFileSync(join(data, 'pki', 'crl.pem'), 'not a CRL\n');
    const p = parley('server', '--data', data, '--port', '0');
    await until(() => p.code != null, 'exit on a bad CRL', 10_000);
    expect(p.code).not.toBe(0);
    expect(existsSync(join(data, 'relay.lock'))).toBe(false);
  });

  it('a port in use exits non-zero within 10 s and releases the data folder', async () => {
    blocker = createServer();
    await new Promise<void>((r) => (blocker as Server).listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    const data = join(dir, 'busy');
    const p = parley('server', '--data', data, '--port', String(port));
    await until(() => p.code != null, 'exit on port in use', 10_000);
    expect(p.code).not.toBe(0);
    expect(p.err).toMatch(/EADDRINUSE/);
    expect(existsSync(join(data, 'relay.lock'))).toBe(false);
  });
});
