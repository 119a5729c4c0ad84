/**
 * The client commands through `main()` against a real relay (mtls): init, send, read
 * [--json], contacts, verify [--mark-verified], and the error paths (wrong passphrase,
 * corrupt profile) that must fail clearly and touch nothing.
 */
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueClient, revoke } from '@parley/pki';
import { startRelay } from '@parley/server';
import type { RunningRelay } from '@parley/server';
import { parleyMain } from './cli-main.js';

const parley = parleyMain;

function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of readdirSync(dir).sort()) out[f] = readFileSync(join(dir, f)).toString('hex');
  return out;
}

describe('parley client commands', () => {
  const root = mkdtempSync(join(tmpdir(), 'parley-cli-client-'));
  const data = join(root, 'relay');
  const pa = join(root, 'alice');
  const pb = join(root, 'bob');
  let relay: RunningRelay;

  beforeAll(async () => {
    relay = await startRelay({ dataDir: data, port: 0, auth: 'mtls', logLevel: 'silent' });
    for (const n of ['alice', 'bob']) await issueClient(data, n, join(root, `creds-${n}`));
  });
  afterAll(async () => {
    await relay.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('init (mtls) creates the profile from the issued credentials and registers', async () => {
    for (const [n, p] of [
      ['alice', pa],
      ['bob', pb],
    ] as const) {
      const c = join(root, `creds-${n}`);
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
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`profile created for ${n} (mtls)`);
      expect(r.stdout).toContain('registered with');
    }
    const again = await parley(
      'pw-alice',
      'init',
      '--profile',
      pa,
      '--server',
      relay.url,
      '--name',
      'alice',
    );
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists/);
  });

  it('send prints the message id once queued; read shows it once; --json is one object per line', async () => {
    const s1 = await parley('pw-alice', 'send', '--profile', pa, 'bob', 'hello from the cli');
    expect(s1.code).toBe(0);
    expect(s1.stdout).toMatch(/^[0-9a-f]{32}\n$/);
    const s2 = await parley('pw-alice', 'send', '--profile', pa, 'bob', 'second line');
    expect(s2.code).toBe(0);
    const r1 = await parley('pw-bob', 'read', '--profile', pb, '--json');
    expect(r1.code).toBe(0);
    const lines = r1.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; from: string; text: string });
    expect(lines.map((l) => [l.from, l.text])).toEqual([
      ['alice', 'hello from the cli'],
      ['alice', 'second line'],
    ]);
    expect(lines[0]?.id).toBe(s1.stdout.trim());
    const r2 = await parley('pw-bob', 'read', '--profile', pb);
    expect(r2.code).toBe(0);
    expect(r2.stdout).toBe('');
  });

  it('contacts and verify: CA-attested, identical safety numbers on both sides, QR, mark verified', async () => {
    const c = await parley('pw-alice', 'contacts', '--profile', pa);
    expect(c.stdout).toMatch(/^bob\s+ca-attested\s+key certified by your organisation CA/m);
    const va = await parley('pw-alice', 'verify', '--profile', pa, 'bob');
    const vb = await parley('pw-bob', 'verify', '--profile', pb, 'alice');
    expect(va.code).toBe(0);
    const digits = (s: string): string => (s.match(/^(\d{5} \d{5} \d{5})$/gm) ?? []).join(' ');
    expect(digits(va.stdout)).toMatch(/^(\d{5} ){11}\d{5}$/);
    expect(digits(va.stdout)).toBe(digits(vb.stdout));
    expect(va.stdout).toMatch(/[▄▀█]{10}/); // the QR code
    const mark = await parley('pw-alice', 'verify', '--profile', pa, 'bob', '--mark-verified');
    expect(mark.stdout).toContain('bob marked as verified');
    expect((await parley('pw-alice', 'contacts', '--profile', pa)).stdout).toMatch(
      /^bob\s+verified/m,
    );
  });

  it('wrong passphrase: clear error, non-zero exit, profile untouched', async () => {
    const before = snapshot(pa);
    const r = await parley('not the passphrase', 'read', '--profile', pa);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('parley: wrong passphrase for this profile\n');
    expect(snapshot(pa)).toEqual(before);
  });

  it('corrupt profile: clear error, non-zero exit, bytes kept', async () => {
    const copy = join(root, 'alice-copy');
    cpSync(pa, copy, { recursive: true });
    const db = join(copy, 'store.db');
    const bytes = readFileSync(db);
    bytes.fill(0x41, 0, 4096);
    writeFileSync(db, bytes);
    const r = await parley('pw-alice', 'contacts', '--profile', copy);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^parley: store .* is damaged\n$/);
    expect(readFileSync(db).equals(bytes)).toBe(true);
    // The original is unaffected.
    expect((await parley('pw-alice', 'contacts', '--profile', pa)).code).toBe(0);
  });

  it('revoked certificate: read and send fail clearly, the profile keeps its history', async () => {
    await revoke(data, 'bob');
    await relay.reloadCrl();
    const r = await parley('pw-bob', 'read', '--profile', pb);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /parley: the relay refused our certificate \(revoked, expired or not from its CA\)/,
    );
    const s = await parley('pw-bob', 'send', '--profile', pb, 'alice', 'after revocation');
    expect(s.code).toBe(1);
    const c = await parley('pw-bob', 'contacts', '--profile', pb);
    expect(c.code).toBe(0);
    expect(c.stdout).toMatch(/^alice\s+ca-attested/m);
  });

  it('open mode: init --name registers by challenge; send, read and TOFU contacts work', async () => {
    const odata = join(root, 'relay-open');
    const open = await startRelay({ dataDir: odata, port: 0, auth: 'open', logLevel: 'silent' });
    try {
      const caFile = join(root, 'open-ca.crt');
      writeFileSync(caFile, open.caPem);
      const pc = join(root, 'carol');
      const pd = join(root, 'dave');
      for (const [n, p] of [
        ['carol', pc],
        ['dave', pd],
      ] as const) {
        const r = await parley(
          `pw-${n}`,
          'init',
          '--profile',
          p,
          '--server',
          open.url,
          '--name',
          n,
          '--ca',
          caFile,
        );
        expect(r.stderr).toBe('');
        expect(r.stdout).toContain(`profile created for ${n} (open)`);
      }
      const s = await parley('pw-carol', 'send', '--profile', pc, 'dave', 'open mode hello');
      expect(s.code).toBe(0);
      const r = await parley('pw-dave', 'read', '--profile', pd);
      expect(r.stdout).toMatch(
        /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d\d:\d\d\] carol: open mode hello\n$/,
      );
      expect((await parley('pw-dave', 'contacts', '--profile', pd)).stdout).toMatch(
        /^carol\s+unverified\s+not verified \(trusted on first use\)/m,
      );
      // Someone else claiming carol's name with another key is refused.
      const thief = await parley(
        'pw-x',
        'init',
        '--profile',
        join(root, 'carol2'),
        '--server',
        open.url,
        '--name',
        'carol',
        '--ca',
        caFile,
      );
      expect(thief.code).toBe(1);
      expect(thief.stderr).toContain(
        'the relay refused to register carol (the name may be taken); no profile was kept',
      );
      expect(existsSync(join(root, 'carol2'))).toBe(false);
      const unknown = await parley('pw-carol', 'send', '--profile', pc, 'nobody', 'hi');
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toMatch(/nobody: unknown to the relay, or has not published keys yet/);
    } finally {
      await open.close();
    }
  });
});
