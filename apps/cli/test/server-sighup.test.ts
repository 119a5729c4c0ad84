/**
 * SIGHUP re-reads the CRL (M3) in the real `parley server` process.
 *
 * The file watcher is switched off (`tls.watchCrl: false`), and before the signal the
 * test proves it: well after a revocation (several poll intervals) the revoked
 * certificate still completes a new handshake and its open connection is still served.
 * Only then does SIGHUP go out. The audit record must name the signal as the trigger,
 * so neither the watcher nor the daily refresh can satisfy this test; without a SIGHUP
 * handler the signal would terminate the process and every later step fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { createNodeCrypto } from '@parley/crypto/node';
import { initPki, issueClient, revoke } from '@parley/pki';
import { loadOrCreateAuditKey, verifyAuditLog, type AuditRecord } from '@parley/server';
import { FrameReader, FrameWriter, type ClientFrame, type ServerFrame } from '@parley/wire';
import { afterAll, describe, expect, it } from 'vitest';
import { until } from './cli-process.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const mainTs = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'parley-cli-sighup-'));
const data = join(dir, 'data');
const running = new Set<ChildProcess>();
const sockets = new Set<WebSocket>();
afterAll(() => {
  for (const s of sockets) s.terminate();
  for (const c of running) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** The relay polls crl.pem every 500 ms when watching; waiting 4 periods would catch it. */
const WATCHER_WOULD_HAVE_FIRED_MS = 2_000;

function startServer(config: string): {
  child: ChildProcess;
  out: () => string;
  code: () => number | null | undefined;
} {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      `const { main } = await import(${JSON.stringify(mainTs)}); process.exitCode = await main(['node', 'parley', ...process.argv.slice(1)]);`,
      'server',
      '--data',
      data,
      '--port',
      '0',
      '--config',
      config,
      '--log-level',
      'warn',
    ],
    {
      cwd: root,
      env: { ...process.env, TSX_TSCONFIG_PATH: join(root, 'tsconfig.test.json') },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  running.add(child);
  let out = '';
  let code: number | null | undefined;
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.on('exit', (c) => {
    code = c;
    running.delete(child);
  });
  return { child, out: () => out, code: () => code };
}

/** A mutual-TLS WebSocket client that speaks just enough of the wire protocol. */
class Client {
  readonly ws: WebSocket;
  readonly frames: ServerFrame[] = [];
  readonly #reader = new FrameReader({ direction: 'toClient', now: Date.now });
  readonly #writer = new FrameWriter();
  opened = false;
  closeCode: number | undefined;
  failed = false;

  constructor(url: string, creds: { ca: string; cert: string; key: string }) {
    this.ws = new WebSocket(url, { ...creds, perMessageDeflate: false });
    sockets.add(this.ws);
    this.ws.on('open', () => (this.opened = true));
    this.ws.on('error', () => (this.failed = true));
    this.ws.on('close', (code) => (this.closeCode = code));
    this.ws.on('message', (d: Buffer) => {
      const f = this.#reader.push(new Uint8Array(d));
      if (f?.type === 'ping') this.send({ type: 'pong', timestamp: f.timestamp });
      else if (f) this.frames.push(f);
    });
  }

  get ended(): boolean {
    return this.closeCode !== undefined || this.failed;
  }

  send(frame: ClientFrame): void {
    for (const b of this.#writer.write(frame)) this.ws.send(b);
  }

  async next(type: ServerFrame['type']): Promise<ServerFrame> {
    let found: ServerFrame | undefined;
    await until(() => {
      const i = this.frames.findIndex((f) => f.type === type);
      if (i >= 0) [found] = this.frames.splice(i, 1);
      return found !== undefined || this.ended;
    }, `frame ${type}`);
    if (!found) throw new Error(`connection ended (${this.closeCode}) before ${type}`);
    return found;
  }

  /** Opens, says hello and waits for welcome; false when the handshake is refused. */
  async welcomed(): Promise<boolean> {
    await until(() => this.opened || this.ended, 'open or refusal');
    if (!this.opened) return false;
    this.send({ type: 'hello', protocolVersions: [1], timestamp: Date.now() });
    return (await this.next('welcome')).type === 'welcome';
  }

  /** One ping/pong round trip: the relay still serves this connection. */
  async served(): Promise<boolean> {
    const timestamp = Date.now();
    this.send({ type: 'ping', timestamp });
    const f = await this.next('pong');
    return f.type === 'pong' && f.timestamp === timestamp;
  }
}

function auditRecords(): AuditRecord[] {
  const crypto = createNodeCrypto();
  const key = loadOrCreateAuditKey(join(data, 'audit.key'), crypto);
  const v = verifyAuditLog(readFileSync(join(data, 'audit.log'), 'utf8'), key, crypto);
  if (!v.ok) throw new Error(`audit log does not verify at line ${v.line}: ${v.reason}`);
  return v.records;
}

describe('parley server: SIGHUP reloads the CRL', () => {
  it('cuts a connected revoked device, refuses its next handshake, keeps serving others', async () => {
    await initPki(data);
    const ca = readFileSync(join(data, 'pki', 'ca.crt'), 'utf8');
    const creds = async (name: string) => {
      const f = await issueClient(data, name, join(dir, 'clients', name));
      return { ca, cert: f.certPem, key: readFileSync(f.keyPath, 'utf8') };
    };
    const alice = await creds('alice');
    const bob = await creds('bob');
    const config = join(dir, 'relay.json');
    writeFileSync(config, JSON.stringify({ tls: { watchCrl: false } }));

    const server = startServer(config);
    await until(() => /listening on wss:/.test(server.out()) || server.code() != null, 'listen');
    const url = /listening on (wss:\/\/\S+)/.exec(server.out())?.[1];
    expect(url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+\/ws$/);

    const a = new Client(url as string, alice);
    const b = new Client(url as string, bob);
    expect(await a.welcomed()).toBe(true);
    expect(await b.welcomed()).toBe(true);

    await revoke(data, 'alice');
    // Control: with the watcher off, nothing reloads by itself. Long after the watcher
    // would have fired, the revoked certificate still completes a handshake, the open
    // connection is still served, and no reload was audited.
    await new Promise((r) => setTimeout(r, WATCHER_WOULD_HAVE_FIRED_MS));
    const before = new Client(url as string, alice);
    expect(await before.welcomed()).toBe(true);
    expect(await a.served()).toBe(true);
    expect(auditRecords().filter((r) => r.type === 'crl.reloaded')).toEqual([]);

    server.child.kill('SIGHUP');
    await until(() => a.ended && before.ended, 'revoked connections closed');
    expect(a.closeCode).toBe(1001);
    expect(before.closeCode).toBe(1001);

    const after = new Client(url as string, alice);
    expect(await after.welcomed()).toBe(false);
    expect(after.opened).toBe(false);

    expect(b.closeCode).toBeUndefined();
    expect(await b.served()).toBe(true);
    expect(server.code()).toBeUndefined();

    const records = auditRecords();
    const reload = records.filter((r) => r.type === 'crl.reloaded');
    expect(reload).toHaveLength(1);
    expect(reload[0]).toMatchObject({ code: 'signal', value: 2 });
    expect(records).toContainEqual(
      expect.objectContaining({
        type: 'tls.rejected',
        identity: 'alice',
        code: 'revoked-while-connected',
      }),
    );
    // The refused handshake after the reload is audited too.
    expect(
      records.filter((r) => r.type === 'tls.rejected' && r.code !== 'revoked-while-connected'),
    ).not.toHaveLength(0);

    b.ws.terminate();
    server.child.kill('SIGTERM');
    await until(() => server.code() != null, 'exit');
    expect(server.code()).toBe(0);
  });
});
