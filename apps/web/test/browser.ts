/** Screenshots the browser tests leave behind as artifacts (git-ignored folder). */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';

export const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/', import.meta.url));

/**
 * Saves `name` under the artifacts folder. With `PARLEY_DOCS_SCREENSHOT=1` it also
 * writes `copyTo` (the committed docs image), so an ordinary run leaves the tree clean.
 */
export async function screenshot(page: Page, name: string, copyTo?: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, name);
  await page.screenshot({ path });
  if (copyTo !== undefined && process.env['PARLEY_DOCS_SCREENSHOT'] === '1') {
    mkdirSync(dirname(copyTo), { recursive: true });
    await page.screenshot({ path: copyTo });
  }
  return path;
}
