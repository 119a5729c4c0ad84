/**
 * The chat's search box in a real terminal (tmux, 80x24) over a real mtls relay, with a
 * stored history longer than the newest page the chat loads: Ctrl+F opens it, a query
 * lists the matches newest first, choosing one jumps to it in its conversation (read
 * from the store, older than anything loaded), End returns to the newest; `/search WORDS`
 * and a prefix work the same. Runs the built CLI.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPortableCrypto } from '@parley/crypto';
import { MIN_KDF_MEMORY_KIB } from '@parley/client';
import type { StoredMessage } from '@parley/client';
import { initProfile, openProfile } from '@parley/client-node';
import { issueClient } from '@parley/pki';
import { startRelay } from '@parley/server';
import type { RunningRelay } from '@parley/server';
import { tmuxServer } from './tmux.js';

const BIN = resolve(import.meta.dirname, '../bin/parley.js');
const tmux = tmuxServer(`parley-search-${process.pid}`);
const crypto = createPortableCrypto();
/** More than the chat's first page (100), so the oldest match is not loaded at start. */
const HISTORY_MESSAGES = 150;
/** The messages the searches look for, by index in the history. */
const NEEDLES: Record<number, string> = {
  7: 'zebra needle seven',
  90: 'zebra needle ninety',
  140: 'zebrafish other',
};

const lines = (screen: string): string[] => screen.replace(/\n+$/, '').split('\n');

describe('parley chat search box in tmux', () => {
  const root = mkdtempSync(join(tmpdir(), 'parley-search-tui-'));
  let relay: RunningRelay;
  const profile = (n: string): string => join(root, n);

  beforeAll(async () => {
    if (!existsSync(join(import.meta.dirname, '../dist/main.js'))) {
      throw new Error('apps/cli/dist is missing: run `npx tsc -b apps/cli` first');
    }
    const data = join(root, 'relay');
    relay = await startRelay({ dataDir: data, port: 0, auth: 'mtls', logLevel: 'silent' });
    const issued = await issueClient(data, 'alice', join(root, 'creds-alice'));
    await initProfile({
      profile: profile('alice'),
      passphrase: 'pw-alice',
      server: relay.url,
      mode: 'mtls',
      certPem: readFileSync(issued.certPath, 'utf8'),
      keyPem: readFileSync(issued.keyPath, 'utf8'),
      caPem: readFileSync(issued.caPath, 'utf8'),
      crypto,
      kdf: { memoryKiB: MIN_KDF_MEMORY_KIB, iterations: 1 },
    });
    const store = await openProfile(profile('alice'), 'pw-alice', { crypto });
    try {
      const base = Date.UTC(2026, 0, 1, 8, 0);
      await store.commit(
        Array.from({ length: HISTORY_MESSAGES }, (_, i) => {
          const out = i % 2 === 1;
          const m: StoredMessage = {
            id: `search-${String(i).padStart(4, '0')}`.padEnd(32, '0'),
            peer: 'bob',
            direction: out ? 'out' : 'in',
            text: NEEDLES[i] ?? `old history line ${i}`,
            sentAt: base + i * 60_000,
            storedAt: base + i * 60_000,
            status: out ? 'delivered' : 'received',
            shown: true,
          };
          return { op: 'message.put' as const, message: m };
        }),
      );
    } finally {
      await store.close();
    }
    tmux(
      'new-session',
      '-d',
      '-s',
      'alice',
      '-x',
      '80',
      '-y',
      '24',
      `PARLEY_PASSPHRASE=pw-alice exec node ${BIN} chat --profile ${profile('alice')}`,
    );
    await tmux.screenMatching('alice', /alice \(mtls\) · connected/);
    await tmux.screenMatching('alice', /old history line 149/);
  }, 60_000);
  afterAll(async () => {
    tmux.killServer();
    await relay.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('Ctrl+F lists matches newest first; Enter on one jumps to it in the history; End returns', async () => {
    const start = tmux.capture('alice');
    expect(start).not.toContain('zebra needle seven');
    tmux('send-keys', '-t', 'alice', 'C-f');
    await tmux.screenMatching('alice', /search:\s*\n.*words must all occur/);
    tmux('send-keys', '-t', 'alice', '-l', 'zebra needle');
    tmux('send-keys', '-t', 'alice', 'Enter');
    const found = await tmux.screenMatching('alice', /2 found, newest first/);
    const rows = lines(found);
    const ninety = rows.findIndex((l) => /bob: zebra needle ninety/.test(l));
    const seven = rows.findIndex((l) => /me → bob: zebra needle seven/.test(l));
    expect(ninety).toBeGreaterThan(0);
    expect(seven).toBeGreaterThan(ninety);
    expect(found).not.toContain('zebrafish');

    tmux('send-keys', '-t', 'alice', 'Down');
    tmux('send-keys', '-t', 'alice', 'Enter');
    // The conversation from the chosen message on: read from the store, not the newest page.
    const jumped = await tmux.screenMatching(
      'alice',
      /\d\d:\d\d me: zebra needle seven[\s\S]*history · PgUp older/,
    );
    expect(jumped).not.toContain('old history line 149');
    expect(lines(jumped)[0]).toMatch(/^Parley · alice \(mtls\)/);
    for (const l of lines(jumped)) expect(l.length).toBeLessThanOrEqual(80);

    tmux('send-keys', '-t', 'alice', 'End');
    const latest = await tmux.screenMatching('alice', /old history line 149/);
    expect(latest).not.toContain('zebra needle seven');
  }, 60_000);

  it('/search with a prefix finds both spellings; Esc goes back to the conversation', async () => {
    tmux('send-keys', '-t', 'alice', '-l', '/search zebra*');
    tmux('send-keys', '-t', 'alice', 'Enter');
    const found = await tmux.screenMatching('alice', /3 found, newest first/);
    const rows = lines(found);
    const fish = rows.findIndex((l) => /bob: zebrafish other/.test(l));
    expect(fish).toBeGreaterThan(0);
    expect(rows.findIndex((l) => /zebra needle ninety/.test(l))).toBeGreaterThan(fish);
    tmux('send-keys', '-t', 'alice', 'Escape');
    await tmux.screenMatching('alice', /bob> *\n*$|bob>/);
    const back = tmux.capture('alice');
    expect(back).not.toContain('found, newest first');
  }, 60_000);
});
