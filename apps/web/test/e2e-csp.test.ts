/**
 * The app as the relay serves it, in Chromium: the Content-Security-Policy header is on
 * the page, the app itself runs under it (its module script and stylesheet are files of
 * its own origin), and a script injected inline does not run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WEB_CSP } from '@parley/server';
import { launchPersistent } from './chromium.js';
import { startWebRelay } from './e2e-env.js';
import type { WebRelay } from './e2e-env.js';

const WAIT_MS = 30_000;
let env: WebRelay;
let browser: Awaited<ReturnType<typeof launchPersistent>>;

beforeAll(async () => {
  env = await startWebRelay();
  browser = await launchPersistent();
});

afterAll(async () => {
  await browser?.dispose();
  await env?.close();
});

describe('web client served by the relay: CSP', () => {
  it('sends the CSP header, runs the app, refuses an injected inline script', async () => {
    const page = await browser.context.newPage();
    const violations: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
    });
    const res = await page.goto(env.url);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toBe(WEB_CSP);
    expect(WEB_CSP).toContain("script-src 'self'");
    expect(WEB_CSP).not.toMatch(/unsafe-inline/);

    // The app's own module ran (it rendered the profile gate) and its stylesheet applied.
    await page.getByRole('heading', { name: 'Parley' }).waitFor({ timeout: WAIT_MS });
    expect(
      await page.evaluate(() => getComputedStyle(document.querySelector('main')!).maxWidth),
    ).not.toBe('none');

    // An attacker's inline script, injected into the document, does not run.
    const ran = await page.evaluate(async () => {
      const seen = new Promise<string>((resolve) =>
        document.addEventListener('securitypolicyviolation', (e) => resolve(e.violatedDirective), {
          once: true,
        }),
      );
      const s = document.createElement('script');
      s.textContent = 'window.__injected = true;';
      document.body.appendChild(s);
      const directive = await seen;
      return { directive, injected: (window as unknown as { __injected?: boolean }).__injected };
    });
    expect(ran.injected).toBeUndefined();
    expect(ran.directive).toMatch(/^script-src/);
    // Neither the app nor its styles tripped the policy on their own.
    expect(violations.filter((v) => !/inline script/i.test(v))).toEqual([]);
    await page.close();
  });
});
