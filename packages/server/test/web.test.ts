/**
 * The relay serving the web client: strict headers on every answer, exact MIME types,
 * gzip when asked, only files of the app directory (no traversal, no dotfiles, no
 * symbolic link out), the WebSocket still at /ws, and refusals at start for an app
 * that is missing or a mode that cannot serve it.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRelay, WEB_CSP } from '@parley/server';
import type { RunningRelay } from '@parley/server';
import { crypto, TestClient } from './helpers.js';
import type { Harness } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'parley-web-'));
const app = join(root, 'app');
let relay: RunningRelay;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function get(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: relay.port,
        path,
        method,
        headers,
        ca: relay.caPem,
        minVersion: 'TLSv1.3',
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  mkdirSync(join(app, 'assets'), { recursive: true });
  writeFileSync(
    join(app, 'index.html'),
    '<!doctype html><script type="module" src="/assets/app-1.js"></script>',
  );
  writeFileSync(
    join(app, 'assets', 'app-1.js'),
    `console.log(${JSON.stringify('x'.repeat(2000))});`,
  );
  writeFileSync(join(app, 'assets', 'crypto.wasm'), Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
  writeFileSync(join(app, 'assets', 'style.css'), 'body{margin:0}');
  writeFileSync(join(app, '.env'), 'SECRET=1');
  writeFileSync(join(app, 'notes.unknownext'), 'not an app file');
  writeFileSync(join(root, 'outside.js'), 'outside the app');
  symlinkSync(join(root, 'outside.js'), join(app, 'assets', 'link.js'));
  relay = await startRelay({
    dataDir: join(root, 'data'),
    port: 0,
    auth: 'open',
    web: true,
    defaultWebDir: app,
    logLevel: 'silent',
  });
});
afterAll(async () => {
  await relay?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('web client serving', () => {
  it('serves index.html at / with the strict headers and names the page URL', async () => {
    const r = await get('/');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers['content-security-policy']).toBe(WEB_CSP);
    expect(WEB_CSP).toContain("script-src 'self' 'wasm-unsafe-eval';");
    expect(WEB_CSP).toContain("connect-src 'self';");
    expect(WEB_CSP).not.toContain('unsafe-inline');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['referrer-policy']).toBe('no-referrer');
    expect(r.headers['x-frame-options']).toBe('DENY');
    expect(r.body.toString()).toContain('/assets/app-1.js');
    expect(relay.webUrl).toBe(`https://127.0.0.1:${relay.port}/`);
  });

  it('gives each file its MIME type, gzip on request, and long caching to hashed assets', async () => {
    const js = await get('/assets/app-1.js', { 'accept-encoding': 'gzip, br' });
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(js.body).toString()).toContain('xxxx');
    expect(js.headers['cache-control']).toContain('immutable');
    const plain = await get('/assets/app-1.js');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body.toString()).toContain('xxxx');
    expect((await get('/assets/crypto.wasm')).headers['content-type']).toBe('application/wasm');
    expect((await get('/assets/style.css')).headers['content-type']).toBe(
      'text/css; charset=utf-8',
    );
    expect((await get('/')).headers['cache-control']).toBe('no-cache');
    const head = await get('/', {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
  });

  it('serves nothing outside the app: traversal, dotfiles, unknown kinds, links out', async () => {
    for (const path of [
      '/../outside.js',
      '/assets/../../outside.js',
      '/%2e%2e/outside.js',
      '/assets/%2e%2e%2f%2e%2e%2foutside.js',
      '/assets/link.js',
      '/.env',
      '/notes.unknownext',
      '/assets/',
      '/etc/passwd',
    ]) {
      const r = await get(path);
      expect(r.status, path).toBe(404);
      expect(r.body.toString(), path).not.toContain('outside the app');
      expect(r.headers['content-security-policy'], path).toBe(WEB_CSP);
      expect(r.headers['x-content-type-options'], path).toBe('nosniff');
    }
    expect((await get('/', {}, 'POST')).status).toBe(405);
  });

  it('keeps the relay WebSocket at /ws beside the web client', async () => {
    const c = await TestClient.connect({ relay } as unknown as Harness);
    const w = await c.openAuth('register', 'webuser', crypto.ed25519.generateKeyPair());
    expect(w.type).toBe('welcome');
    c.close();
  });

  it('refuses to start without the app, and in mtls mode, naming the field', async () => {
    await expect(
      startRelay({
        dataDir: join(root, 'd2'),
        port: 0,
        auth: 'open',
        web: true,
        defaultWebDir: join(root, 'missing'),
        logLevel: 'silent',
      }),
    ).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('web.dir'),
    });
    await expect(
      startRelay({
        dataDir: join(root, 'd3'),
        port: 0,
        auth: 'mtls',
        web: true,
        defaultWebDir: app,
        logLevel: 'silent',
      }),
    ).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('web.enabled'),
    });
  });
});
