/**
 * The IndexedDB store in real Chromium: the shared client store contract, no plaintext
 * in the raw database, and a wrong passphrase that touches nothing.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from './chromium.js';
import { serveTestPage } from './test-page.js';
import type { TestPage } from './test-page.js';

interface PageApi {
  runContract(): Promise<{ name: string; ok: boolean; error?: string }[]>;
  rawDump(): Promise<string>;
  writeSecretHistory(profile: string, text: string): Promise<void>;
  tryOpen(profile: string, passphrase: string): Promise<string>;
  hex(s: string): string;
  failMidBatch(profile: string): Promise<string>;
  legacyOutbox(profile: string): Promise<unknown>;
}
declare const parleyTest: PageApi;

let browser: Browser;
let site: TestPage;
let page: Page;

beforeAll(async () => {
  site = await serveTestPage(fileURLToPath(new URL('./browser/store-page.ts', import.meta.url)));
  browser = await launchChromium();
  page = await browser.newPage();
  await page.goto(site.url);
  await page.waitForFunction(() => document.title === 'ready');
});

afterAll(async () => {
  await browser?.close();
  await site?.close();
});

describe('IndexedDB ClientStore in Chromium', () => {
  it('passes every case of the client store contract and its search part', async () => {
    const results = await page.evaluate(() => parleyTest.runContract());
    const failed = results.filter((r) => !r.ok);
    expect(failed, failed.map((f) => `${f.name}\n${f.error}`).join('\n\n')).toEqual([]);
    // The store contract has seven cases with reopen and the search contract more; fewer
    // means the page did not register them.
    expect(
      results.filter((r) => r.name.startsWith('ClientStore contract')).length,
    ).toBeGreaterThanOrEqual(7);
    expect(results.filter((r) => /search/i.test(r.name)).length).toBeGreaterThan(0);
  });

  it('turns an outbox from before typed records into typed records on unlock', async () => {
    expect(await page.evaluate(() => parleyTest.legacyOutbox('legacy-outbox'))).toEqual({
      pending: [
        ['m1', 'bob', 'send', 'msg', 'm1', 'pending'],
        ['t1', 'bob', 'session.terminate', 'end', null, 'pending'],
        ['w2', 'bob', 'send', 'msg', 'm1', 'pending'],
      ],
      w0: ['w0', 'bob', 'send', 'msg', 'm1', 'sent'],
      meta: [true, true],
    });
  });

  it('keeps no plaintext, session bytes or peer name readable in IndexedDB', async () => {
    const secret = 'meet me at the old mill 4711';
    await page.evaluate((t) => parleyTest.writeSecretHistory('raw-probe', t), secret);
    const dump = await page.evaluate(() => parleyTest.rawDump());
    expect(dump).toContain('raw-probe/records/');
    const hex = await page.evaluate((t) => parleyTest.hex(t), secret);
    for (const needle of [secret, hex, 'old mill', 'bob', '"peer"']) {
      expect(dump.includes(needle), `raw IndexedDB contains ${needle}`).toBe(false);
    }
    // The record really is there: the right passphrase reads it back.
    expect(await page.evaluate(() => parleyTest.tryOpen('raw-probe', 'correct horse'))).toBe(
      'ok:1',
    );
  });

  it('writes a batch in one IndexedDB transaction: a request failing mid-batch lands nothing', async () => {
    expect(await page.evaluate(() => parleyTest.failMidBatch('mid-batch'))).toBe(
      'error:STORE memory=1/0 disk=1/0',
    );
  });

  it('refuses a wrong passphrase with a typed error and changes nothing', async () => {
    await page.evaluate(() => parleyTest.writeSecretHistory('wrong-pass', 'hello there'));
    const before = await page.evaluate(() => parleyTest.rawDump());
    const answer = await page.evaluate(() => parleyTest.tryOpen('wrong-pass', 'not it'));
    expect(answer).toMatch(/^error:WRONG_PASSPHRASE:/);
    expect(await page.evaluate(() => parleyTest.rawDump())).toBe(before);
    expect(await page.evaluate(() => parleyTest.tryOpen('missing', 'x'))).toMatch(
      /^error:PROFILE_NOT_FOUND:/,
    );
    expect(await page.evaluate(() => parleyTest.tryOpen('wrong-pass', 'correct horse'))).toBe(
      'ok:1',
    );
  });
});
