/**
 * `parley chat` in real terminals of two sizes (tmux: alice at 100x30, bob at 80x24)
 * over a real mtls relay, each with a stored history longer than a screen: PgUp shows
 * older messages read from the store; a bracketed paste of three lines is sent as one
 * message; a 10 KB message is shown wrapped on both screens (its end at once, its start
 * by scrolling back); resizing keeps the header on screen. Runs the built CLI.
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
const tmux = tmuxServer(`parley-screens-${process.pid}`);
const crypto = createPortableCrypto();
/** More than a screen at either size, so the oldest are reachable only by scrolling. */
const HISTORY_MESSAGES = 150;
const SIZES = { alice: [100, 30], bob: [80, 24] } as const;

const lines = (screen: string): string[] => screen.replace(/\n+$/, '').split('\n');

describe('parley chat screens in tmux: scrollback, paste, long messages, resize', () => {
  const root = mkdtempSync(join(tmpdir(), 'parley-screens-'));
  let relay: RunningRelay;
  const profile = (n: string): string => join(root, n);

  /** Messages of an earlier conversation written straight into the profile's store. */
  async function seedHistory(n: 'alice' | 'bob', peer: string): Promise<void> {
    const store = await openProfile(profile(n), `pw-${n}`, { crypto });
    try {
      const base = Date.UTC(2026, 0, 1, 8, 0);
      const writes = Array.from({ length: HISTORY_MESSAGES }, (_, i) => {
        const out = i % 2 === 1;
        const m: StoredMessage = {
          id: `${n}-old-${String(i).padStart(4, '0')}`.padEnd(32, '0'),
          peer,
          direction: out ? 'out' : 'in',
          text: `old ${n} ${i} of history`,
          sentAt: base + i * 60_000,
          storedAt: base + i * 60_000,
          status: out ? 'delivered' : 'received',
          shown: true,
        };
        return { op: 'message.put' as const, message: m };
      });
      await store.commit(writes);
    } finally {
      await store.close();
    }
  }

  beforeAll(async () => {
    if (!existsSync(join(import.meta.dirname, '../dist/main.js'))) {
      throw new Error('apps/cli/dist is missing: run `npx tsc -b apps/cli` first');
    }
    const data = join(root, 'relay');
    relay = await startRelay({ dataDir: data, port: 0, auth: 'mtls', logLevel: 'silent' });
    for (const n of ['alice', 'bob'] as const) {
      const issued = await issueClient(data, n, join(root, `creds-${n}`));
      await initProfile({
        profile: profile(n),
        passphrase: `pw-${n}`,
        server: relay.url,
        mode: 'mtls',
        certPem: readFileSync(issued.certPath, 'utf8'),
        keyPem: readFileSync(issued.keyPath, 'utf8'),
        caPem: readFileSync(issued.caPath, 'utf8'),
        crypto,
        kdf: { memoryKiB: MIN_KDF_MEMORY_KIB, iterations: 1 },
      });
      await seedHistory(n, n === 'alice' ? 'bob' : 'alice');
      const [x, y] = SIZES[n];
      tmux(
        'new-session',
        '-d',
        '-s',
        n,
        '-x',
        String(x),
        '-y',
        String(y),
        `PARLEY_PASSPHRASE=pw-${n} exec node ${BIN} chat --profile ${profile(n)}`,
      );
    }
    await tmux.screenMatching('alice', /alice \(mtls\) · connected/);
    await tmux.screenMatching('bob', /bob \(mtls\) · connected/);
  }, 60_000);
  afterAll(async () => {
    tmux.killServer();
    await relay.close();
    rmSync(root, { recursive: true, force: true });
  });

  /** Presses PgUp until `re` is on screen (each press must move the view). */
  async function pageUpUntil(session: string, re: RegExp): Promise<string> {
    let screen = tmux.capture(session);
    for (let presses = 0; !re.test(screen); presses++) {
      if (presses > 60) throw new Error(`PgUp never reached ${re}:\n${screen}`);
      screen = await tmux.keysUntilChanged(session, screen, 'PPage');
    }
    return screen;
  }

  it('PgUp shows older messages read from the store, at 100x30 and at 80x24; End returns', async () => {
    for (const [n, peer] of [
      ['alice', 'bob'],
      ['bob', 'alice'],
    ] as const) {
      const [cols, rows] = SIZES[n];
      const first = await tmux.screenMatching(n, new RegExp(`old ${n} ${HISTORY_MESSAGES - 1} of`));
      expect(first).not.toContain(`old ${n} 0 of`);
      expect(lines(first).length).toBeLessThanOrEqual(rows);
      const top = await pageUpUntil(n, new RegExp(`\\d\\d:\\d\\d ${peer}: old ${n} 0 of history`));
      expect(top).toContain('start of the conversation');
      expect(top).not.toContain(`old ${n} ${HISTORY_MESSAGES - 1} of`);
      expect(lines(top)[0]).toMatch(new RegExp(`^Parley · ${n} \\(mtls\\)`));
      for (const l of lines(top)) expect(l.length).toBeLessThanOrEqual(cols);
      tmux('send-keys', '-t', n, 'End');
      await tmux.screenMatching(n, new RegExp(`old ${n} ${HISTORY_MESSAGES - 1} of`));
    }
  }, 120_000);

  it('a bracketed paste of three lines is sent as one message', async () => {
    tmux('set-buffer', '-b', 'three', 'paste line A\npaste line B\npaste line C');
    tmux('paste-buffer', '-p', '-b', 'three', '-t', 'alice');
    await tmux.screenMatching('alice', /paste line C/);
    tmux('send-keys', '-t', 'alice', 'Enter');
    const atBob = await tmux.screenMatching('bob', /alice: paste line A[^\n]*\n[^\n]*paste line B/);
    expect(atBob).not.toMatch(/alice: paste line [BC]/);
    const atAlice = await tmux.screenMatching('alice', /me: paste line A[\s\S]*paste line C ✓/);
    expect(atAlice).not.toMatch(/me: paste line [BC]/);
    // In the store: exactly one message holding the three lines.
    const store = await openProfile(profile('bob'), 'pw-bob', { crypto });
    try {
      const got = (await store.listMessages('alice')).filter((m) => m.text.includes('paste line'));
      expect(got.map((m) => m.text)).toEqual(['paste line A\npaste line B\npaste line C']);
    } finally {
      await store.close();
    }
  }, 60_000);

  it('a 10 KB message is shown wrapped on both screens, its start reachable with PgUp', async () => {
    const words = Array.from({ length: 1900 }, (_, i) => `w${i}`).join(' ');
    const text = `BEGIN-10K ${words} END-10K`;
    expect(Buffer.byteLength(text)).toBeGreaterThan(10_000);
    tmux('set-buffer', '-b', 'big', text);
    tmux('paste-buffer', '-p', '-b', 'big', '-t', 'alice');
    // The input shows the paste's last rows (it may wrap anywhere).
    await tmux.screenMatching('alice', /END-10K\n*$/);
    tmux('send-keys', '-t', 'alice', 'Enter');
    for (const n of ['alice', 'bob'] as const) {
      const [cols, rows] = SIZES[n];
      const screen = await tmux.screenMatching(n, /w1899 END-10K/, 30_000);
      // Several full rows of the message's words: wrapped, not cut or hidden.
      expect(lines(screen).filter((l) => /(w\d+ ){5}/.test(l)).length).toBeGreaterThan(rows / 2);
      expect(lines(screen)[0]).toMatch(new RegExp(`^Parley · ${n} \\(mtls\\)`));
      for (const l of lines(screen)) expect(l.length).toBeLessThanOrEqual(cols);
      const start = await pageUpUntil(n, /BEGIN-10K w0 w1 w2/);
      expect(start).toMatch(n === 'alice' ? /me: BEGIN-10K/ : /alice: BEGIN-10K/);
      tmux('send-keys', '-t', n, 'End');
      await tmux.screenMatching(n, /w1899 END-10K/);
    }
    await tmux.screenMatching('alice', /w1899 END-10K ✓/);
  }, 90_000);

  it('resizing 100x30 -> 80x24 -> 100x30 keeps the header and the input on screen', async () => {
    for (const [x, y] of [
      [80, 24],
      [100, 30],
    ] as const) {
      tmux('resize-window', '-t', 'alice', '-x', String(x), '-y', String(y));
      const screen = await tmux.screenMatching(
        'alice',
        // capture-pane drops trailing blanks: the empty input row reads `bob>`.
        new RegExp(`^Parley · alice \\(mtls\\) · connected[\\s\\S]*\\nbob>`),
      );
      const rows = lines(screen);
      expect(rows[0]).toMatch(/^Parley · alice \(mtls\) · connected/);
      expect(rows.length).toBeLessThanOrEqual(y);
      for (const l of rows) expect(l.length).toBeLessThanOrEqual(x);
      // The conversation is redrawn for the new size, not left from the old frame.
      expect(screen).toMatch(/bob: key certified by your organisation CA/);
    }
  }, 60_000);
});
