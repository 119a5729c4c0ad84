/**
 * Real Chromium for the web client's tests: Debian's `chromium` driven by
 * playwright-core (never a downloaded browser). A missing browser fails the test.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';

export const CHROMIUM = process.env.PARLEY_CHROMIUM ?? '/usr/bin/chromium';

/** Flags that keep Chromium quiet and self-contained in a test (no network of its own). */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Screenshots a test run leaves behind (git-ignored). */
export const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/', import.meta.url));

export interface Browser {
  readonly context: BrowserContext;
  readonly userDataDir: string;
  close(): Promise<void>;
}

/**
 * A headless Chromium with its own user-data-dir. Pass the same `userDataDir` again to
 * restart the browser on the same profile (IndexedDB survives).
 */
export async function launch(
  options: { userDataDir?: string; viewport?: { width: number; height: number } } = {},
): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`chromium not found at ${CHROMIUM}: apt-get install chromium`);
  const userDataDir = options.userDataDir ?? mkdtempSync(join(tmpdir(), 'parley-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    ignoreHTTPSErrors: true,
    viewport: options.viewport ?? { width: 1100, height: 720 },
  });
  return {
    context,
    userDataDir,
    close: () => context.close(),
  };
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export async function screenshot(page: Page, name: string, copyTo?: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, name);
  await page.screenshot({ path });
  if (copyTo !== undefined) {
    mkdirSync(dirname(copyTo), { recursive: true });
    await page.screenshot({ path: copyTo });
  }
  return path;
}
