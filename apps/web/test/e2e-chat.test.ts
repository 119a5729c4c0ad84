/**
 * Two people in two Chromium profiles on one real relay (open mode, serving the app):
 * they register, find each other and write both ways; one closes, the other writes
 * three messages, the first comes back and sees all three in order once. Reload and a
 * browser restart keep the history and the session (no new handshake: no one-time
 * prekey taken at the relay), nothing shown twice. A wrong passphrase is refused and
 * changes nothing. A relay restart shows the banner and what was written meanwhile is
 * sent after the reconnect. The raw IndexedDB holds none of the texts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { launchPersistent } from './chromium.js';
import { startWebRelay } from './e2e-env.js';
import type { WebRelay } from './e2e-env.js';
import {
  WAIT_MS,
  connected,
  createProfile,
  delivered,
  openConversation,
  send,
  shown,
  transcript,
  unlock,
} from './e2e-ui.js';
import { rawIndexedDb } from './e2e-idb.js';
import { screenshot } from './browser.js';

type Chromium = Awaited<ReturnType<typeof launchPersistent>>;
const PASS_A = 'alice passphrase 1';
const PASS_B = 'bob passphrase 22';

let env: WebRelay;
const dirs = { alice: '', bob: '' };
let alice: Chromium;
let bob: Chromium;
let pa: Page;
let pb: Page;
const sent: string[] = [];

/** One-time prekeys the relay still holds for `name` (each new handshake takes one). */
function oneTimeLeft(name: string): number {
  const db = new Database(env.relay.paths.database, { readonly: true, fileMustExist: true });
  try {
    const row = db
      .prepare('SELECT COUNT(*) AS n FROM one_time_prekeys WHERE name = ?')
      .get(name) as {
      n: number;
    };
    return row.n;
  } finally {
    db.close();
  }
}

async function say(page: Page, peer: string, text: string): Promise<void> {
  sent.push(text);
  await send(page, peer, text);
}

async function open(who: 'alice' | 'bob'): Promise<{ browser: Chromium; page: Page }> {
  const browser = await launchPersistent(dirs[who]);
  const page = browser.context.pages()[0] ?? (await browser.context.newPage());
  return { browser, page };
}

beforeAll(async () => {
  env = await startWebRelay();
  dirs.alice = mkdtempSync(join(tmpdir(), 'parley-chromium-alice-'));
  dirs.bob = mkdtempSync(join(tmpdir(), 'parley-chromium-bob-'));
  ({ browser: alice, page: pa } = await open('alice'));
  ({ browser: bob, page: pb } = await open('bob'));
});

afterAll(async () => {
  await alice?.dispose();
  await bob?.dispose();
  await env?.close();
  rmSync(dirs.alice, { recursive: true, force: true });
  rmSync(dirs.bob, { recursive: true, force: true });
});

describe('web client end to end (two browsers, real relay)', () => {
  it('two browsers register, find each other and chat both ways; a closed one gets three in order once', async () => {
    await createProfile(pa, env.url, 'alice', PASS_A);
    await createProfile(pb, env.url, 'bob', PASS_B);
    await openConversation(pa, 'bob');
    await say(pa, 'bob', 'hello bob, from the browser');
    await pb.locator('button.conv[data-peer="alice"]').waitFor({ timeout: WAIT_MS });
    await openConversation(pb, 'alice');
    await shown(pb, 'hello bob, from the browser');
    await say(pb, 'alice', 'hi alice, got it');
    await shown(pa, 'hi alice, got it');
    await delivered(pa, 'hello bob, from the browser');
    await delivered(pb, 'hi alice, got it');

    await bob.dispose();
    for (const t of ['one', 'two', 'three']) await say(pa, 'bob', `while you were away: ${t}`);
    ({ browser: bob, page: pb } = await open('bob'));
    await unlock(pb, env.url, PASS_B);
    await openConversation(pb, 'alice');
    await shown(pb, 'while you were away: three');
    expect(await transcript(pb)).toEqual([
      '< hello bob, from the browser',
      '> hi alice, got it',
      '< while you were away: one',
      '< while you were away: two',
      '< while you were away: three',
    ]);
    await delivered(pa, 'while you were away: three');
    await screenshot(
      pa,
      'e2e-conversation.png',
      fileURLToPath(new URL('../../../docs/web-client.png', import.meta.url)),
    );
  });

  it('reload and browser restart keep history and session (no new handshake), nothing twice', async () => {
    const before = { alice: oneTimeLeft('alice'), bob: oneTimeLeft('bob') };
    expect(before.alice).toBeGreaterThan(0);
    expect(before.bob).toBeGreaterThan(0);
    const expected = await transcript(pa);

    await pa.reload();
    await unlock(pa, env.url, PASS_A);
    await connected(pa);
    await openConversation(pa, 'bob');
    await pa
      .locator('.msg')
      .nth(expected.length - 1)
      .waitFor({ timeout: WAIT_MS });
    expect(await transcript(pa)).toEqual(expected);

    await alice.dispose();
    ({ browser: alice, page: pa } = await open('alice'));
    await unlock(pa, env.url, PASS_A);
    await connected(pa);
    await openConversation(pa, 'bob');
    await pa
      .locator('.msg')
      .nth(expected.length - 1)
      .waitFor({ timeout: WAIT_MS });
    expect(await transcript(pa)).toEqual(expected);

    await say(pa, 'bob', 'after the restart');
    await shown(pb, 'after the restart');
    await say(pb, 'alice', 'still the same session');
    await shown(pa, 'still the same session');
    expect(await transcript(pa)).toEqual([
      ...expected,
      '> after the restart',
      '< still the same session',
    ]);
    expect({ alice: oneTimeLeft('alice'), bob: oneTimeLeft('bob') }).toEqual(before);
  });

  it('a wrong passphrase is refused clearly and changes nothing stored', async () => {
    await pa.reload();
    await pa.getByLabel('Passphrase').waitFor({ timeout: WAIT_MS });
    const before = await rawIndexedDb(pa);
    await unlock(pa, env.url, 'not the passphrase');
    await pa
      .getByRole('alert')
      .filter({ hasText: 'Wrong passphrase' })
      .waitFor({ timeout: WAIT_MS });
    expect(await rawIndexedDb(pa)).toBe(before);
    await unlock(pa, env.url, PASS_A);
    await connected(pa);
  });

  it('a relay restart shows the banner; what is written meanwhile is sent after the reconnect', async () => {
    await openConversation(pa, 'bob');
    await env.stop();
    await pa.locator('.banner.reconnecting').waitFor({ timeout: WAIT_MS });
    await say(pa, 'bob', 'written while the relay was down');
    expect(
      await pa
        .locator('.msg.out', { hasText: 'written while the relay was down' })
        .locator('.status')
        .textContent(),
    ).toBe('…');
    await env.start();
    await pa.locator('.banner').waitFor({ state: 'detached', timeout: WAIT_MS });
    await shown(pb, 'written while the relay was down');
    await delivered(pa, 'written while the relay was down');
  });

  it('a second tab of the profile is told it is open elsewhere and takes over when the first locks', async () => {
    const second = await alice.context.newPage();
    await unlock(second, env.url, PASS_A);
    await second
      .getByRole('alert')
      .filter({ hasText: 'open in another tab' })
      .waitFor({ timeout: WAIT_MS });
    await second.getByRole('button', { name: 'Open here when the other tab closes it' }).click();
    await second.getByText('Waiting for the other tab').waitFor({ timeout: WAIT_MS });
    expect(await second.locator('.chat').count()).toBe(0);
    await pa.getByRole('button', { name: 'Lock' }).click();
    await connected(second);
    await openConversation(second, 'bob');
    await shown(second, 'still the same session');
    await pa.close();
    pa = second;
  });

  it('the raw IndexedDB contents hold none of the texts sent', async () => {
    for (const page of [pa, pb]) {
      const raw = await rawIndexedDb(page);
      expect(raw.length).toBeGreaterThan(1000);
      for (const text of sent) expect(raw).not.toContain(text);
      // Not even a recognisable piece of one.
      expect(raw).not.toContain('while you were away');
    }
  });
});
