/**
 * `npm start` as a newcomer runs it: the relay in open mode with the web client, the
 * page answering at the printed URL with its strict headers, the printed guide naming a
 * second user's command and the CA to trust; Ctrl-C (SIGINT) stops it cleanly.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const data = mkdtempSync(join(tmpdir(), 'parley-start-'));
afterAll(() => rmSync(data, { recursive: true, force: true }));

async function until(cond: () => boolean, what: string, maxMs = 120_000): Promise<void> {
  for (let waited = 0; !cond(); waited += 50) {
    if (waited > maxMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function get(url: string, ca: string): Promise<{ status: number; csp: unknown; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { ca, minVersion: 'TLSv1.3' }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, csp: res.headers['content-security-policy'], body }),
      );
    })
      .on('error', reject)
      .end();
  });
}

describe('npm start', () => {
  it('serves the web client in open mode and prints the URL and the second-user guide', async () => {
    const child = spawn(process.execPath, [join(root, 'scripts/start.mjs')], {
      cwd: root,
      env: { ...process.env, PARLEY_START_PORT: '0', PARLEY_START_DATA: data },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let code: number | null | undefined;
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (c) => (code = c));
    try {
      await until(() => out.includes('Ctrl-C stops the relay') || code !== undefined, 'the guide');
      expect(code, `${out}\n${err}`).toBeUndefined();
      const url = /Open (https:\/\/127\.0\.0\.1:\d+\/) in a browser/.exec(out)?.[1] ?? '';
      expect(url).not.toBe('');
      expect(out).toContain('(auth open)');
      expect(out).toMatch(
        /npx parley init --profile \.\/bob --server wss:\/\/127\.0\.0\.1:\d+\/ws --name bob/,
      );
      const caPath = join(data, 'pki', 'ca.crt');
      expect(out).toContain(caPath);
      const page = await get(url, readFileSync(caPath, 'utf8'));
      expect(page.status).toBe(200);
      expect(String(page.csp)).toContain("default-src 'none'");
      expect(page.body).toMatch(/<script type="module"[^>]* src="\/assets\/[^"]+\.js"/);
    } finally {
      child.kill('SIGINT');
      await until(() => code !== undefined, 'npm start to stop', 20_000);
    }
    expect(code).toBe(0);
  });
});
