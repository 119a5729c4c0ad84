/**
 * The UI in real Chromium against the harness page (test/harness): the real client
 * core and protocol with the in-process relay, so what is checked is what a person
 * sees and does: create, lock and unlock (wrong passphrase), open a conversation,
 * Enter / Shift+Enter / a long paste, status marks up to ✓✓ from the recipient's
 * receipt, unread counts and presence, the connection banner, the key-change warning
 * accepted through the safety number (QR), and the 360 px layout. The platform
 * (IndexedDB, socket, the relay serving the app) is covered by the e2e-*.test.ts files.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'vite';
import type { ViteDevServer } from 'vite';
import type { Page } from 'playwright-core';
import { launchPersistent } from './chromium.js';
import { screenshot } from './browser.js';

const WEB = fileURLToPath(new URL('..', import.meta.url));
/** Bound on any single wait for page state (the first load compiles the app on demand). */
const WAIT_MS = 30_000;

interface Harness {
  bobReady(): boolean;
  bobSend(text: string): Promise<string>;
  bobTexts(): Promise<string[]>;
  carolSend(text: string): Promise<void>;
  bobReinstall(): Promise<void>;
  tamperNextToAlice(): void;
  dropAlice(): void;
  reconnectAlice(): void;
}

let server: ViteDevServer;
let browser: Awaited<ReturnType<typeof launchPersistent>>;
let page: Page;
let url: string;

const call = <K extends keyof Harness>(name: K, ...args: Parameters<Harness[K]>) =>
  page.evaluate(
    ([n, a]) => {
      const h = (window as unknown as { harness: Record<string, (...x: unknown[]) => unknown> })
        .harness;
      return h[n as string]!(...(a as unknown[]));
    },
    [name, args] as const,
  );

async function bobHas(text: string): Promise<void> {
  await page.waitForFunction(
    async (t) => (await (window as unknown as { harness: Harness }).harness.bobTexts()).includes(t),
    text,
    { timeout: WAIT_MS, polling: 50 },
  );
}

const lastOut = () => page.locator('.msg.out').last();

beforeAll(async () => {
  server = await createServer({
    root: WEB,
    configFile: `${WEB}vite.config.ts`,
    logLevel: 'error',
    server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false },
  });
  await server.listen();
  const addr = server.httpServer?.address();
  if (!addr || typeof addr === 'string') throw new Error('vite did not listen');
  url = `http://127.0.0.1:${addr.port}/test/harness/index.html`;
  browser = await launchPersistent();
  page = await browser.context.newPage();
  await page.goto(url);
  await page.waitForFunction(() => 'harness' in window, null, { timeout: WAIT_MS });
});

afterAll(async () => {
  await browser?.dispose();
  await server?.close();
});

describe('web UI in Chromium (harness relay)', () => {
  it('creates a profile, chats with marks up to ✓✓, Enter / Shift+Enter / long paste', async () => {
    await page.getByLabel('Name').fill('alice');
    await page.getByLabel('Passphrase', { exact: true }).fill('correct horse');
    await page.getByLabel('Passphrase again').fill('correct horse');
    await page.getByRole('button', { name: 'Create profile' }).click();
    await page.locator('.conn.connected').waitFor({ timeout: WAIT_MS });

    await page.getByLabel('Start a conversation').fill('bob');
    await page.getByRole('button', { name: 'Open' }).click();
    const box = page.getByLabel('Message to bob');
    // Opening a conversation puts the keyboard in its composer.
    await page.waitForFunction(() => document.activeElement?.id === 'composer-text', null, {
      timeout: WAIT_MS,
    });
    await box.fill('hello bob');
    await box.press('Enter');
    await bobHas('hello bob');
    // ✓✓ only once Bob's client receipted it end to end.
    await lastOut().locator('.status.delivered').waitFor({ timeout: WAIT_MS });
    expect(await lastOut().locator('.status').textContent()).toBe('✓✓');
    expect(await box.inputValue()).toBe('');

    // Shift+Enter is a new line, not a send.
    await box.type('line one');
    await box.press('Shift+Enter');
    await box.type('line two');
    expect(await page.locator('.msg.out').count()).toBe(1);
    await box.press('Enter');
    await bobHas('line one\nline two');

    // Bob answers: shown once, with the local time and the zone in its title.
    await call('bobSend', 'hi alice');
    const incoming = page.locator('.msg.in', { hasText: 'hi alice' });
    await incoming.waitFor({ timeout: WAIT_MS });
    expect(await incoming.count()).toBe(1);
    expect(await incoming.locator('time').getAttribute('title')).toMatch(/UTC[+-]\d\d:\d\d/);
    expect(await page.getByRole('log').getAttribute('aria-live')).toBe('polite');
    await screenshot(page, 'harness-conversation.png');

    // A long paste (20 000 characters: several wire blocks) goes through whole.
    const long = 'x'.repeat(19_990) + ' the end.';
    await box.fill(long);
    await box.press('Enter');
    await bobHas(long);
  });

  it('counts unread messages of another conversation and shows presence', async () => {
    await call('carolSend', 'are you there?');
    const carol = page.locator('button.conv[data-peer="carol"]');
    await carol.locator('.unread').waitFor({ timeout: WAIT_MS });
    expect(await carol.locator('.unread').textContent()).toBe('1');
    expect(await page.locator('button.conv[data-peer="bob"] .presence.online').count()).toBe(1);
    await carol.click();
    await page.locator('.msg.in', { hasText: 'are you there?' }).waitFor({ timeout: WAIT_MS });
    await carol.locator('.unread').waitFor({ state: 'detached', timeout: WAIT_MS });
    await page.locator('button.conv[data-peer="bob"]').click();
  });

  it('shows the connection banner, keeps what is written offline, sends it after reconnect', async () => {
    await call('dropAlice');
    await page.locator('.banner.reconnecting').waitFor({ timeout: WAIT_MS });
    const box = page.getByLabel('Message to bob');
    await box.fill('written while away');
    await box.press('Enter');
    await lastOut().locator('.status.sending').waitFor({ timeout: WAIT_MS });
    expect(await lastOut().locator('.status').textContent()).toBe('…');
    await call('reconnectAlice');
    await page.locator('.banner').waitFor({ state: 'detached', timeout: WAIT_MS });
    await bobHas('written while away');
    await lastOut().locator('.status.delivered').waitFor({ timeout: WAIT_MS });
  });

  it('is keyboard operable: Tab reaches a conversation, Enter opens it, the composer has focus', async () => {
    await page.getByLabel('Start a conversation').focus();
    let onCarol = false;
    for (let i = 0; i < 20 && !onCarol; i++) {
      await page.keyboard.press('Tab');
      onCarol = await page.evaluate(
        () => (document.activeElement as HTMLElement | null)?.dataset['peer'] === 'carol',
      );
    }
    expect(onCarol).toBe(true);
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.activeElement?.id === 'composer-text', null, {
      timeout: WAIT_MS,
    });
    expect(await page.getByLabel('Message to carol').isVisible()).toBe(true);
    await page.locator('button.conv[data-peer="bob"]').click();
  });

  it('opt-in notifications: when the tab is hidden, the sender is named and the text is not', async () => {
    await browser.context.grantPermissions(['notifications'], { origin: new URL(url).origin });
    await page.getByRole('button', { name: 'Notify me' }).click();
    await page.getByRole('button', { name: 'Notifications on' }).waitFor({ timeout: WAIT_MS });
    await page.evaluate(() => {
      const w = window as unknown as { shownNotes: string[] };
      w.shownNotes = [];
      const Real = window.Notification;
      window.Notification = class extends Real {
        constructor(title: string, options?: NotificationOptions) {
          super(title, options);
          w.shownNotes.push(`${title}|${options?.body ?? ''}`);
        }
      };
      Object.defineProperty(document, 'visibilityState', {
        configurable: true,
        get: () => 'hidden',
      });
    });
    await call('bobSend', 'secret words for the tab');
    await page.waitForFunction(
      () => (window as unknown as { shownNotes: string[] }).shownNotes.length > 0,
      null,
      { timeout: WAIT_MS },
    );
    const notes = await page.evaluate(
      () => (window as unknown as { shownNotes: string[] }).shownNotes,
    );
    expect(notes).toEqual(['Parley|New message from bob']);
    await page.evaluate(() => {
      Object.defineProperty(document, 'visibilityState', {
        configurable: true,
        get: () => 'visible',
      });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await page
      .locator('.msg.in', { hasText: 'secret words for the tab' })
      .waitFor({ timeout: WAIT_MS });
  });

  it('a message to an unknown name written offline ends ✗ not sent, with the reason', async () => {
    await call('dropAlice');
    await page.locator('.banner.reconnecting').waitFor({ timeout: WAIT_MS });
    await page.getByLabel('Start a conversation').fill('nobody');
    await page.getByRole('button', { name: 'Open' }).click();
    const box = page.getByLabel('Message to nobody');
    await box.fill('is anyone there?');
    await box.press('Enter');
    await lastOut().locator('.status.sending').waitFor({ timeout: WAIT_MS });
    await call('reconnectAlice');
    const failed = lastOut().locator('.status.failed');
    await failed.waitFor({ timeout: WAIT_MS });
    await failed.locator('.reason').waitFor({ timeout: WAIT_MS });
    expect(await failed.textContent()).toMatch(/^✗ not sent: .*nobody/);
    await page.locator('button.conv[data-peer="bob"]').click();
  });

  it('a message that arrives damaged is repaired: shown once, with the "secured again" note', async () => {
    await call('tamperNextToAlice');
    await call('bobSend', 'through the repair');
    await page.getByRole('status').filter({ hasText: 'Session with bob secured again.' }).waitFor({
      timeout: WAIT_MS,
    });
    await page.locator('.msg.in', { hasText: 'through the repair' }).waitFor({ timeout: WAIT_MS });
    expect(await page.locator('.msg.in', { hasText: 'through the repair' }).count()).toBe(1);
  });

  it('warns loudly on a key change; accepting goes through the safety number and QR code', async () => {
    await call('bobReinstall');
    await page.waitForFunction(
      () => (window as unknown as { harness: Harness }).harness.bobReady(),
      null,
      {
        timeout: WAIT_MS,
      },
    );
    await call('bobSend', 'new phone');
    const warning = page.locator('.keychange[role="alert"]');
    await warning.waitFor({ timeout: WAIT_MS });
    expect(await warning.textContent()).toContain("bob's identity key changed");
    // Until the new key is accepted, what Alice writes to bob waits (…) and is not sent.
    const box = page.getByLabel('Message to bob');
    await box.fill('held until accepted');
    await box.press('Enter');
    await lastOut().locator('.status.sending').waitFor({ timeout: WAIT_MS });
    expect(await call('bobTexts')).not.toContain('held until accepted');
    await warning.getByRole('button').click();
    const dialog = page.getByRole('dialog', { name: 'Safety number with bob' });
    await dialog.waitFor({ timeout: WAIT_MS });
    await dialog.locator('svg.qr path').waitFor({ timeout: WAIT_MS });
    const digits = (await dialog.getByLabel('safety number', { exact: true }).textContent()) ?? '';
    expect(digits.replace(/\D/g, '')).toHaveLength(60);
    await dialog.getByRole('button', { name: 'They match: mark verified' }).click();
    await warning.waitFor({ state: 'detached', timeout: WAIT_MS });
    await dialog.getByRole('button', { name: 'Close' }).click();
    expect(await page.locator('.conv-header .trust').textContent()).toBe('safety number verified');
    await bobHas('held until accepted');
  });

  it('ends a session after confirming; the next message starts a new one and arrives', async () => {
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'End session' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: 'Session with bob ended; keys discarded.' })
      .waitFor({ timeout: WAIT_MS });
    const box = page.getByLabel('Message to bob');
    await box.fill('a fresh start');
    await box.press('Enter');
    await bobHas('a fresh start');
    await lastOut().locator('.status.delivered').waitFor({ timeout: WAIT_MS });
  });

  it('locks; a wrong passphrase says so and unlocking again shows the history once', async () => {
    await page.getByRole('button', { name: 'Lock' }).click();
    await page.getByLabel('Passphrase').fill('wrong guess');
    await page.getByRole('button', { name: 'Unlock' }).click();
    await page
      .getByRole('alert')
      .filter({ hasText: 'Wrong passphrase' })
      .waitFor({ timeout: WAIT_MS });
    await page.getByLabel('Passphrase').fill('correct horse');
    await page.getByRole('button', { name: 'Unlock' }).click();
    await page.locator('.msg.in', { hasText: 'hi alice' }).waitFor({ timeout: WAIT_MS });
    expect(await page.locator('.msg.in', { hasText: 'hi alice' }).count()).toBe(1);
    // Connected again, even if the client was ready before the chat subscribed to it.
    await page.locator('.conn.connected').waitFor({ timeout: WAIT_MS });
  });

  it('fits 360 px: list and conversation take turns, nothing scrolls sideways', async () => {
    await page.setViewportSize({ width: 360, height: 640 });
    const bob = page.locator('button.conv[data-peer="bob"]');
    await bob.waitFor({ timeout: WAIT_MS });
    expect(await page.getByLabel('Message to bob').isVisible()).toBe(false);
    await bob.click();
    await page.getByLabel('Message to bob').waitFor({ timeout: WAIT_MS });
    expect(await bob.isVisible()).toBe(false);
    const overflow = await page.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    );
    expect(overflow).toBe(0);
    await screenshot(page, 'conversation-360.png');
    await page.getByRole('button', { name: '← Conversations' }).click();
    await bob.waitFor({ timeout: WAIT_MS });
  });
});
