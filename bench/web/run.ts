/**
 * bench:web — the web client in real Chromium (Debian's chromium via playwright-core)
 * through a real relay (open mode, TLS 1.3, in this process):
 *  1. first-load JavaScript of the real app (apps/web/dist, built if stale), as
 *     transferred (the relay serves gzip);
 *  2. opening the page to unlocked and connected (default Argon2id cost), median of R;
 *  3. Enter in one browser to the text shown in the other, p50/p99 over N messages
 *     alternating both ways, beside the same path CLI -> CLI (two Node clients of the
 *     `parley` command's core on the same relay, message event at the receiver) in
 *     the same run (in a process of their own: bench/web/cli-peers.ts), and their ratio.
 * The browser side is the real app as a person uses it (the same build as in 1, served
 * by the relay): profiles created and unlocked through the unlock form, each message
 * typed into the composer of the open conversation and sent with Enter, timed until
 * the text is in the other browser's conversation view (and painted).
 *
 *   npm run bench:web        (PARLEY_BENCH_N=100, PARLEY_BENCH_R=5 to change;
 *                             PARLEY_BENCH_WEB_DIR=DIR measures that built app's first load)
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startRelay } from '@parley/server';
import type { RunningRelay } from '@parley/server';
import { launchChromium } from '../../apps/web/test/chromium.js';

const N = Number(process.env['PARLEY_BENCH_N'] ?? 60);
const R = Number(process.env['PARLEY_BENCH_R'] ?? 5);
/** Latency rounds, browser and CLI alternating; figures are medians over rounds. */
const ROUNDS = Number(process.env['PARLEY_BENCH_ROUNDS'] ?? 3);
const root = fileURLToPath(new URL('../../', import.meta.url));
const FIRST_LOAD_GOAL_KB = 300;
const RATIO_GOAL = 2;

/** Timing probes the bench installs in each page (through the DevTools protocol, not the page's CSP). */
interface Probes {
  entered: Map<string, number>;
  shown: Map<string, number>;
}
declare const parleyProbes: Probes;

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

/** Both browsers' clocks are the machine's: `performance.timeOrigin + performance.now()`. */
async function installProbes(page: Page): Promise<void> {
  // A plain script, so the bundler's helpers (tsx names functions) never reach the page.
  await page.evaluate(PROBES_SCRIPT);
}

/**
 * Enter in the composer records its text at that instant (capture phase: before the app
 * clears it); a received message in the conversation view counts as shown once the
 * next frame paints it.
 */
const PROBES_SCRIPT = `(() => {
  const now = () => performance.timeOrigin + performance.now();
  const probes = { entered: new Map(), shown: new Map() };
  globalThis.parleyProbes = probes;
  document.addEventListener('keydown', (e) => {
    const t = e.target;
    if (e.key === 'Enter' && !e.shiftKey && t instanceof HTMLTextAreaElement)
      probes.entered.set(t.value, now());
  }, true);
  new MutationObserver(() => {
    for (const el of document.querySelectorAll('.msg.in .text')) {
      const text = el.textContent ?? '';
      if (probes.shown.has(text)) continue;
      probes.shown.set(text, -1);
      requestAnimationFrame(() => probes.shown.set(text, now()));
    }
  }).observe(document.body, { childList: true, subtree: true, characterData: true });
})()`;

const connected = (p: Page): Promise<void> =>
  p.locator('.conn.connected').waitFor({ timeout: 60_000 });

async function createInUi(context: BrowserContext, url: string, name: string, pass: string) {
  const p = await context.newPage();
  await p.goto(url);
  await p.getByLabel('Name').fill(name);
  await p.getByLabel('Passphrase', { exact: true }).fill(pass);
  await p.getByLabel('Passphrase again').fill(pass);
  await p.getByRole('button', { name: 'Create profile' }).click();
  await connected(p);
  return p;
}

/** Opens the page and unlocks through the form; resolves once connected. Times it. */
async function unlockInUi(context: BrowserContext, url: string, pass: string) {
  const p = await context.newPage();
  const t0 = Date.now();
  await p.goto(url);
  await p.getByLabel('Passphrase').fill(pass);
  await p.getByRole('button', { name: 'Unlock' }).click();
  await connected(p);
  return { page: p, ms: Date.now() - t0 };
}

async function openConversation(p: Page, peer: string): Promise<void> {
  await p.getByLabel('Start a conversation').fill(peer);
  await p.getByRole('button', { name: 'Open' }).click();
  await p.getByLabel(`Message to ${peer}`).waitFor({ timeout: 60_000 });
}

/** Closes a page; its `pagehide` closes the profile, which frees the lock for the next unlock. */
async function closePage(p: Page): Promise<void> {
  await p.close({ runBeforeUnload: true });
}

async function browserRun(browser: Browser, relay: RunningRelay) {
  const url = relay.webUrl ?? '';
  const ctxA = await browser.newContext({ ignoreHTTPSErrors: true });
  const ctxB = await browser.newContext({ ignoreHTTPSErrors: true });
  const pass = 'bench passphrase';
  await closePage(await createInUi(ctxA, url, 'alice', pass));
  const b = await createInUi(ctxB, url, 'bob', pass);
  const unlock: number[] = [];
  for (let i = 0; i < R; i++) {
    const u = await unlockInUi(ctxA, url, pass);
    unlock.push(u.ms);
    await closePage(u.page);
  }
  const a = (await unlockInUi(ctxA, url, pass)).page;
  await openConversation(a, 'bob');
  await openConversation(b, 'alice');
  for (const p of [a, b]) await installProbes(p);
  const peerOf = new Map<Page, string>([
    [a, 'bob'],
    [b, 'alice'],
  ]);
  const one = async (from: Page, to: Page, text: string): Promise<number> => {
    const box = from.getByLabel(`Message to ${peerOf.get(from) ?? ''}`);
    await box.fill(text);
    await box.press('Enter');
    const shown = await until(
      () => to.evaluate((t) => parleyProbes.shown.get(t) ?? 0, text),
      (v) => v > 0,
      text,
    );
    return shown - (await from.evaluate((t) => parleyProbes.entered.get(t) ?? NaN, text));
  };
  // The first message each way carries the handshake: not part of the steady state.
  await one(a, b, 'warm a');
  await one(b, a, 'warm b');
  return {
    unlock,
    round: async (r: number): Promise<number[]> => {
      const lat: number[] = [];
      for (let i = 0; i < N; i++) {
        lat.push(
          i % 2 === 0 ? await one(a, b, `a->b ${r}.${i}`) : await one(b, a, `b->a ${r}.${i}`),
        );
      }
      return lat;
    },
    close: async () => {
      await ctxA.close();
      await ctxB.close();
    },
  };
}

/**
 * One CLI round in a child process (cli-peers.ts) with fresh profiles. Asynchronous: the
 * relay runs in this process and must keep serving while the child talks to it.
 */
function cliRound(relay: RunningRelay, tmp: string, r: number): Promise<number[]> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      fileURLToPath(new URL('./cli-peers.ts', import.meta.url)),
      relay.url,
      relay.paths.caCert,
      tmp,
      String(N),
      String(r),
    ],
    {
      cwd: root,
      env: { ...process.env, TSX_TSCONFIG_PATH: join(root, 'tsconfig.test.json') },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`cli-peers failed:\n${err}`));
      resolve((JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { lat: number[] }).lat);
    });
  });
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'parley-bench-web-'));
  const browser = await launchChromium();
  try {
    const load = await firstLoad(browser, tmp);
    const relay = await startRelay({
      dataDir: join(tmp, 'relay'),
      port: 0,
      auth: 'open',
      web: true,
      defaultWebDir: WEB_DIR ?? join(root, 'apps/web/dist'),
      logLevel: 'silent',
      config: relayConfig,
    });
    const web = await browserRun(browser, relay);
    // Rounds alternate browser and CLI, so both see the same machine load over time.
    const rounds: { web: number[]; cli: number[] }[] = [];
    for (let r = 0; r < ROUNDS; r++)
      rounds.push({ web: await web.round(r), cli: await cliRound(relay, tmp, r) });
    await web.close();
    await relay.close();
    const webP50 = median(rounds.map((x) => median(x.web)));
    const webP99 = median(rounds.map((x) => pct(x.web, 99)));
    const cliP50 = median(rounds.map((x) => median(x.cli)));
    const cliP99 = median(rounds.map((x) => pct(x.cli, 99)));
    const ratio = median(rounds.map((x) => median(x.web) / median(x.cli)));
    const kb = load.bytes / 1024;
    console.log(
      `bench:web  (${ROUNDS} rounds of N=${N} messages each way-alternating, R=${R} page opens; chromium ${browser.version()}; medians over rounds)`,
    );
    if (WEB_DIR !== undefined) console.log(`app measured: ${WEB_DIR}`);
    console.log(
      `first-load JavaScript (real app, gzip as served): ${load.files} file(s), ${kb.toFixed(1)} KB  goal <= ${FIRST_LOAD_GOAL_KB} KB: ${kb <= FIRST_LOAD_GOAL_KB ? 'met' : 'MISSED'}`,
    );
    console.log(
      `open page -> unlocked + connected (Argon2id 64 MiB t=3): median ${fmt(median(web.unlock))}  (runs: ${web.unlock.map((x) => x.toFixed(0)).join(', ')})`,
    );
    console.log(
      `browser -> browser (real UI: composer Enter -> shown in the other's conversation): p50 ${fmt(webP50)}  p99 ${fmt(webP99)}`,
    );
    console.log(
      `CLI -> CLI (send -> message event):  p50 ${fmt(cliP50)}  p99 ${fmt(cliP99)}  (own process)`,
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
