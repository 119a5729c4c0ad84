/**
 * `parley server --web` as a real process: the help says how to enable the web client
 * and which URL to open; open mode prints that URL and serves the app there; mtls
 * mode and a missing app refuse to start, naming the field, with a non-zero exit.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { killAll, parley, run, until } from './cli-process.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-cli-web-'));
afterAll(() => {
  killAll();
  rmSync(dir, { recursive: true, force: true });
});

function fetchPage(
  url: string,
  ca: string,
): Promise<{ status: number; body: string; csp: string }> {
  return new Promise((resolve, reject) => {
    request(url, { ca }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body,
          csp: String(res.headers['content-security-policy']),
        }),
      );
    })
      .on('error', reject)
      .end();
  });
}

describe('parley server --web', () => {
  it('documents --web and the URL to open in --help', async () => {
    const p = await run('server', '--help');
    expect(p.code).toBe(0);
    expect(p.out).toContain('--web');
    expect(p.out).toContain('--web-dir <DIR>');
    expect(p.out).toContain('https://HOST:PORT/');
    expect(p.out).toContain('npm start');
  });

  it('serves the app in open mode and prints the URL', async () => {
    const app = join(dir, 'app');
    mkdirSync(app, { recursive: true });
    writeFileSync(join(app, 'index.html'), '<!doctype html><title>parley web test</title>');
    const data = join(dir, 'data');
    const p = parley(
      'server',
      '--data',
      data,
      '--auth',
      'open',
      '--port',
      '0',
      '--web',
      '--web-dir',
      app,
    );
    await until(() => /web client: open https:/.test(p.out) || p.code != null, 'the web URL');
    const url = /web client: open (https:\/\/127\.0\.0\.1:\d+\/)/.exec(p.out)?.[1] ?? '';
    expect(url, p.err).not.toBe('');
    const page = await fetchPage(url, readFileSync(join(data, 'pki', 'ca.crt'), 'utf8'));
    expect(page.status).toBe(200);
    expect(page.body).toContain('parley web test');
    expect(page.csp).toContain("script-src 'self' 'wasm-unsafe-eval'");
    p.child.kill('SIGTERM');
    await until(() => p.code != null, 'exit');
    expect(p.code).toBe(0);
  });

  it('refuses mtls mode and a missing app, naming the field', async () => {
    const mtls = await run('server', '--data', join(dir, 'd2'), '--port', '0', '--web');
    expect(mtls.code).not.toBe(0);
    expect(mtls.err).toContain('web.enabled');
    const missing = await run(
      'server',
      '--data',
      join(dir, 'd3'),
      '--auth',
      'open',
      '--port',
      '0',
      '--web',
      '--web-dir',
      join(dir, 'nope'),
    );
    expect(missing.code).not.toBe(0);
    expect(missing.err).toContain('web.dir');
  });
});
