/**
 * A group of five on one real relay (TLS, open mode): two web users in their own
 * Chromium profiles and three `parley` CLI profiles as real processes. The web admin
 * makes the group in the "New group" form; messages go both ways and the web view names
 * each sender; a CLI member that stayed offline reads what it missed in order, and until
 * it has, the admin's message shows "k/n" and not ✓✓; the admin removes the other web
 * member, both see the event, and the removed one is shown nothing sent after.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { launchPersistent } from './chromium.js';
import { startWebRelay } from './e2e-env.js';
import type { WebRelay } from './e2e-env.js';
import { WAIT_MS, createProfile, send } from './e2e-ui.js';

const BIN = fileURLToPath(new URL('../../cli/bin/parley.js', import.meta.url));
const PASS_CLI = 'terminal passphrase';
const CLI = ['cli1', 'cli2', 'cli3'] as const;

type Browser = Awaited<ReturnType<typeof launchPersistent>>;
let env: WebRelay;
let browsers: Browser[] = [];
let root: string;

async function parley(...args: string[]): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, PARLEY_PASSPHRASE: PASS_CLI },
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
  return { code, out };
}

interface Line {
  readonly group?: string;
  readonly from: string;
  readonly text: string;
}

/** Runs `read --json` for `name` until `want` texts of `group` arrived (bounded); all lines read. */
async function readUntil(name: string, want: readonly string[]): Promise<Line[]> {
  const got: Line[] = [];
  const deadline = Date.now() + 4 * WAIT_MS;
  for (;;) {
    const r = await parley('read', '--profile', join(root, name), '--json');
    expect(r.code).toBe(0);
    for (const l of r.out.split('\n')) if (l.startsWith('{')) got.push(JSON.parse(l) as Line);
    if (want.every((t) => got.some((l) => l.text === t))) return got;
    if (Date.now() > deadline) throw new Error(`timed out: ${name} waiting for ${want.join(', ')}`);
  }
}

/** An incoming message `text` from `from` in the open group view. */
function incoming(page: Page, from: string, text: string) {
  return page.locator(`.msg.in[data-from="${from}"]`, { hasText: text });
}

async function openGroup(page: Page, group: string): Promise<void> {
  await page.locator(`button.conv[data-group="${group}"]`).click({ timeout: WAIT_MS });
  await page.getByLabel(`Message to ${group}`).waitFor({ timeout: WAIT_MS });
}

beforeAll(async () => {
  expect(existsSync(fileURLToPath(new URL('../../cli/dist/main.js', import.meta.url)))).toBe(true);
  root = mkdtempSync(join(tmpdir(), 'parley-web-groups-'));
  env = await startWebRelay();
  browsers = [await launchPersistent(), await launchPersistent()];
});

afterAll(async () => {
  for (const b of browsers) await b.dispose();
  await env?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('groups: web and terminal members', () => {
  it('a group of five (2 web, 3 CLI): senders shown, offline catch-up in order, k/n, removal', async () => {
    const started = Date.now();
    const [a, b] = await Promise.all(
      browsers.map(async (br) => br.context.pages()[0] ?? (await br.context.newPage())),
    );
    const weba = a!;
    const webb = b!;
    await weba.setViewportSize({ width: 360, height: 740 });
    weba.on('dialog', (d) => void d.accept());
    await createProfile(weba, env.url, 'weba', 'browser passphrase a');
    await createProfile(webb, env.url, 'webb', 'browser passphrase b');
    const ca = join(root, 'ca.crt');
    writeFileSync(ca, env.relay.caPem);
    for (const n of CLI) {
      const init = await parley(
        'init',
        '--profile',
        join(root, n),
        '--server',
        env.relay.url,
        '--name',
        n,
        '--ca',
        ca,
      );
      expect(init.code, init.out).toBe(0);
    }

    // The admin makes the group from the form (keyboard only), at 360 px.
    await weba.getByText('Groups and rooms').click();
    await weba.getByLabel('New group name').fill('crew');
    await weba.getByLabel('Members (names, comma separated)').fill('webb, cli1, cli2, cli3');
    await weba.getByLabel('Members (names, comma separated)').press('Enter');
    await weba.getByLabel('Message to crew').waitFor({ timeout: WAIT_MS });
    await weba.getByRole('button', { name: '← Conversations' }).click();
    const row = weba.locator('button.conv[data-group="crew"]');
    await expect.poll(() => row.locator('.count').textContent(), { timeout: WAIT_MS }).toBe('5');
    await row.click();

    await send(weba, 'crew', 'hello crew');
    // cli3 stays offline from here until its catch-up below.
    await openGroup(webb, 'crew');
    await incoming(webb, 'weba', 'hello crew').waitFor({ timeout: WAIT_MS });
    for (const n of ['cli1', 'cli2']) {
      const lines = await readUntil(n, ['hello crew']);
      expect(lines.filter((l) => l.text === 'hello crew')).toEqual([
        expect.objectContaining({ group: 'crew', from: 'weba', text: 'hello crew' }),
      ]);
    }
    // Three of four receipts: the mark says so and is not ✓✓.
    const mine = weba.locator('.msg.out', { hasText: 'hello crew' }).locator('.status');
    await expect.poll(() => mine.getAttribute('data-delivered'), { timeout: WAIT_MS }).toBe('3/4');
    expect(await mine.textContent()).not.toContain('✓✓');
    expect(await mine.getAttribute('class')).not.toContain('delivered');

    // The other way: a CLI member and the other web member write; the view names them.
    expect(
      (await parley('send', '--profile', join(root, 'cli1'), '--group', 'crew', 'from cli1')).code,
    ).toBe(0);
    await send(webb, 'crew', 'from webb');
    await incoming(weba, 'cli1', 'from cli1').waitFor({ timeout: WAIT_MS });
    await incoming(weba, 'webb', 'from webb').waitFor({ timeout: WAIT_MS });
    await incoming(webb, 'cli1', 'from cli1').waitFor({ timeout: WAIT_MS });
    expect(await weba.locator('.msg.in[data-from="cli1"] .who').first().textContent()).toBe('cli1');

    // The admin writes three more while cli3 is still offline.
    for (const t of ['one', 'two', 'three']) await send(weba, 'crew', `catch-up ${t}`);
    const caught = await readUntil('cli3', ['catch-up three', 'from webb', 'from cli1']);
    const order = caught
      .map((l) => l.text)
      .filter((t) => t.startsWith('catch-up') || t === 'hello crew');
    expect(order).toEqual(['hello crew', 'catch-up one', 'catch-up two', 'catch-up three']);
    expect(caught.find((l) => l.text === 'from cli1')?.from).toBe('cli1');
    // Now every member's own receipt is in: ✓✓ at 4/4.
    await mine.and(weba.locator('.status.delivered')).waitFor({ timeout: WAIT_MS });
    expect(await mine.getAttribute('data-delivered')).toBe('4/4');

    // The admin removes webb: both see it; webb is shown nothing sent after.
    await weba.getByText('5 members').click();
    await weba.getByRole('button', { name: 'Remove webb from crew' }).click();
    await weba
      .locator('.group-event[data-change="remove"]', { hasText: 'weba removed webb' })
      .waitFor({ timeout: WAIT_MS });
    await webb
      .locator('.group-event[data-change="removed-me"]', { hasText: 'You were removed from crew' })
      .waitFor({ timeout: WAIT_MS });
    await webb.getByText('You were removed from crew; nothing more is sent or read here.').waitFor({
      timeout: WAIT_MS,
    });
    await readUntil('cli1', ['catch-up three']);
    expect(
      (await parley('send', '--profile', join(root, 'cli1'), '--group', 'crew', 'after removal'))
        .code,
    ).toBe(0);
    await send(weba, 'crew', 'admin after removal');
    await incoming(weba, 'cli1', 'after removal').waitFor({ timeout: WAIT_MS });
    const cli2 = await readUntil('cli2', ['after removal', 'admin after removal']);
    expect(cli2.filter((l) => l.text === 'admin after removal')).toHaveLength(1);
    // What webb holds: everything before the removal, nothing after (its store, reloaded).
    await webb.reload();
    await webb.getByLabel('Passphrase').fill('browser passphrase b');
    await webb.getByRole('button', { name: 'Unlock' }).click();
    await webb.locator('button.conv[data-group="crew"]').click({ timeout: WAIT_MS });
    await incoming(webb, 'cli1', 'from cli1').waitFor({ timeout: WAIT_MS });
    expect(await webb.getByText('after removal').count()).toBe(0);
    console.log(`group of five: ${Math.round((Date.now() - started) / 1000)} s`);
  }, 600_000);
});
