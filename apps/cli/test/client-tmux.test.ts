/**
 * Two `parley chat` sessions, each a real terminal (tmux, 80x24), exchange messages
 * through a real mtls relay; the captured screens must show them with status marks.
 * Runs the built CLI (apps/cli/bin/parley.js -> dist), as a user would.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPortableCrypto } from '@parley/crypto';
import { MIN_KDF_MEMORY_KIB } from '@parley/client';
import { initProfile } from '@parley/client-node';
import { issueClient } from '@parley/pki';
import { startRelay } from '@parley/server';
import type { RunningRelay } from '@parley/server';
import { tmuxServer } from './tmux.js';

const BIN = resolve(import.meta.dirname, '../bin/parley.js');
const tmux = tmuxServer(`parley-test-${process.pid}`);
const { capture, screenMatching } = tmux;

describe('parley chat in tmux', () => {
  const root = mkdtempSync(join(tmpdir(), 'parley-tmux-'));
  let relay: RunningRelay;

  beforeAll(async () => {
    if (!existsSync(join(import.meta.dirname, '../dist/main.js'))) {
      throw new Error('apps/cli/dist is missing: run `npx tsc -b apps/cli` first');
    }
    const data = join(root, 'relay');
    relay = await startRelay({ dataDir: data, port: 0, auth: 'mtls', logLevel: 'silent' });
    const crypto = createPortableCrypto();
    for (const n of ['alice', 'bob']) {
      const c = join(root, `creds-${n}`);
      const issued = await issueClient(data, n, c);
      await initProfile({
        profile: join(root, n),
        passphrase: `pw-${n}`,
        server: relay.url,
        mode: 'mtls',
        certPem: readFileSync(issued.certPath, 'utf8'),
        keyPem: readFileSync(issued.keyPath, 'utf8'),
        caPem: readFileSync(issued.caPath, 'utf8'),
        crypto,
        kdf: { memoryKiB: MIN_KDF_MEMORY_KIB, iterations: 1 },
      });
    }
  });
  afterAll(async () => {
    tmux.killServer();
    await relay.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('exchanges messages between two chat sessions and shows them', async () => {
    for (const n of ['alice', 'bob']) {
      tmux(
        'new-session',
        '-d',
        '-s',
        n,
        '-x',
        '80',
        '-y',
        '24',
        `PARLEY_PASSPHRASE=pw-${n} exec node ${BIN} chat --profile ${join(root, n)}`,
      );
    }
    await screenMatching('alice', /alice \(mtls\) · connected/);
    await screenMatching('bob', /bob \(mtls\) · connected/);
    tmux('send-keys', '-t', 'alice', '/to bob', 'Enter');
    await screenMatching('alice', /^bob>/m);
    tmux('send-keys', '-t', 'alice', 'hello bob, from the alice terminal', 'Enter');
    const atBob = await screenMatching('bob', /alice: hello bob, from the alice terminal/);
    expect(atBob).toMatch(/alice \(1\)|alice/);
    await screenMatching('bob', /^alice>/m);
    tmux('send-keys', '-t', 'bob', 'hi alice, bob here', 'Enter');
    const atAlice = await screenMatching('alice', /bob: hi alice, bob here/);
    // Alice's own line carries a status mark: ✓ queued or ✓✓ delivered.
    expect(atAlice).toMatch(/me: hello bob, from the alice terminal ✓/);
    await screenMatching('alice', /me: hello bob, from the alice terminal ✓✓/);
    // The conversation says how bob's key is trusted (mtls: certified by the CA).
    await screenMatching('alice', /bob: key certified by your organisation CA/);
    // Every line fits the 80-column terminal.
    for (const line of capture('alice').split('\n')) expect(line.length).toBeLessThanOrEqual(80);
    tmux('send-keys', '-t', 'alice', '/help', 'Enter');
    await screenMatching('alice', /\/verify\s+safety number and QR code/);
    tmux('send-keys', '-t', 'alice', 'Escape');
    // Back on the conversation before typing: an Escape glued to the next key reads as Alt.
    await screenMatching('alice', /^bob>/m);
    tmux('send-keys', '-t', 'alice', '/verify', 'Enter');
    const verify = await screenMatching('alice', /Safety number with bob/);
    expect(verify).toMatch(/\d{5} \d{5} \d{5}/);
    expect(verify).toContain('key certified by your organisation CA');
  }, 90_000);

  it('asks the passphrase without echo and refuses a wrong one', async () => {
    const profile = join(root, 'alice');
    tmux(
      'new-session',
      '-d',
      '-s',
      'pw',
      '-x',
      '80',
      '-y',
      '24',
      `env -u PARLEY_PASSPHRASE node ${BIN} contacts --profile ${profile}; echo EXIT=$?; sleep 30`,
    );
    await screenMatching('pw', /Passphrase:/);
    tmux('send-keys', '-t', 'pw', 'not-the-secret-123', 'Enter');
    const wrong = await screenMatching('pw', /EXIT=1/);
    expect(wrong).toContain('parley: wrong passphrase for this profile');
    expect(wrong).not.toContain('not-the-secret-123');
    tmux('kill-session', '-t', 'pw');
    tmux(
      'new-session',
      '-d',
      '-s',
      'pw2',
      '-x',
      '80',
      '-y',
      '24',
      `env -u PARLEY_PASSPHRASE node ${BIN} contacts --profile ${profile}; echo EXIT=$?; sleep 30`,
    );
    await screenMatching('pw2', /Passphrase:/);
    tmux('send-keys', '-t', 'pw2', 'pw-alice', 'Enter');
    const ok = await screenMatching('pw2', /EXIT=0/);
    expect(ok).toMatch(/bob\s+ca-attested/);
    expect(ok).not.toContain('pw-alice');
  }, 60_000);
});
