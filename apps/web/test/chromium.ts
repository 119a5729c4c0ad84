/**
 * Real Chromium for browser tests: Debian's `chromium` driven by playwright-core (no
 * downloaded browser). A missing binary is an error, never a skip: browser behaviour is
 * tested or the run fails.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { Browser, BrowserContext, LaunchOptions } from 'playwright-core';

export const CHROMIUM_PATH = process.env['PARLEY_CHROMIUM'] ?? '/usr/bin/chromium';

// --headless is set by playwright itself (headless: true); the rest keep Chromium from
// reaching out to the network or doing background work during a test.
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function options(): LaunchOptions {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `chromium not found at ${CHROMIUM_PATH}: install it (apt-get install chromium) or set PARLEY_CHROMIUM`,
    );
  }
  return { executablePath: CHROMIUM_PATH, headless: true, args: ARGS };
}

/** A browser with a fresh, throw-away profile (playwright gives each launch its own). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch(options());
}

/**
 * A browser whose profile lives in `userDataDir` (default: a new temporary folder), so a
 * test can close it and start it again on the same IndexedDB. `dispose` closes it and
 * removes a temporary folder.
 */
export async function launchPersistent(
  userDataDir?: string,
): Promise<{ context: BrowserContext; userDataDir: string; dispose(): Promise<void> }> {
  const dir = userDataDir ?? mkdtempSync(join(tmpdir(), 'parley-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    ...options(),
    ignoreHTTPSErrors: true,
  });
  return {
    context,
    userDataDir: dir,
    dispose: async () => {
      await context.close();
      if (userDataDir === undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
}
