/**
 * The scriptable commands as real processes writing into pipes (the built CLI,
 * apps/cli/bin/parley.js, as a user runs it): a reader that leaves early
 * (`verify | head -1`) does not crash the command; piped output carries no terminal
 * escape codes (the QR code is plain blocks); `read --json` times are ISO 8601 with the
 * local offset and human times show the zone; `read --history` shows both directions
 * with status marks.
 */
import { execFile, spawn } from 'node:child_process';
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

const BIN = resolve(import.meta.dirname, '../bin/parley.js');
/** A zone with a half-hour offset and no daylight saving, so the expected offset is fixed. */
const ZONE = 'Asia/Kolkata';

interface Done {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a shell line (bash, pipefail) with the given passphrase and time zone. */
function sh(line: string, passphrase: string): Promise<Done> {
  return new Promise((res) => {
    execFile(
      'bash',
      ['-c', `set -o pipefail; ${line}`],
      { env: { ...process.env, PARLEY_PASSPHRASE: passphrase, TZ: ZONE }, timeout: 60_000 },
      (err, stdout, stderr) =>
        res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('parley commands writing into pipes', () => {
  const root = mkdtempSync(join(tmpdir(), 'parley-pipes-'));
  const pa = join(root, 'alice');
  const pb = join(root, 'bob');
  let relay: RunningRelay;
  const cli = (...args: string[]): string =>
    ['node', BIN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');

  beforeAll(async () => {
    if (!existsSync(join(import.meta.dirname, '../dist/main.js'))) {
      throw new Error('apps/cli/dist is missing: run `npx tsc -b apps/cli` first');
    }
    const data = join(root, 'relay');
    relay = await startRelay({ dataDir: data, port: 0, auth: 'mtls', logLevel: 'silent' });
    const crypto = createPortableCrypto();
    for (const [n, p] of [
      ['alice', pa],
      ['bob', pb],
    ] as const) {
      const issued = await issueClient(data, n, join(root, `creds-${n}`));
      await initProfile({
        profile: p,
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
    // Bob publishes his keys so that alice can write to him.
    expect((await sh(cli('read', '--profile', pb), 'pw-bob')).code).toBe(0);
  }, 60_000);
  afterAll(async () => {
    await relay.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('send, then read --json: ISO 8601 times with the local offset; human times show the zone', async () => {
    const before = Date.now();
    const s = await sh(cli('send', '--profile', pa, 'bob', 'hello through a pipe'), 'pw-alice');
    const after = Date.now();
    expect(s.code).toBe(0);
    expect(s.stdout).toMatch(/^[0-9a-f]{32}\n$/);
    // The status in words on stderr, with its mark: queued, or on the device already.
    expect(s.stderr).toMatch(/^✓ (queued \(stored by the relay\)|on device \(the relay says)/);
    const r = await sh(cli('read', '--profile', pb, '--json') + ' | cat', 'pw-bob');
    expect(r.code).toBe(0);
    const line = JSON.parse(r.stdout.trim()) as {
      text: string;
      sentAt: string;
      receivedAt: string;
    };
    expect(line.text).toBe('hello through a pipe');
    const iso = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+05:30$/;
    expect(line.sentAt).toMatch(iso);
    expect(line.receivedAt).toMatch(iso);
    // The same instant, only written in local time.
    expect(Date.parse(line.sentAt)).toBeGreaterThanOrEqual(before - 1);
    expect(Date.parse(line.sentAt)).toBeLessThanOrEqual(after + 1);

    const h = await sh(cli('read', '--profile', pb, '--history', '--peer', 'alice'), 'pw-bob');
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(
      /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+05:30\] alice: hello through a pipe\n$/,
    );
    const ha = await sh(cli('read', '--profile', pa, '--history', '--limit', '1'), 'pw-alice');
    expect(ha.stdout).toMatch(/\] me → bob: hello through a pipe ✓/);
    const hj = await sh(cli('read', '--profile', pa, '--history', '--json'), 'pw-alice');
    expect(JSON.parse(hj.stdout.trim())).toMatchObject({
      direction: 'out',
      from: 'alice',
      to: 'bob',
      text: 'hello through a pipe',
      sentAt: expect.stringMatching(iso) as unknown,
    });
    const bad = await sh(cli('read', '--profile', pa, '--history', '--limit', '0'), 'pw-alice');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^parley: --limit: expected a whole number/);
  }, 60_000);

  it('verify into a pipe: plain text and block characters, no escape codes', async () => {
    const r = await sh(cli('verify', '--profile', pa, 'bob') + ' | cat', 'pw-alice');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/[▄▀█]{5}/);
    expect(r.stdout).not.toContain('\u001b');
    expect(r.stdout).toMatch(/^(\d{5} \d{5} \d{5})$/m);
  }, 60_000);

  it('verify | head -1 exits 0 with the first line and no EPIPE', async () => {
    const r = await sh(cli('verify', '--profile', pa, 'bob') + ' | head -1', 'pw-alice');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('Safety number with bob (key certified by your organisation CA):\n');
  }, 60_000);

  it('--help | head -1 and chat without a terminal: clean exits, no escape codes', async () => {
    const h = await sh(`${cli('--help')} | head -1`, 'x');
    expect(h.stderr).toBe('');
    expect(h.code).toBe(0);
    expect(h.stdout).toBe('Usage: parley [options] [command]\n');
    const c = await sh(`${cli('chat', '--profile', pa)} < /dev/null | cat`, 'pw-alice');
    expect(c.code).toBe(1);
    expect(c.stderr).toBe(
      'parley: chat needs a terminal (stdin and stdout); scripts use send and read\n',
    );
    expect(c.stdout).not.toContain('\u001b');
  }, 60_000);

  it('a reader gone before the first write (closed pipe): the command still exits 0', async () => {
    const child = spawn('node', [BIN, 'verify', '--profile', pa, 'bob'], {
      env: { ...process.env, PARLEY_PASSPHRASE: 'pw-alice' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // Close our (the only) read end now: every write the command makes gets EPIPE.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((res) => child.on('exit', res));
    expect(stderr).not.toMatch(/EPIPE|Error/);
    expect(code).toBe(0);
  }, 60_000);
});
