/**
 * Builds a browser test page (one TypeScript entry bundled with esbuild) and serves it
 * on 127.0.0.1, an origin where IndexedDB and Web Locks are available (loopback is a
 * secure context). Sibling packages resolve to their TypeScript sources, and `vitest`
 * to the in-page shim, so shared suites run unchanged.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const shim = fileURLToPath(new URL('./browser/vitest-shim.ts', import.meta.url));

export interface TestPage {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Bundles `entry` into a new folder as `assets/page.js` beside an `index.html` that
 * loads it (no inline script, so the page runs under the relay's CSP too).
 */
export async function buildTestPage(entry: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-page-'));
  await build({
    entryPoints: [entry],
    outfile: join(dir, 'assets', 'page.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    logLevel: 'error',
    plugins: [
      {
        name: 'parley-sources',
        setup(b) {
          b.onResolve({ filter: /^@parley\/(crypto|wire|protocol|client)$/ }, (a) => ({
            path: join(repo, 'packages', a.path.slice('@parley/'.length), 'src/index.ts'),
          }));
          b.onResolve({ filter: /^vitest$/ }, () => ({ path: shim }));
        },
      },
    ],
  });
  writeFileSync(
    join(dir, 'index.html'),
    '<!doctype html><meta charset="utf-8"><title>loading</title><script type="module" src="/assets/page.js"></script>',
  );
  return dir;
}

/** Builds the page and serves it over plain HTTP on 127.0.0.1 (no relay). */
export async function serveTestPage(entry: string): Promise<TestPage> {
  const dir = await buildTestPage(entry);
  const server = createServer((req, res) => {
    const file = req.url === '/assets/page.js' ? 'assets/page.js' : 'index.html';
    res.writeHead(200, {
      'content-type': file.endsWith('.js') ? 'text/javascript' : 'text/html',
    });
    res.end(readFileSync(join(dir, file)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: async () => {
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
