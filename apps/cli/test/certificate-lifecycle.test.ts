/**
 * Certificates over a device's life, through the real commands and a real mtls relay
 * (issue 9 §2): renewal keeps the identity and safety number, the client warns before
 * expiry, a key made inside the profile is enrolled by CSR, a revoked contact is shown
 * revoked and not written to, and a revoked user's own client says so and stops.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createNodeCrypto } from '@parley/crypto/node';
import { issueClient } from '@parley/pki';
import { loadOrCreateAuditKey, startRelay, verifyAuditLog } from '@parley/server';
import type { AuditRecord, RunningRelay } from '@parley/server';
import { main } from '../src/main.js';
import { killAll, parley as spawnParley, until } from './cli-process.js';

const PASSPHRASE = 'pw-lifecycle';
const DAY_MS = 86_400_000;

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `parley ...args` in-process, capturing what it prints. */
async function parley(...args: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    const code = await main(['node', 'parley', ...args]);
    return { code, stdout, stderr };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

/** The safety number digits `parley verify` prints (the QR code after them is left out). */
async function digits(profile: string, peer: string): Promise<string> {
  const r = await parley('verify', '--profile', profile, peer);
  expect(r.code).toBe(0);
  const lines = r.stdout.split('\n');
  return lines.slice(1, 4).join('\n');
}

describe('certificate lifecycle', () => {
  const root = mkdtempSync(join(tmpdir(), 'parley-cli-certs-'));
  const data = join(root, 'relay');
  const profile = (n: string): string => join(root, `profile-${n}`);
  let relay: RunningRelay;
  const before = process.env['PARLEY_PASSPHRASE'];

  beforeAll(async () => {
    process.env['PARLEY_PASSPHRASE'] = PASSPHRASE;
    relay = await startRelay({ dataDir: data, port: 0, auth: 'mtls', logLevel: 'silent' });
  });
  afterAll(async () => {
    killAll();
    await relay.close();
    if (before === undefined) delete process.env['PARLEY_PASSPHRASE'];
    else process.env['PARLEY_PASSPHRASE'] = before;
    rmSync(root, { recursive: true, force: true });
  });

  const audit = (): AuditRecord[] => {
    const crypto = createNodeCrypto();
    const v = verifyAuditLog(
      readFileSync(relay.paths.auditLog, 'utf8'),
      loadOrCreateAuditKey(relay.paths.auditKey, crypto),
      crypto,
    );
    if (!v.ok) throw new Error(`audit log does not verify at ${v.line}: ${v.reason}`);
    return v.records;
  };

  async function enrol(
    name: string,
    opts: Parameters<typeof issueClient>[3] = {},
  ): Promise<string> {
    const creds = join(root, `creds-${name}`);
    const f = await issueClient(data, name, creds, opts);
    const r = await parley(
      'init',
      '--profile',
      profile(name),
      '--server',
      relay.url,
      '--cert',
      f.certPath,
      '--key',
      f.keyPath,
      '--ca',
      f.caPath,
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return f.serial;
  }

  it('renew keeps the safety number; the client warns before expiry and not after renewal', async () => {
    await enrol('alice');
    // bob's certificate has 20 days left.
    const past = Date.now() - 345 * DAY_MS;
    const oldSerial = await enrol('bob', { now: () => new Date(past), validityDays: 365 });
    expect((await parley('send', '--profile', profile('alice'), 'bob', 'hi')).code).toBe(0);
    const read = await parley('read', '--profile', profile('bob'));
    expect(read.stdout).toContain('alice: hi');
    expect(read.stderr).toMatch(/your certificate expires in 2\d days/);
    const aliceSees = await digits(profile('alice'), 'bob');
    const bobSees = await digits(profile('bob'), 'alice');

    const renewed = join(root, 'bob-renewed.crt');
    const r = await parley('pki', 'renew', 'bob', '--data', data, '--out', renewed);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('(same key)');
    const installed = await parley(
      'profile',
      'renew-cert',
      '--profile',
      profile('bob'),
      '--cert',
      renewed,
    );
    expect(installed.stderr).toBe('');
    expect(installed.code).toBe(0);
    // Another account's certificate is refused and changes nothing.
    const wrong = await parley(
      'profile',
      'renew-cert',
      '--profile',
      profile('alice'),
      '--cert',
      renewed,
    );
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/is for bob, not alice/);

    // The old certificate is revoked: only the renewed one can still connect.
    expect((await parley('pki', 'revoke', '--serial', oldSerial, '--data', data)).code).toBe(0);
    await relay.reloadCrl();
    const sent = await parley('send', '--profile', profile('bob'), 'alice', 'renewed');
    expect(sent.stderr).not.toMatch(/certificate (expires|expired)/);
    expect(sent.code).toBe(0);
    // alice's CRL lists bob's old serial; a lookup finds his renewed certificate instead.
    const back = await parley('send', '--profile', profile('alice'), 'bob', 'still you');
    expect(back.stderr).not.toMatch(/revoked|refused/);
    expect(back.code).toBe(0);
    expect((await parley('read', '--profile', profile('bob'))).stdout).toContain(
      'alice: still you',
    );

    expect(await digits(profile('alice'), 'bob')).toBe(aliceSees);
    expect(await digits(profile('bob'), 'alice')).toBe(bobSees);
    const contacts = await parley('contacts', '--profile', profile('alice'));
    expect(contacts.stdout).toMatch(/bob\s+ca-attested/);
    // Same key: the relay kept bob's identity (no replacement).
    expect(audit().some((x) => x.type === 'identity.replaced')).toBe(false);
  });

  it('keygen makes the key inside the profile; pki sign + init finish it', async () => {
    const csr = join(root, 'erin.csr');
    const k = await parley(
      'keygen',
      '--profile',
      profile('erin'),
      '--name',
      'erin',
      '--server',
      relay.url,
      '--csr',
      csr,
    );
    expect(k.code).toBe(0);
    // Not usable before the certificate is in.
    const early = await parley('send', '--profile', profile('erin'), 'alice', 'x');
    expect(early.code).toBe(1);
    expect(early.stderr).toMatch(/no certificate yet/);
    const cert = join(root, 'erin.crt');
    expect((await parley('pki', 'sign', csr, '--data', data, '--out', cert)).code).toBe(0);
    const fin = await parley(
      'init',
      '--profile',
      profile('erin'),
      '--server',
      relay.url,
      '--cert',
      cert,
      '--ca',
      join(data, 'pki', 'ca.crt'),
    );
    expect(fin.stderr).toBe('');
    expect(fin.code).toBe(0);
    expect(fin.stdout).toContain('registered with');
    expect((await parley('send', '--profile', profile('erin'), 'alice', 'from erin')).code).toBe(0);
    expect((await parley('read', '--profile', profile('alice'))).stdout).toContain(
      'erin: from erin',
    );
  });

  it('a revoked contact is shown revoked and not written to; the revoked user is told and stops', async () => {
    await enrol('carol');
    const daveSerial = await enrol('dave');
    expect((await parley('send', '--profile', profile('carol'), 'dave', 'hello')).code).toBe(0);

    // dave follows his messages in a real process.
    const follow = spawnParley('read', '--profile', profile('dave'), '--follow');
    await until(() => follow.out.includes('carol: hello') || follow.code != null, 'dave reads');
    expect(follow.out).toContain('carol: hello');

    expect((await parley('pki', 'revoke', 'dave', '--data', data)).code).toBe(0);
    await relay.reloadCrl();
    await until(() => follow.code != null, 'dave follow exits', 20_000);
    expect(follow.code).toBe(1);
    expect(follow.err).toMatch(/your certificate was revoked/);
    expect(follow.err).not.toMatch(/reconnecting/);

    // Later commands say so at once, without trying the relay again.
    const refusalsBefore = audit().filter((r) => r.type === 'tls.rejected').length;
    const again = await parley('send', '--profile', profile('dave'), 'carol', 'anyone?');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/your certificate was revoked/);
    expect(audit().filter((r) => r.type === 'tls.rejected')).toHaveLength(refusalsBefore);

    const refused = await parley('send', '--profile', profile('carol'), 'dave', 'are you there');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      new RegExp(`dave's certificate was revoked .*serial ${daveSerial}`),
    );
    const contacts = await parley('contacts', '--profile', profile('carol'));
    expect(contacts.stdout).toMatch(/dave\s+revoked\s+certificate revoked/);
    expect(
      new X509Certificate(
        readFileSync(join(root, 'creds-dave', 'dave.crt')),
      ).serialNumber.toLowerCase(),
    ).toBe(daveSerial);
  });
});
