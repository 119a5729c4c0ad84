/**
 * The browser end-to-end set-up: the web app built by Vite into a temporary folder, a
 * real relay in open mode serving it at `/` (TLS, its own CA, SQLite in a temporary
 * data directory), or in mtls mode serving it on its browser listener, and Chromium
 * profiles to open it with. One relay per test file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';
import { startRelay } from '@parley/server';
import type { RunningRelay } from '@parley/server';

const WEB = fileURLToPath(new URL('..', import.meta.url));

export interface WebRelay {
  relay: RunningRelay;
  readonly root: string;
  readonly appDir: string;
  /** https://127.0.0.1:PORT/ (mtls: the browser listener's port) */
  readonly url: string;
  /** Stops the relay (the data stays). */
  stop(): Promise<void>;
  /** Starts it again on the same port and data, after `stop`. */
  start(): Promise<void>;
  close(): Promise<void>;
}

/** Builds the app once into `dir` (the production build the relay serves). */
export async function buildApp(dir: string): Promise<void> {
  await build({
    root: WEB,
    configFile: join(WEB, 'vite.config.ts'),
    logLevel: 'error',
    build: { outDir: dir, emptyOutDir: true },
  });
}

export async function startWebRelay(auth: 'open' | 'mtls' = 'open'): Promise<WebRelay> {
  const root = mkdtempSync(join(tmpdir(), 'parley-web-e2e-'));
  const appDir = join(root, 'app');
  await buildApp(appDir);
  const start = (port: number, browserPort = 0): Promise<RunningRelay> =>
    startRelay({
      dataDir: join(root, 'data'),
      host: '127.0.0.1',
      port,
      auth,
      ...(auth === 'mtls' ? { browserPort } : {}),
      web: true,
      defaultWebDir: appDir,
      logLevel: 'silent',
    });
  let stopped = false;
  const env: WebRelay = {
    relay: await start(0),
    root,
    appDir,
    get url() {
      return `https://127.0.0.1:${env.relay.browserPort ?? env.relay.port}/`;
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await env.relay.close();
    },
    start: async () => {
      env.relay = await start(env.relay.port, env.relay.browserPort);
      stopped = false;
    },
    close: async () => {
      await env.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
  return env;
}
