/**
 * Encrypted attachments between the web client in real Chromium and the terminal
 * client (`parley send --file`, `parley read --save-dir`) through `parley server --web`
 * as a real process (real TLS): 30 MiB both ways with identical SHA-256; the browser's
 * upload survives a SIGKILL of the relay in its middle and goes on after the restart;
 * a byte flipped in a stored blob is refused in the page with a clear error and nothing
 * is offered to save.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { launchPersistent } from './chromium.js';
import { cliProfile, parley, startCliRelay, until } from './e2e-cli-relay.js';
import type { CliRelay } from './e2e-cli-relay.js';
import { WAIT_MS, createProfile, openConversation } from './e2e-ui.js';

const PASS_TERM = 'terminal passphrase';
const asTerm = { PARLEY_PASSPHRASE: PASS_TERM };
/** Bound on one 30 MiB transfer (sealing, upload, relay restart, download). */
const TRANSFER_MS = 180_000;

let relay: CliRelay;
let browser: Awaited<ReturnType<typeof launchPersistent>>;
let page: Page;
let term: string;

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function bigFile(path: string): Buffer {
  const b = randomBytes(30 * 1024 * 1024);
  writeFileSync(path, b);
  return b;
}

/** Downloads a received file in the page; returns the saved bytes. */
async function downloadInPage(p: Page, name: string): Promise<Buffer> {
  const item = p.locator(`.file[data-file="${name}"]`).last();
  await item.waitFor({ timeout: WAIT_MS });
  await item.getByRole('button', { name: `Download ${name}` }).click();
  const save = item.getByRole('link', { name: `Save ${name}` });
  await save.waitFor({ timeout: TRANSFER_MS });
  const [download] = await Promise.all([p.waitForEvent('download'), save.click()]);
  expect(download.suggestedFilename()).toBe(name);
  return readFileSync((await download.path()) as string);
}

/** Upload progress shown in the page, in percent (undefined when no upload is shown). */
async function uploadPercent(p: Page): Promise<number | undefined> {
  // One read in the page: the bar may go away between two separate calls (upload done).
  const shown = await p.evaluate(() => {
    const e = document.querySelector<HTMLProgressElement>('.attach progress');
    return e ? { value: e.value, max: e.max } : undefined;
  });
  return shown === undefined ? undefined : Math.floor((shown.value / shown.max) * 100);
}

beforeAll(async () => {
  relay = await startCliRelay();
  browser = await launchPersistent();
  page = browser.context.pages()[0] ?? (await browser.context.newPage());
  term = await cliProfile(relay, 'term', PASS_TERM);
  await createProfile(page, relay.pageUrl, 'webby', 'browser passphrase');
  await openConversation(page, 'term');
}, 120_000);

afterAll(async () => {
  await browser?.dispose();
  await relay?.close();
});

describe('attachments between the browser and the terminal', () => {
  it('30 MiB from the terminal arrives in the page with the same digest', async () => {
    const path = join(relay.root, 'from-terminal.bin');
    const plain = bigFile(path);
    const t0 = Date.now();
    const sent = await parley(['send', '--profile', term, 'webby', '--file', path], asTerm);
    expect(sent.code, sent.err).toBe(0);
    const t1 = Date.now();
    const got = await downloadInPage(page, 'from-terminal.bin');
    const t2 = Date.now();
    expect(got.length).toBe(plain.length);
    expect(sha256(got)).toBe(sha256(plain));
    console.log(`30 MiB terminal→web: send ${t1 - t0} ms, page download+check ${t2 - t1} ms`);
  }, 400_000);

  it('30 MiB from the page survives a relay SIGKILL mid-upload and arrives with the same digest', async () => {
    const path = join(relay.root, 'from-browser.bin');
    const plain = bigFile(path);
    const t0 = Date.now();
    await page.locator('#attach-file').setInputFiles(path);
    await until(
      async () => ((await uploadPercent(page)) ?? 0) >= 30,
      'the page upload at 30 %',
      TRANSFER_MS,
    );
    const before = (await uploadPercent(page)) as number;
    await relay.kill();
    await relay.start();
    // The upload goes on (the core resumes from the relay's durable count) and the
    // message naming the file is written once it is complete.
    // Progress counts the chunks the relay holds durably: an upload that began again
    // from the start would show a few percent again.
    let lowest = 100;
    await until(
      async () => {
        lowest = Math.min(lowest, (await uploadPercent(page)) ?? 100);
        return (await page.locator('.msg.out .file[data-file="from-browser.bin"]').count()) > 0;
      },
      'the upload to finish',
      TRANSFER_MS,
    );
    const t1 = Date.now();
    expect(await page.locator('.attach [role="alert"]').count()).toBe(0);
    expect(before).toBeLessThan(100);
    expect(lowest).toBeGreaterThanOrEqual(20);

    const saveDir = join(relay.root, 'saved');
    mkdirSync(saveDir);
    let line: { file?: { name: string; saved: string; sha256: string } } = {};
    await until(
      async () => {
        const r = await parley(
          ['read', '--profile', term, '--json', '--save-dir', saveDir],
          asTerm,
        );
        const files = r.out
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as typeof line)
          .filter((l) => l.file?.name === 'from-browser.bin');
        if (files[0]) line = files[0];
        return files.length > 0;
      },
      'the terminal to save the file',
      TRANSFER_MS,
    );
    const t2 = Date.now();
    expect(line.file?.saved).toBe(join(saveDir, 'from-browser.bin'));
    expect(sha256(readFileSync(line.file?.saved as string))).toBe(sha256(plain));
    expect(line.file?.sha256).toBe(sha256(plain));
    console.log(
      `30 MiB web→terminal with a relay restart: upload ${t1 - t0} ms, read ${t2 - t1} ms`,
    );
  }, 400_000);

  it('a tampered chunk is refused in the page with a clear error, nothing to save', async () => {
    const path = join(relay.root, 'tampered.txt');
    writeFileSync(path, randomBytes(200_000));
    const blobs = join(relay.data, 'blobs');
    const earlier = new Set(readdirSync(blobs));
    const sent = await parley(['send', '--profile', term, 'webby', '--file', path], asTerm);
    expect(sent.code, sent.err).toBe(0);
    const fresh = readdirSync(blobs).filter((f) => f.endsWith('.blob') && !earlier.has(f));
    expect(fresh).toHaveLength(1);
    const victim = join(blobs, fresh[0] as string);
    const blob = readFileSync(victim);
    blob[10_000] = (blob[10_000] as number) ^ 0x01;
    writeFileSync(victim, blob);

    const item = page.locator('.file[data-file="tampered.txt"]').last();
    await item.waitFor({ timeout: WAIT_MS });
    await item.getByRole('button', { name: 'Download tampered.txt' }).click();
    await item
      .getByRole('alert')
      .filter({ hasText: /Could not open tampered\.txt: .*integrity/ })
      .waitFor({ timeout: WAIT_MS });
    expect(await item.getByRole('link', { name: 'Save tampered.txt' }).count()).toBe(0);
  });
});
