/**
 * First run against a real mtls relay: the relay URL forms `init` accepts (no path means
 * the relay's /ws; another path is refused naming /ws), an `init` that cannot reach the
 * relay failing non-zero without claiming success, and `profile set` repairing the
 * saved profile (address, CA) so that it then registers and works.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initPki, issueClient } from '@parley/pki';
import { startRelay } from '@parley/server';
import type { RunningRelay } from '@parley/server';
import { parleyMain as parley } from './cli-main.js';

/** A 127.0.0.1 port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((res) => srv.close(() => res()));
  return port;
}

describe('relay URLs, first run and profile set', () => {
  const root = mkdtempSync(join(tmpdir(), 'parley-cli-setup-'));
  const data = join(root, 'relay');
  let relay: RunningRelay;
  let bare: string; // wss://127.0.0.1:PORT, the form in --help
  const creds = (n: string): string[] => {
    const c = join(root, `creds-${n}`);
    return ['--cert', join(c, `${n}.crt`), '--key', join(c, `${n}.key`), '--ca', join(c, 'ca.crt')];
  };

  beforeAll(async () => {
    relay = await startRelay({ dataDir: data, port: 0, auth: 'mtls', logLevel: 'silent' });
    bare = relay.url.replace(/\/ws$/, '');
    for (const n of ['alice', 'bob', 'carol']) await issueClient(data, n, join(root, `creds-${n}`));
  });
  afterAll(async () => {
    await relay.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('init with wss://HOST:PORT (no path) reaches the relay at /ws and registers', async () => {
    expect(bare).toMatch(/^wss:\/\/127\.0\.0\.1:\d+$/);
    const p = join(root, 'alice');
    const r = await parley('pw-a', 'init', '--profile', p, '--server', bare, ...creds('alice'));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('profile created for alice (mtls)');
    expect(r.stdout).toContain(`registered with ${bare}/ws`);
    const s = await parley('pw-a', 'send', '--profile', p, 'alice', 'note to self');
    expect(s.code).toBe(0);
  });

  it('init with another path fails at once, naming the expected endpoint; nothing is created', async () => {
    const p = join(root, 'bob-wrong');
    const r = await parley(
      'pw-b',
      'init',
      '--profile',
      p,
      '--server',
      `${bare}/chat`,
      ...creds('bob'),
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `parley: --server: the relay's endpoint is /ws (${bare}/ws, or just ${bare}), not /chat\n`,
    );
    expect(r.stdout).toBe('');
    expect(existsSync(p)).toBe(false);
  });

  it('init that cannot reach the relay exits 1 without claiming success; profile set repairs it', async () => {
    const p = join(root, 'bob');
    const dead = `wss://127.0.0.1:${await closedPort()}`;
    const r = await parley('pw-b', 'init', '--profile', p, '--server', dead, ...creds('bob'));
    expect(r.code).toBe(1);
    expect(r.stdout).toBe(''); // no "profile created", no "registered"
    expect(r.stderr).toMatch(/^parley: not registered: cannot reach the relay \(/);
    expect(r.stderr).toContain(`not usable until it reaches the relay at ${dead}/ws`);
    expect(r.stderr).toContain(`parley profile set --profile ${p} --server wss://HOST:PORT`);

    // A wrong path and an empty call are refused and change nothing.
    const wrong = await parley('pw-b', 'profile', 'set', '--profile', p, '--server', `${bare}/x`);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("--server: the relay's endpoint is /ws");
    expect((await parley('pw-b', 'profile', 'set', '--profile', p)).stderr).toBe(
      'parley: give --server and/or --ca\n',
    );
    // A CA that did not certify this device is refused (mtls: it also checks peers).
    const other = join(root, 'other-ca');
    await initPki(other);
    const badCa = await parley(
      'pw-b',
      'profile',
      'set',
      '--profile',
      p,
      '--ca',
      join(other, 'pki', 'ca.crt'),
    );
    expect(badCa.code).toBe(1);
    expect(badCa.stderr).toMatch(/--ca: this device's certificate does not verify against it/);

    const fixed = await parley('pw-b', 'profile', 'set', '--profile', p, '--server', bare);
    expect(fixed.stderr).toBe('');
    expect(fixed.code).toBe(0);
    expect(fixed.stdout).toBe(`saved: bob (mtls) uses ${bare}/ws\nregistered with ${bare}/ws\n`);
    const s = await parley('pw-b', 'send', '--profile', p, 'alice', 'bob is here now');
    expect(s.code).toBe(0);
    const read = await parley('pw-a', 'read', '--profile', join(root, 'alice'));
    expect(read.stdout).toContain('bob: bob is here now');
  });

  it('profile set with a wrong passphrase fails and touches nothing', async () => {
    const p = join(root, 'alice');
    const before = readFileSync(join(p, 'store.db'));
    const r = await parley('nope', 'profile', 'set', '--profile', p, '--server', bare);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('parley: wrong passphrase for this profile\n');
    expect(readFileSync(join(p, 'store.db')).equals(before)).toBe(true);
  });
});
