/**
 * What a browser user keeps, in real Chromium against `parley server --web` and a
 * terminal user (`parley` processes), over real TLS:
 *  - search in the page finds words and prefixes, in one conversation or everywhere,
 *    and opens the conversation at the answer, while the raw IndexedDB holds neither
 *    the words nor any index token in clear;
 *  - the disappearing-message timer set in the page reaches the terminal side; expired
 *    messages leave the view, the store and the index, also when the page was closed at
 *    the expiry time (the page's clock is Playwright's fake clock, moved forward);
 *  - a backup exported from the page restores with `parley restore` (a wrong backup
 *    passphrase is a clear error) and the conversation goes on from the terminal.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { launchPersistent } from './chromium.js';
import { cliProfile, parley, startCliRelay, until } from './e2e-cli-relay.js';
import type { CliRelay } from './e2e-cli-relay.js';
import { rawIndexedDb } from './e2e-idb.js';
import { WAIT_MS, connected, createProfile, openConversation, send, shown } from './e2e-ui.js';

const PASS_WEB = 'browser passphrase';
const PASS_TERM = 'terminal passphrase';
const MINUTE_MS = 60_000;

let relay: CliRelay;
let browser: Awaited<ReturnType<typeof launchPersistent>>;
let page: Page;
let term: string;
/** The browser profile's backup, restored as a terminal profile. */
let restored: string;

const asTerm = { PARLEY_PASSPHRASE: PASS_TERM };

async function search(p: Page, query: string, onlyHere = false): Promise<string[]> {
  await p.getByLabel('Search messages').fill(query);
  const scope = p.getByLabel(/only with/);
  if ((await scope.count()) > 0) await scope.setChecked(onlyHere);
  await p.getByRole('button', { name: 'Search', exact: true }).click();
  await p.locator('.search-results [role="status"]').waitFor({ timeout: WAIT_MS });
  return p.locator('.search-results .hit .text').allTextContents();
}

/** How many keyed-token entries the page's search index holds. */
async function indexEntries(p: Page): Promise<number> {
  const stores = JSON.parse(await rawIndexedDb(p)) as {
    db: string;
    store: string;
    keys: unknown[];
  }[];
  return (
    stores.find((s) => s.db === 'parley-profile:webby' && s.store === 'search')?.keys.length ?? 0
  );
}

/** Closes the page and opens the app again in a new one, its clock `aheadMs` ahead, unlocked. */
async function reopen(aheadMs: number): Promise<void> {
  const url = page.url();
  await page.close();
  page = await browser.context.newPage();
  await page.clock.install({ time: Date.now() + aheadMs });
  await page.goto(url);
  await page.getByLabel('Passphrase').fill(PASS_WEB);
  await page.getByRole('button', { name: 'Unlock' }).click();
}

beforeAll(async () => {
  relay = await startCliRelay();
  browser = await launchPersistent();
  page = browser.context.pages()[0] ?? (await browser.context.newPage());
  // The page's timers and Date run on a clock the test can move forward.
  await page.clock.install();
  term = await cliProfile(relay, 'term', PASS_TERM);
}, 120_000);

afterAll(async () => {
  await browser?.dispose();
  await relay?.close();
});

describe('search, disappearing messages and backup in the web client', () => {
  it('finds words and prefixes from the search box; IndexedDB holds no word and no token in clear', async () => {
    await createProfile(page, relay.pageUrl, 'webby', PASS_WEB);
    const sent = await parley(
      ['send', '--profile', term, 'webby', 'the zylophonic quartet rehearses tonight'],
      asTerm,
    );
    expect(sent.code, sent.err).toBe(0);
    await openConversation(page, 'term');
    await shown(page, 'the zylophonic quartet rehearses tonight');
    await send(page, 'term', 'budget for the xanthoria project');

    expect(await search(page, 'zylophon*')).toEqual(['the zylophonic quartet rehearses tonight']);
    expect(await search(page, 'XANTHORIA budget', true)).toEqual([
      'budget for the xanthoria project',
    ]);
    // All words must occur; a whole word does not match as a prefix.
    expect(await search(page, 'quartet xanthoria')).toEqual([]);
    expect(await search(page, 'zylo')).toEqual([]);
    // Newest first.
    expect(await search(page, 'the')).toEqual([
      'budget for the xanthoria project',
      'the zylophonic quartet rehearses tonight',
    ]);

    // An answer opens its conversation at the message.
    await search(page, 'rehearses');
    await page.locator('.search-results .hit').first().click();
    await page
      .locator('.msg.focused', { hasText: 'zylophonic quartet' })
      .waitFor({ timeout: WAIT_MS });

    const raw = await rawIndexedDb(page);
    for (const word of ['zylophonic', 'zylop', 'xanthoria', 'xanth', 'quartet', 'rehearses'])
      expect(raw.toLowerCase()).not.toContain(word);
    // The index exists and its keys are keyed tokens, not words.
    const stores = JSON.parse(raw) as { db: string; store: string; keys: unknown[] }[];
    const index = stores.find((s) => s.db === 'parley-profile:webby' && s.store === 'search');
    expect(await indexEntries(page)).toBeGreaterThan(20);
    for (const key of index?.keys ?? []) {
      expect(key).toEqual([expect.stringMatching(/^[0-9a-f]{32}$/), expect.any(Number)]);
    }
  });

  it('a timer set in the page reaches the terminal; expired messages go, also while the page is closed', async () => {
    await page.getByLabel('Disappearing messages').selectOption({ label: '5 minutes' });
    await page
      .locator('.timer-event', { hasText: 'You set disappearing messages to 5 minutes' })
      .waitFor({ timeout: WAIT_MS });
    // Shown on the other side too.
    await until(async () => {
      const r = await parley(['read', '--profile', term, '--json'], asTerm);
      return r.out.includes('"timerMs":300000');
    }, 'the terminal to show the timer change');
    // Received, then the page is closed past its expiry: gone when it opens again.
    const p = await parley(['send', '--profile', term, 'webby', 'dormant pangolin memo'], asTerm);
    expect(p.code, p.err).toBe(0);
    await shown(page, 'dormant pangolin memo');
    expect(await page.locator('.msg', { hasText: 'pangolin' }).locator('.expires').count()).toBe(1);
    await reopen(20 * MINUTE_MS);
    // The expiry sweep runs as the client starts, before anything is shown.
    await openConversation(page, 'term');
    await shown(page, 'the zylophonic quartet rehearses tonight');
    expect(await page.locator('.msg', { hasText: 'pangolin' }).count()).toBe(0);
    expect(await search(page, 'pangolin')).toEqual([]);
    // The relay refuses a client clock this far off (its freshness window): back to now.
    await reopen(0);
    await connected(page);
    await openConversation(page, 'term');

    // Open at the expiry time: both directions leave the view, the store and the index.
    const t = await parley(
      ['send', '--profile', term, 'webby', 'ephemeral quokka whisper'],
      asTerm,
    );
    expect(t.code, t.err).toBe(0);
    await shown(page, 'ephemeral quokka whisper');
    await send(page, 'term', 'fleeting ocelot answer');
    const quokka = page.locator('.msg', { hasText: 'quokka' });
    const ocelot = page.locator('.msg', { hasText: 'ocelot' });
    expect(await quokka.locator('.expires').count()).toBe(1);
    expect(await ocelot.locator('.expires').count()).toBe(1);
    const entriesBefore = await indexEntries(page);
    await page.clock.fastForward(6 * MINUTE_MS);
    await until(
      async () => (await quokka.count()) === 0 && (await ocelot.count()) === 0,
      'expired messages to leave the view',
    );
    expect(await page.locator('.msg', { hasText: 'zylophonic' }).count()).toBe(1);
    expect(await search(page, 'quokka')).toEqual([]);
    expect(await search(page, 'ocelot')).toEqual([]);
    expect(await indexEntries(page)).toBeLessThan(entriesBefore);

    // Back to the real time, so the relay's freshness window lets the link sign in.
    await reopen(0);
    await connected(page);
    await openConversation(page, 'term');
    await page.getByLabel('Disappearing messages').selectOption({ label: 'off' });
    await page
      .locator('.timer-event', { hasText: 'You set disappearing messages to off' })
      .waitFor({ timeout: WAIT_MS });
  }, 240_000);

  it('a backup exported in the page restores with parley restore and the conversation goes on', async () => {
    await page.getByRole('button', { name: 'Back up' }).click();
    await page.getByLabel('Backup passphrase', { exact: true }).fill('backup words');
    await page.getByLabel('Backup passphrase again').fill('backup words');
    await page.getByRole('button', { name: 'Make backup' }).click();
    const save = page.getByRole('link', { name: 'Save webby.parley-backup' });
    await save.waitFor({ timeout: WAIT_MS });
    const [download] = await Promise.all([page.waitForEvent('download'), save.click()]);
    const file = join(relay.root, 'webby.parley-backup');
    writeFileSync(file, readFileSync((await download.path()) as string));
    expect(readFileSync(file).subarray(0, 8).toString('latin1')).toBe('PARLEYBK');
    expect(readFileSync(file).toString('latin1')).not.toContain('zylophonic');
    // The browser device stops before its backup becomes a terminal device.
    await page.close();

    restored = join(relay.root, 'cli-webby');
    const wrong = await parley(['restore', '--profile', restored, '--from', file], {
      PARLEY_BACKUP_PASSPHRASE: 'not the words',
      PARLEY_PASSPHRASE: 'restored pass',
    });
    expect(wrong.code).not.toBe(0);
    expect(wrong.err).toMatch(/wrong backup passphrase or recovery key.*nothing was written/);

    const asRestored = { PARLEY_PASSPHRASE: 'restored pass' };
    const r = await parley(['restore', '--profile', restored, '--from', file], {
      ...asRestored,
      PARLEY_BACKUP_PASSPHRASE: 'backup words',
    });
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/restored into .*cli-webby \(1 contacts, \d+ messages\)/);
    const ca = await parley(
      ['profile', 'set', '--profile', restored, '--ca', relay.caFile],
      asRestored,
    );
    expect(ca.code, ca.err).toBe(0);
    // The history came along, searchable in the terminal.
    const found = await parley(['search', '--profile', restored, 'zylophonic'], asRestored);
    expect(found.code, found.err).toBe(0);
    expect(found.out).toContain('the zylophonic quartet rehearses tonight');

    const on = await parley(
      ['send', '--profile', restored, 'term', 'still me, now from the terminal'],
      asRestored,
    );
    expect(on.code, on.err).toBe(0);
    await until(
      async () => {
        const read = await parley(['read', '--profile', term, '--json'], asTerm);
        return read.out.includes('still me, now from the terminal');
      },
      'term to read the restored profile',
      60_000,
    );
    const back = await parley(['send', '--profile', term, 'webby', 'welcome back'], asTerm);
    expect(back.code, back.err).toBe(0);
    await until(
      async () => {
        const read = await parley(['read', '--profile', restored, '--json'], asRestored);
        return read.out.includes('welcome back');
      },
      'the restored profile to read the reply',
      60_000,
    );
  }, 300_000);

  it('a terminal backup imports in a fresh browser and the conversation goes on from there', async () => {
    const file = join(relay.root, 'term.parley-backup');
    const b = await parley(['backup', '--profile', term, '--out', file], {
      ...asTerm,
      PARLEY_BACKUP_PASSPHRASE: 'term backup words',
    });
    expect(b.code, b.err).toBe(0);
    const fresh = await launchPersistent();
    try {
      const p = fresh.context.pages()[0] ?? (await fresh.context.newPage());
      await p.goto(relay.pageUrl);
      await p.getByRole('button', { name: 'Restore from a backup file' }).click();
      await p.getByLabel('Backup file', { exact: true }).setInputFiles(file);
      await p.getByLabel('Backup passphrase or recovery key').fill('not these words');
      await p.getByLabel('New passphrase for this browser').fill('browser term pass');
      await p.getByLabel('New passphrase again').fill('browser term pass');
      await p.getByRole('button', { name: 'Restore', exact: true }).click();
      await p
        .getByRole('alert')
        .filter({ hasText: /wrong backup passphrase or recovery key.*nothing was written/ })
        .waitFor({ timeout: WAIT_MS });
      expect(await p.evaluate(async () => (await indexedDB.databases()).length)).toBe(0);
      await p.getByLabel('Backup passphrase or recovery key').fill('term backup words');
      await p.getByRole('button', { name: 'Restore', exact: true }).click();
      await p
        .getByRole('status')
        .filter({ hasText: /Restored term \(1 contacts, \d+ messages\)/ })
        .waitFor({ timeout: WAIT_MS });
      await p.getByLabel('Passphrase').fill('browser term pass');
      await p.getByRole('button', { name: 'Unlock' }).click();
      await connected(p);
      await openConversation(p, 'webby');
      await shown(p, 'budget for the xanthoria project');
      await send(p, 'webby', 'hello from the restored browser');
      await until(
        async () => {
          const read = await parley(['read', '--profile', restored, '--json'], {
            PARLEY_PASSPHRASE: 'restored pass',
          });
          return read.out.includes('hello from the restored browser');
        },
        'the terminal to read the restored browser',
        60_000,
      );
    } finally {
      await fresh.dispose();
    }
  }, 300_000);
});
