/**
 * The browser platform against a real relay (open mode, real TLS) that serves the page
 * itself: a profile made in Chromium registers its device key over the page-origin
 * WebSocket, chats both ways with a terminal-client profile (SQLCipher, Node
 * transport), a second tab of the same profile is held off by the profile lock until
 * the first lets go, a dropped connection comes back, and none of the plaintexts is
 * readable in the raw IndexedDB.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createPortableCrypto } from '@parley/crypto';
import { MIN_KDF_MEMORY_KIB } from '@parley/client';
import { initProfile, openNodeClient } from '@parley/client-node';
import type { NodeClient } from '@parley/client-node';
import { startRelay } from '@parley/server';
import type { RunningRelay } from '@parley/server';
import { launchChromium } from './chromium.js';
import { buildTestPage } from './test-page.js';

interface PageApi {
  create(name: string, passphrase: string): Promise<string>;
  open(profile: string, passphrase: string): Promise<string>;
  openWhenFree(profile: string, passphrase: string): Promise<string>;
  connect(): Promise<string>;
  send(peer: string, text: string): Promise<string>;
  messages(peer: string): Promise<{ direction: string; text: string; status: string }[]>;
  states(): string;
  drop(): void;
  close(): Promise<void>;
  url(): string;
  rawDump(): Promise<string>;
}
declare const parleyTest: PageApi;

const root = mkdtempSync(join(tmpdir(), 'parley-webplat-'));
const crypto = createPortableCrypto();
let relay: RunningRelay;
let browser: Browser;
let context: BrowserContext;
let tab1: Page;
let bob: NodeClient;
const pageDirs: string[] = [];

async function until(cond: () => Promise<boolean> | boolean, what: string, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function openTab(): Promise<Page> {
  const page = await context.newPage();
  await page.goto(relay.webUrl ?? '');
  await page.waitForFunction(() => document.title === 'ready');
  return page;
}

beforeAll(async () => {
  const dir = await buildTestPage(
    fileURLToPath(new URL('./browser/client-page.ts', import.meta.url)),
  );
  pageDirs.push(dir);
  relay = await startRelay({
    dataDir: join(root, 'relay'),
    port: 0,
    auth: 'open',
    web: true,
    defaultWebDir: dir,
    logLevel: 'silent',
  });
  browser = await launchChromium();
  context = await browser.newContext({ ignoreHTTPSErrors: true });
  tab1 = await openTab();
  await initProfile({
    profile: join(root, 'bob'),
    passphrase: 'bob pass',
    server: relay.url,
    mode: 'open',
    name: 'bob',
    caPem: relay.caPem,
    crypto,
    kdf: { memoryKiB: MIN_KDF_MEMORY_KIB, iterations: 1 },
  });
  bob = await openNodeClient({ profile: join(root, 'bob'), passphrase: 'bob pass', crypto });
  await bob.connect();
});

afterAll(async () => {
  await bob?.close();
  await browser?.close();
  await relay?.close();
  rmSync(root, { recursive: true, force: true });
  for (const d of pageDirs) rmSync(d, { recursive: true, force: true });
});

describe('web platform in Chromium against a real relay', () => {
  it('creates a profile, registers from the browser over /ws of its own origin', async () => {
    expect(await tab1.evaluate(() => parleyTest.create('alice', 'alice pass'))).toBe('created');
    expect(await tab1.evaluate(() => parleyTest.create('alice', 'other'))).toMatch(
      /^error:PROFILE_EXISTS:/,
    );
    expect(await tab1.evaluate(() => parleyTest.open('alice', 'wrong'))).toMatch(
      /^error:WRONG_PASSPHRASE:/,
    );
    expect(await tab1.evaluate(() => parleyTest.open('alice', 'alice pass'))).toBe('open');
    expect(await tab1.evaluate(() => parleyTest.url())).toBe(relay.url);
    expect(await tab1.evaluate(() => parleyTest.connect())).toBe('ready');
  });

  it('chats both ways with a terminal client', async () => {
    await tab1.evaluate(() => parleyTest.send('bob', 'from the browser 1'));
    await until(
      async () => (await bob.client.messages('alice')).some((m) => m.text === 'from the browser 1'),
      'bob to receive',
    );
    await bob.client.send('alice', 'from the terminal 2');
    await until(
      async () =>
        (await tab1.evaluate(() => parleyTest.messages('bob'))).some(
          (m) => m.direction === 'in' && m.text === 'from the terminal 2',
        ),
      'alice to receive',
    );
    await until(
      async () =>
        (await tab1.evaluate(() => parleyTest.messages('bob'))).find((m) => m.direction === 'out')
          ?.status === 'delivered',
      'the end-to-end receipt',
    );
  });

  it('holds a second tab off the profile until the first lets go', async () => {
    const tab2 = await openTab();
    expect(await tab2.evaluate(() => parleyTest.open('alice', 'alice pass'))).toBe(
      'in-another-tab',
    );
    await tab1.evaluate(() => parleyTest.close());
    expect(await tab2.evaluate(() => parleyTest.open('alice', 'alice pass'))).toBe('open');
    expect(await tab2.evaluate(() => parleyTest.connect())).toBe('ready');
    // The session continues in the new tab: same history, no new handshake needed.
    const history = await tab2.evaluate(() => parleyTest.messages('bob'));
    expect(history.map((m) => m.text)).toEqual(['from the browser 1', 'from the terminal 2']);
    await tab2.evaluate(() => parleyTest.send('bob', 'from tab two 3'));
    await until(
      async () => (await bob.client.messages('alice')).some((m) => m.text === 'from tab two 3'),
      'bob to receive from tab 2',
    );
    tab1 = tab2;
  });

  it('reconnects after the connection drops and sends what was written meanwhile', async () => {
    await tab1.evaluate(() => parleyTest.drop());
    await tab1.evaluate(() => parleyTest.send('bob', 'written while offline 4'));
    await until(
      async () =>
        (await bob.client.messages('alice')).some((m) => m.text === 'written while offline 4'),
      'bob to receive after reconnect',
    );
    expect(await tab1.evaluate(() => parleyTest.states())).toMatch(
      /online,offline,connecting,online/,
    );
  });

  it('gives the profile to a waiting tab when the holding tab is closed', async () => {
    const waiting = await openTab();
    expect(await waiting.evaluate(() => parleyTest.open('alice', 'alice pass'))).toBe(
      'in-another-tab',
    );
    const opened = waiting.evaluate(() => parleyTest.openWhenFree('alice', 'alice pass'));
    // Closing the tab (not the profile) is what lets go: the browser drops its locks.
    await tab1.close();
    expect(await opened).toBe('open');
    expect(await waiting.evaluate(() => parleyTest.connect())).toBe('ready');
    expect((await waiting.evaluate(() => parleyTest.messages('bob'))).length).toBe(4);
    tab1 = waiting;
  });

  it('keeps none of the plaintexts readable in IndexedDB', async () => {
    const dump = await tab1.evaluate(() => parleyTest.rawDump());
    expect(dump).toContain('alice/records/');
    for (const text of [
      'from the browser 1',
      'from the terminal 2',
      'from tab two 3',
      'written while offline 4',
      'browser',
      'terminal',
    ]) {
      expect(dump.includes(text), text).toBe(false);
      expect(dump.includes(Buffer.from(text).toString('hex')), `${text} (hex)`).toBe(false);
    }
  });
});
