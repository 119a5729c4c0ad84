#!/usr/bin/env node
// `npm start`: the relay on embedded defaults in open mode with the web client, for a
// first look in a browser. Builds what is missing (the TypeScript packages, the web
// app when its dist/ is older than its sources), then runs `parley server` and prints
// the URL to open, how to add a second user and how to trust the relay's CA.
import { spawn, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const port = process.env.PARLEY_START_PORT ?? '8440';
const data = process.env.PARLEY_START_DATA ?? join(root, 'start-data');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function run(cmd, args, what) {
  process.stdout.write(`npm start: ${what}\n`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    process.stderr.write(`npm start: ${what} failed\n`);
    process.exit(r.status ?? 1);
  }
}

/** Newest modification time under `path` (files only; node_modules and dist skipped). */
function newest(path) {
  if (!existsSync(path)) return 0;
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  let t = 0;
  for (const e of readdirSync(path)) {
    if (e === 'node_modules' || e === 'dist') continue;
    t = Math.max(t, newest(join(path, e)));
  }
  return t;
}

if (!existsSync(join(root, 'apps/cli/dist/main.js')))
  run(npm, ['run', 'build'], 'building the packages');

const webIndex = join(root, 'apps/web/dist/index.html');
const webSources = [
  'apps/web/src',
  'apps/web/index.html',
  'apps/web/vite.config.ts',
  'apps/web/package.json',
  'packages/crypto/src',
  'packages/wire/src',
  'packages/protocol/src',
  'packages/client/src',
].map((p) => join(root, p));
const builtAt = existsSync(webIndex) ? statSync(webIndex).mtimeMs : 0;
if (Math.max(...webSources.map(newest)) > builtAt) {
  run(npm, ['run', 'build', '-w', 'apps/web'], 'building the web client (apps/web)');
}

const child = spawn(
  process.execPath,
  [
    join(root, 'apps/cli/bin/parley.js'),
    'server',
    '--data',
    data,
    '--auth',
    'open',
    '--web',
    '--port',
    port,
    // Warnings only: the guide below is what a newcomer should read.
    '--log-level',
    'warn',
  ],
  { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
);
let printed = false;
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  const text = chunk.toString();
  const m = /web client: open (https:\/\/\S+)/.exec(text);
  if (printed || !m) return;
  printed = true;
  const url = m[1];
  const wss = url.replace(/^https:/, 'wss:') + 'ws';
  const caPath = join(data, 'pki', 'ca.crt');
  let fingerprint = '';
  try {
    fingerprint = new X509Certificate(readFileSync(caPath)).fingerprint256;
  } catch {
    fingerprint = '(unreadable)';
  }
  process.stdout.write(
    [
      '',
      '==============================================================',
      `  Open ${url} in a browser, create a profile (a name and a passphrase).`,
      '',
      '  A second user: open the same URL in a private window or another browser',
      '  profile (each one is its own device), or from a terminal:',
      `    npx parley init --profile ./bob --server ${wss} --name bob --ca ${caPath}`,
      '    npx parley chat --profile ./bob',
      '',
      "  The relay's certificate comes from its own CA, so the browser warns first.",
      `  Either import ${caPath} as a trusted authority`,
      '  (Chromium: Settings > Privacy and security > Security > Manage certificates >',
      '  Authorities > Import; Firefox: Settings > Certificates > View Certificates >',
      '  Authorities > Import), or accept the warning for 127.0.0.1 once.',
      `  CA fingerprint (SHA-256): ${fingerprint}`,
      '',
      '  Ctrl-C stops the relay; its data stays in ' + data,
      '==============================================================',
      '',
    ].join('\n'),
  );
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 0 : 1)));
