/**
 * bench:web — the web client in real Chromium (Debian's chromium via playwright-core)
 * through a real relay (open mode, TLS 1.3, in this process):
 *  1. first-load JavaScript of the real app (apps/web/dist, built if stale), as
 *     transferred (the relay serves gzip);
 *  2. opening the page to unlocked and connected (default Argon2id cost), median of R;
 *  3. Enter in one browser to the text shown in the other, p50/p99 over N messages
 *     alternating both ways, beside the same path CLI -> CLI (two Node clients of the
 *     `parley` command's core on the same relay, message event at the receiver) in
 *     the same run, and their ratio.
 * The browser side runs the real platform (store, lock, socket, core) under a minimal
 * harness page (bench/web/page.ts), not the UI's markup.
 *
 *   npm run bench:web        (PARLEY_BENCH_N=100, PARLEY_BENCH_R=5 to change;
 *                             PARLEY_BENCH_WEB_DIR=DIR measures that built app's first load)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createPortableCrypto } from '@parley/crypto';
import { initProfile, openNodeClient } from '@parley/client/node';
import type { NodeClient } from '@parley/client/node';
import { startRelay } from '@parley/server';
import type { RunningRelay } from '@parley/server';
import { launchChromium } from '../../apps/web/test/chromium.js';
import { buildTestPage } from '../../apps/web/test/test-page.js';

const N = Number(process.env['PARLEY_BENCH_N'] ?? 60);
const R = Number(process.env['PARLEY_BENCH_R'] ?? 5);
const root = fileURLToPath(new URL('../../', import.meta.url));
const FIRST_LOAD_GOAL_KB = 300;
const RATIO_GOAL = 2;

interface BenchApi {
  create(name: string, passphrase: string): Promise<string>;
  unlockedMs(): number;
  enteredAt(text: string): number;
  shownAt(text: string): number;
  close(): Promise<void>;
}
declare const parleyBench: BenchApi;

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};
const median = (xs: number[]): number => pct(xs, 50);
const fmt = (ms: number): string => `${ms.toFixed(1)} ms`;

async function until<T>(f: () => Promise<T>, ok: (v: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const v = await f();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const relayConfig = {
  rateLimit: {
    maxMessagesPerConnection: 1_000_000,
    maxBlocksPerConnection: 1_000_000,
    maxBlocksPerIdentity: 1_000_000,
  },
};

/** A built app to measure instead of this checkout's (e.g. another branch's build). */
const WEB_DIR = process.env['PARLEY_BENCH_WEB_DIR'];

async function firstLoad(browser: Browser, tmp: string): Promise<{ files: number; bytes: number }> {
  if (WEB_DIR === undefined) {
    const build = spawnSync('npm', ['run', 'build', '-w', 'apps/web'], {
      cwd: root,
      encoding: 'utf8',
    });
    if (build.status !== 0) throw new Error(`web build failed:\n${build.stdout}\n${build.stderr}`);
  }
  const relay = await startRelay({
    dataDir: join(tmp, 'relay-app'),
    port: 0,
    auth: 'open',
    web: true,
    defaultWebDir: WEB_DIR ?? join(root, 'apps/web/dist'),
    logLevel: 'silent',
  });
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  let bytes = 0;
  let files = 0;
  page.on('response', (res) => {
    if (res.request().resourceType() !== 'script') return;
    if (res.headers()['content-encoding'] !== 'gzip') throw new Error(`${res.url()} not gzipped`);
    files++;
    bytes += Number(res.headers()['content-length'] ?? NaN);
  });
  await page.goto(relay.webUrl ?? '', { waitUntil: 'networkidle' });
  await context.close();
  await relay.close();
  return { files, bytes };
}

async function openBench(context: BrowserContext, url: string, hash = ''): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${url}${hash}`);
  await page.waitForFunction(() => document.title !== 'loading' && !document.title.startsWith('…'));
  const title = await page.title();
  if (title.startsWith('error')) throw new Error(title);
  return page;
}

async function browserRun(browser: Browser, relay: RunningRelay) {
  const url = relay.webUrl ?? '';
  const ctxA = await browser.newContext({ ignoreHTTPSErrors: true });
  const ctxB = await browser.newContext({ ignoreHTTPSErrors: true });
  const pass = 'bench passphrase';
  for (const [ctx, name] of [
    [ctxA, 'alice'],
    [ctxB, 'bob'],
  ] as const) {
    const p = await openBench(ctx, url);
    await p.evaluate(([n, pw]) => parleyBench.create(n, pw), [name, pass] as const);
    await p.close();
  }
  const hash = (me: string, to: string) =>
    `#unlock=${me}&pass=${encodeURIComponent(pass)}&to=${to}`;
  const unlock: number[] = [];
  for (let i = 0; i < R; i++) {
    const p = await openBench(ctxA, url, hash('alice', 'bob'));
    await p.waitForFunction(() => document.title === 'unlocked', undefined, { timeout: 60_000 });
    unlock.push(await p.evaluate(() => parleyBench.unlockedMs()));
    await p.evaluate(() => parleyBench.close());
    await p.close();
  }
  const a = await openBench(ctxA, url, hash('alice', 'bob'));
  const b = await openBench(ctxB, url, hash('bob', 'alice'));
  for (const p of [a, b]) await p.waitForFunction(() => document.title === 'unlocked');
  const one = async (from: Page, to: Page, text: string): Promise<number> => {
    await from.locator('textarea').fill(text);
    await from.locator('textarea').press('Enter');
    const shown = await until(
      () => to.evaluate((t) => parleyBench.shownAt(t), text),
      (v) => v > 0,
      text,
    );
    return shown - (await from.evaluate((t) => parleyBench.enteredAt(t), text));
  };
  // The first message each way carries the handshake: not part of the steady state.
  await one(a, b, 'warm a');
  await one(b, a, 'warm b');
  const lat: number[] = [];
  for (let i = 0; i < N; i++) {
    lat.push(i % 2 === 0 ? await one(a, b, `a->b ${i}`) : await one(b, a, `b->a ${i}`));
  }
  await ctxA.close();
  await ctxB.close();
  return { unlock, lat };
}

async function cliRun(relay: RunningRelay, tmp: string): Promise<number[]> {
  const crypto = createPortableCrypto();
  const clients: Record<string, NodeClient> = {};
  for (const name of ['carol', 'dave']) {
    await initProfile({
      profile: join(tmp, name),
      passphrase: 'x',
      server: relay.url,
      mode: 'open',
      name,
      caPem: relay.caPem,
      crypto,
      kdf: { memoryKiB: 8, iterations: 1 },
    });
    clients[name] = await openNodeClient({ profile: join(tmp, name), passphrase: 'x', crypto });
    await clients[name].connect();
  }
  const carol = clients['carol'] as NodeClient;
  const dave = clients['dave'] as NodeClient;
  const one = (from: NodeClient, to: NodeClient, peer: string, text: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const t0 = performance.now();
      const off = to.client.on((e) => {
        if (e.type === 'message' && e.message.text === text) {
          off();
          resolve(performance.now() - t0);
        }
      });
      from.client.send(peer, text).catch(reject);
    });
  await one(carol, dave, 'dave', 'warm c');
  await one(dave, carol, 'carol', 'warm d');
  const lat: number[] = [];
  for (let i = 0; i < N; i++) {
    lat.push(
      i % 2 === 0
        ? await one(carol, dave, 'dave', `c->d ${i}`)
        : await one(dave, carol, 'carol', `d->c ${i}`),
    );
  }
  await carol.close();
  await dave.close();
  return lat;
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'parley-bench-web-'));
  const browser = await launchChromium();
  try {
    const load = await firstLoad(browser, tmp);
    const page = await buildTestPage(fileURLToPath(new URL('./page.ts', import.meta.url)));
    const relay = await startRelay({
      dataDir: join(tmp, 'relay'),
      port: 0,
      auth: 'open',
      web: true,
      defaultWebDir: page,
      logLevel: 'silent',
      config: relayConfig,
    });
    const web = await browserRun(browser, relay);
    const cli = await cliRun(relay, tmp);
    await relay.close();
    rmSync(page, { recursive: true, force: true });
    const ratio = median(web.lat) / median(cli);
    const kb = load.bytes / 1024;
    console.log(
      `bench:web  (N=${N} messages each, R=${R} page opens; chromium ${browser.version()})`,
    );
    if (WEB_DIR !== undefined) console.log(`app measured: ${WEB_DIR}`);
    console.log(
      `first-load JavaScript (real app, gzip as served): ${load.files} file(s), ${kb.toFixed(1)} KB  goal <= ${FIRST_LOAD_GOAL_KB} KB: ${kb <= FIRST_LOAD_GOAL_KB ? 'met' : 'MISSED'}`,
    );
    console.log(
      `open page -> unlocked + connected (Argon2id 64 MiB t=3): median ${fmt(median(web.unlock))}  (runs: ${web.unlock.map((x) => x.toFixed(0)).join(', ')})`,
    );
    console.log(
      `browser -> browser (Enter -> shown): p50 ${fmt(median(web.lat))}  p99 ${fmt(pct(web.lat, 99))}`,
    );
    console.log(
      `CLI -> CLI (send -> message event):  p50 ${fmt(median(cli))}  p99 ${fmt(pct(cli, 99))}`,
    );
    console.log(
      `ratio browser/CLI p50: ${ratio.toFixed(2)}x  goal <= ${RATIO_GOAL}x: ${ratio <= RATIO_GOAL ? 'met' : 'MISSED'}`,
    );
  } finally {
    await browser.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
