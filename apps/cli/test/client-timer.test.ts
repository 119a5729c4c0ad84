/**
 * `parley timer` through the real relay with real profiles: the setting reaches the
 * peer, `read --json` shows the timer change and each disappearing message's expiry
 * (counted from receipt), the history marks it, and a bad value is refused up front.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueClient } from '@parley/pki';
import { startRelay } from '@parley/server';
import type { RunningRelay } from '@parley/server';
import { parleyMain as parley } from './cli-main.js';

const HOUR = 60 * 60_000;

describe('parley timer', () => {
  const root = mkdtempSync(join(tmpdir(), 'parley-cli-timer-'));
  const data = join(root, 'relay');
  const pa = join(root, 'alice');
  const pb = join(root, 'bob');
  let relay: RunningRelay;

  beforeAll(async () => {
    relay = await startRelay({ dataDir: data, port: 0, auth: 'mtls', logLevel: 'silent' });
    for (const [n, p] of [
      ['alice', pa],
      ['bob', pb],
    ] as const) {
      const c = join(root, `creds-${n}`);
      await issueClient(data, n, c);
      const r = await parley(
        `pw-${n}`,
        'init',
        '--profile',
        p,
        '--server',
        relay.url,
        '--cert',
        join(c, `${n}.crt`),
        '--key',
        join(c, `${n}.key`),
        '--ca',
        join(c, 'ca.crt'),
      );
      expect(r.code).toBe(0);
    }
  });
  afterAll(async () => {
    await relay.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('sets the timer for both sides; read --json shows the change and the expiry', async () => {
    const bad = await parley('pw-alice', 'timer', '--profile', pa, 'bob', '2h');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('expected one of off|5m|1h|1d|1w');
    const t = await parley('pw-alice', 'timer', '--profile', pa, 'bob', '1h');
    expect(t.stderr).toBe('');
    expect(t.code).toBe(0);
    expect(t.stdout).toBe('disappearing messages with bob: 1 hour\n');
    const s = await parley('pw-alice', 'send', '--profile', pa, 'bob', 'gone in an hour');
    expect(s.code).toBe(0);
    const r = await parley('pw-bob', 'read', '--profile', pb, '--json');
    expect(r.code).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as {
            text: string;
            receivedAt: string;
            expiresAt?: string;
            timerMs?: number;
          },
      );
    expect(lines.map((l) => [l.text, l.timerMs])).toEqual([
      ['', HOUR],
      ['gone in an hour', undefined],
    ]);
    const msg = lines[1]!;
    expect(Date.parse(msg.expiresAt!) - Date.parse(msg.receivedAt)).toBe(HOUR);
    expect(lines[0]?.expiresAt).toBeUndefined();
    const h = await parley('pw-bob', 'read', '--profile', pb, '--history');
    expect(h.stdout).toContain('alice: * alice set disappearing messages to 1 hour');
    expect(h.stdout).toMatch(/alice: gone in an hour \(disappears \d{4}-\d\d-\d\d /);
    // The sender's copy carries its expiry as well.
    const ah = await parley('pw-alice', 'read', '--profile', pa, '--history', '--json');
    const mine = ah.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { text: string; expiresAt?: string });
    expect(mine.find((m) => m.text === 'gone in an hour')?.expiresAt).toBeDefined();
  });
});
