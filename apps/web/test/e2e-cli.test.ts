/**
 * A browser user and a terminal user on one real relay (open mode): the `parley`
 * command as real processes (`init`, `send`, `read --follow --json`) and the web app in
 * Chromium write to each other both ways, each text shown once, and the browser's
 * message ends ✓✓ from the terminal client's end-to-end receipt.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { launchPersistent } from './chromium.js';
import { startWebRelay } from './e2e-env.js';
import type { WebRelay } from './e2e-env.js';
import { WAIT_MS, createProfile, delivered, openConversation, send, shown } from './e2e-ui.js';

const BIN = fileURLToPath(new URL('../../cli/bin/parley.js', import.meta.url));
const PASS_CLI = 'terminal passphrase';

let env: WebRelay;
let browser: Awaited<ReturnType<typeof launchPersistent>>;
let page: Page;
let root: string;

function run(args: string[]): {
  child: ChildProcessWithoutNullStreams;
  out: () => string;
  exited: Promise<number | null>;
} {
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

/** Waits (bounded) until `cond` holds. */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  expect(existsSync(fileURLToPath(new URL('../../cli/dist/main.js', import.meta.url)))).toBe(true);
  root = mkdtempSync(join(tmpdir(), 'parley-web-cli-'));
  env = await startWebRelay();
  browser = await launchPersistent();
  page = browser.context.pages()[0] ?? (await browser.context.newPage());
});

afterAll(async () => {
  await browser?.dispose();
  await env?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('browser and terminal', () => {
  it('a browser user and a parley CLI user chat both ways', async () => {
    await createProfile(page, env.url, 'webby', 'browser passphrase');
    const ca = join(root, 'ca.crt');
    writeFileSync(ca, env.relay.caPem);
    const profile = join(root, 'term');
    const init = await parley(
      'init',
      '--profile',
      profile,
      '--server',
      env.relay.url,
      '--name',
      'term',
      '--ca',
      ca,
    );
    expect(init.out).toContain('profile created for term (open)');
    expect(init.code).toBe(0);

    const sent = await parley('send', '--profile', profile, 'webby', 'hello from the terminal');
    expect(sent.code).toBe(0);
    await openConversation(page, 'term');
    await shown(page, 'hello from the terminal');

    const follow = run(['read', '--profile', profile, '--follow', '--json']);
    try {
      await send(page, 'term', 'hello from the browser');
      await until(() => follow.out().includes('hello from the browser'), 'the CLI to print it');
      const lines = follow
        .out()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { from: string; text: string });
      expect(lines.filter((l) => l.text === 'hello from the browser')).toEqual([
        expect.objectContaining({ from: 'webby', text: 'hello from the browser' }),
      ]);
      // The terminal client committed it and said so end to end.
      await delivered(page, 'hello from the browser');
    } finally {
      follow.child.kill('SIGINT');
      await follow.exited;
    }
    expect(await page.locator('.msg.in', { hasText: 'hello from the terminal' }).count()).toBe(1);
  });
});
