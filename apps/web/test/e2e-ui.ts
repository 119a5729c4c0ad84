/**
 * What a person does in the web client, as steps on a Playwright page: create or unlock
 * the profile, open a conversation, send, and wait for what is shown. Every wait is on
 * page state and bounded.
 */
import type { Page } from 'playwright-core';

/** Bound on any single wait for page state (Argon2id and the first handshake included). */
export const WAIT_MS = 30_000;

export async function createProfile(page: Page, url: string, name: string, pass: string) {
  await page.goto(url);
  await page.getByLabel('Name').fill(name);
  await page.getByLabel('Passphrase', { exact: true }).fill(pass);
  await page.getByLabel('Passphrase again').fill(pass);
  await page.getByRole('button', { name: 'Create profile' }).click();
  await connected(page);
}

export async function unlock(page: Page, url: string, pass: string): Promise<void> {
  if (page.url() !== url) await page.goto(url);
  await page.getByLabel('Passphrase').fill(pass);
  await page.getByRole('button', { name: 'Unlock' }).click();
}

export async function connected(page: Page): Promise<void> {
  await page.locator('.conn.connected').waitFor({ timeout: WAIT_MS });
}

export async function openConversation(page: Page, peer: string): Promise<void> {
  const row = page.locator(`button.conv[data-peer="${peer}"]`);
  if ((await row.count()) > 0) await row.click();
  else {
    await page.getByLabel('Start a conversation').fill(peer);
    await page.getByRole('button', { name: 'Open' }).click();
  }
  await page.getByLabel(`Message to ${peer}`).waitFor({ timeout: WAIT_MS });
}

export async function send(page: Page, peer: string, text: string): Promise<void> {
  const box = page.getByLabel(`Message to ${peer}`);
  await box.fill(text);
  await box.press('Enter');
  await page.locator('.msg.out', { hasText: text }).last().waitFor({ timeout: WAIT_MS });
}

/** Waits until an incoming message with exactly `text` is shown. */
export async function shown(page: Page, text: string): Promise<void> {
  await page
    .locator('.msg.in .text')
    .filter({ hasText: new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) })
    .first()
    .waitFor({ timeout: WAIT_MS });
}

/** Texts of the shown conversation, in order, with direction. */
export function transcript(page: Page): Promise<string[]> {
  return page.$$eval('.msg', (els) =>
    els.map(
      (e) => `${e.classList.contains('out') ? '>' : '<'} ${e.querySelector('.text')?.textContent}`,
    ),
  );
}

export async function delivered(page: Page, text: string): Promise<void> {
  await page
    .locator('.msg.out', { hasText: text })
    .last()
    .locator('.status.delivered')
    .waitFor({ timeout: WAIT_MS });
}
