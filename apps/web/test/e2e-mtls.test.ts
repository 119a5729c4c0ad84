/**
 * Browser sign-in on an mtls relay, in real Chromium against a real relay and the real
 * `parley` command: the page makes the profile's key and a CSR, the test signs it with
 * `parley pki sign` (the CA key stays with the command), the page imports the signed
 * certificate (a wrong one is refused with the reason), signs in on the browser
 * listener and chats with a terminal mtls user both ways. Revoking the certificate cuts
 * the browser off with a clear reason; a certificate-less handshake from Chromium on the
 * mTLS port is refused.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { launchPersistent } from './chromium.js';
import { startWebRelay } from './e2e-env.js';
import type { WebRelay } from './e2e-env.js';
import { WAIT_MS, connected, delivered, openConversation, send, shown } from './e2e-ui.js';
import { screenshot } from './browser.js';

const BIN = fileURLToPath(new URL('../../cli/bin/parley.js', import.meta.url));
const PASS_CLI = 'terminal passphrase';
const PASS_WEB = 'browser passphrase';

let env: WebRelay;
let browser: Awaited<ReturnType<typeof launchPersistent>>;
let page: Page;
let root: string;
let data: string;

function run(args: string[]) {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, PARLEY_PASSPHRASE: PASS_CLI },
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  return { child, out: () => out, exited };
}

async function parley(...args: string[]): Promise<{ code: number | null; out: string }> {
  const r = run(args);
  const code = await r.exited;
  return { code, out: r.out() };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The administrator's step: sign `name`'s CSR where the CA key is. */
async function adminSigns(name: string, csr: string): Promise<string> {
  const csrFile = join(root, `${name}.csr`);
  const crt = join(root, `${name}.crt`);
  writeFileSync(csrFile, csr);
  const r = await parley('pki', 'sign', csrFile, '--data', data, '--out', crt);
  expect(r.out).toContain(`signed ${name}`);
  expect(r.code).toBe(0);
  return crt;
}

beforeAll(async () => {
  expect(existsSync(fileURLToPath(new URL('../../cli/dist/main.js', import.meta.url)))).toBe(true);
  root = mkdtempSync(join(tmpdir(), 'parley-web-mtls-'));
  env = await startWebRelay('mtls');
  data = join(env.root, 'data');
  browser = await launchPersistent();
  page = browser.context.pages()[0] ?? (await browser.context.newPage());
});

afterAll(async () => {
  await browser?.dispose();
  await env?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('browser sign-in on an mtls relay', () => {
  it('CSR from the page, parley pki sign, import, sign in, chat with a terminal mtls user both ways', async () => {
    // The terminal user, enrolled the recommended way (key made in the profile).
    const term = join(root, 'term');
    const k = await parley(
      'keygen',
      '--profile',
      term,
      '--name',
      'term',
      '--server',
      env.relay.url,
      '--csr',
      join(root, 'term-request.csr'),
    );
    expect(k.code, k.out).toBe(0);
    const termCrt = await adminSigns('term', readFileSync(join(root, 'term-request.csr'), 'utf8'));
    const fin = await parley(
      'init',
      '--profile',
      term,
      '--server',
      env.relay.url,
      '--cert',
      termCrt,
      '--ca',
      env.relay.paths.caCert,
    );
    expect(fin.code, fin.out).toBe(0);

    await page.goto(env.url);
    await page.getByLabel('Name').fill('webm');
    await page.getByLabel('Passphrase', { exact: true }).fill(PASS_WEB);
    await page.getByLabel('Passphrase again').fill(PASS_WEB);
    await page.getByRole('button', { name: 'Create profile' }).click();
    const request = page.getByLabel('Certificate request');
    await request.waitFor({ timeout: WAIT_MS });
    const csr = await request.inputValue();
    expect(csr).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----/);

    // Someone else's certificate is refused with the reason, and nothing is kept.
    await page.getByLabel('Signed certificate (PEM)').fill(readFileSync(termCrt, 'utf8'));
    await page.getByRole('button', { name: 'Import certificate and sign in' }).click();
    await page
      .getByRole('alert')
      .filter({ hasText: 'this certificate is for term, not webm' })
      .waitFor({ timeout: WAIT_MS });

    const crt = await adminSigns('webm', csr);
    await page.getByLabel('or upload webm.crt').setInputFiles(crt);
    await page.getByRole('button', { name: 'Import certificate and sign in' }).click();
    await connected(page);

    const sent = await parley('send', '--profile', term, 'webm', 'hello from the mtls terminal');
    expect(sent.code, sent.out).toBe(0);
    await openConversation(page, 'term');
    await shown(page, 'hello from the mtls terminal');

    const follow = run(['read', '--profile', term, '--follow', '--json']);
    try {
      await send(page, 'term', 'hello from the mtls browser');
      await until(
        () => follow.out().includes('hello from the mtls browser'),
        'the CLI to print it',
      );
      const lines = follow
        .out()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { from: string; text: string });
      expect(lines.filter((l) => l.text === 'hello from the mtls browser')).toEqual([
        expect.objectContaining({ from: 'webm', text: 'hello from the mtls browser' }),
      ]);
      await delivered(page, 'hello from the mtls browser');
    } finally {
      follow.child.kill('SIGINT');
      await follow.exited;
    }
    await screenshot(page, 'mtls-conversation.png');
  }, 180_000);

  it('a revoked certificate is cut off and refused, with the reason shown', async () => {
    const r = await parley('pki', 'revoke', 'webm', '--data', data);
    expect(r.code, r.out).toBe(0);
    await env.relay.reloadCrl();
    const banner = page.locator('.banner.refused');
    await banner.waitFor({ timeout: WAIT_MS });
    expect(await banner.textContent()).toContain('this device certificate has been revoked');
    // A fresh page load signs in again and is refused again.
    await page.reload();
    await page.getByLabel('Passphrase').fill(PASS_WEB);
    await page.getByRole('button', { name: 'Unlock' }).click();
    await page.locator('.banner.refused').waitFor({ timeout: WAIT_MS });
    expect(await page.locator('.banner.refused').textContent()).toContain('revoked');
  });

  it('Chromium without a client certificate cannot open the mTLS port', async () => {
    const blank = await browser.context.newPage();
    try {
      const outcome = await blank.evaluate(
        (url) =>
          new Promise<string>((resolve) => {
            const ws = new WebSocket(url);
            ws.onopen = () => resolve('opened');
            ws.onclose = () => resolve('closed');
          }),
        env.relay.url,
      );
      expect(outcome).toBe('closed');
    } finally {
      await blank.close();
    }
  });
});
