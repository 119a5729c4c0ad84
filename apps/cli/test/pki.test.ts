import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCsr, generateDeviceKeyPem } from '@parley/pki';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../src/main.js';

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

function opensslVerify(dir: string, cert: string): { status: number; out: string } {
  const r = spawnSync(
    'openssl',
    [
      'verify',
      '-CAfile',
      join(dir, 'pki', 'ca.crt'),
      '-crl_check',
      '-CRLfile',
      join(dir, 'pki', 'crl.pem'),
      cert,
    ],
    { encoding: 'utf8' },
  );
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

describe('parley pki', () => {
  const root = mkdtempSync(join(tmpdir(), 'parley-cli-pki-'));
  const data = join(root, 'data');
  afterEach(() => vi.restoreAllMocks());
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('init creates the CA files and is idempotent', async () => {
    const first = await parley('pki', 'init', '--data', data, '--server-name', 'relay.example');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/created CA: .*ca\.crt/);
    for (const f of ['ca.crt', 'server.crt', 'server.key', 'crl.pem']) {
      expect(statSync(join(data, 'pki', f)).isFile()).toBe(true);
    }
    // The CA key goes to the CA folder beside the data folder, never into DIR/pki.
    expect(existsSync(join(data, 'pki', 'ca.key'))).toBe(false);
    expect(first.stdout).toContain(`CA key: ${data}-ca/ca.key`);
    expect(statSync(join(`${data}-ca`, 'ca.key')).mode & 0o777).toBe(0o600);
    expect(first.stderr).not.toMatch(/warning/);
    const ca = readFileSync(join(data, 'pki', 'ca.crt'), 'utf8');
    const again = await parley('pki', 'init', '--data', data);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/existing CA kept/);
    expect(readFileSync(join(data, 'pki', 'ca.crt'), 'utf8')).toBe(ca);
  });

  it('issue writes NAME.crt, NAME.key (0600) and ca.crt that openssl accepts', async () => {
    const outDir = join(root, 'alice');
    const r = await parley('pki', 'issue', 'alice', '--data', data, '--out', outDir);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/issued alice serial [0-9a-f]{32}/);
    expect(statSync(join(outDir, 'alice.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(outDir, 'ca.crt'), 'utf8')).toBe(
      readFileSync(join(data, 'pki', 'ca.crt'), 'utf8'),
    );
    expect(opensslVerify(data, join(outDir, 'alice.crt')).status).toBe(0);
  });

  it('issue refuses to overwrite an existing device key unless --force', async () => {
    const ownData = join(root, 'erin-ca'); // own CA: later tests count the shared CA's certificates
    expect((await parley('pki', 'init', '--data', ownData)).code).toBe(0);
    const outDir = join(root, 'erin');
    expect((await parley('pki', 'issue', 'erin', '--data', ownData, '--out', outDir)).code).toBe(0);
    const key = readFileSync(join(outDir, 'erin.key'), 'utf8');
    const cert = readFileSync(join(outDir, 'erin.crt'), 'utf8');
    const listed = async () => (await parley('pki', 'list', '--data', ownData)).stdout;
    const before = await listed();
    const again = await parley('pki', 'issue', 'erin', '--data', ownData, '--out', outDir);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/erin\.key already exists/);
    expect(readFileSync(join(outDir, 'erin.key'), 'utf8')).toBe(key);
    expect(readFileSync(join(outDir, 'erin.crt'), 'utf8')).toBe(cert);
    expect(await listed()).toBe(before); // nothing issued by the refused call
    const forced = await parley(
      'pki',
      'issue',
      'erin',
      '--data',
      ownData,
      '--out',
      outDir,
      '--force',
    );
    expect(forced.code).toBe(0);
    expect(readFileSync(join(outDir, 'erin.key'), 'utf8')).not.toBe(key);
  });

  it('sign certifies a CSR into --out FILE', async () => {
    const csrFile = join(root, 'bob.csr');
    writeFileSync(csrFile, await createCsr('bob', await generateDeviceKeyPem()));
    const certFile = join(root, 'bob.crt');
    const r = await parley(
      'pki',
      'sign',
      csrFile,
      '--data',
      data,
      '--out',
      certFile,
      '--days',
      '30',
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/signed bob serial/);
    expect(opensslVerify(data, certFile).status).toBe(0);
  });

  it('revoke updates the CRL and list shows the status', async () => {
    const r = await parley('pki', 'revoke', 'alice', '--data', data, '--reason', 'keyCompromise');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/revoked alice serial/);
    const v = opensslVerify(data, join(root, 'alice', 'alice.crt'));
    expect(v.status).not.toBe(0);
    expect(v.out).toMatch(/certificate revoked/);

    const table = await parley('pki', 'list', '--data', data);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^NAME\s+SERIAL\s+NOT AFTER\s+STATUS/);
    expect(table.stdout).toMatch(/alice\s+[0-9a-f]{32}\s+\S+\s+revoked/);
    expect(table.stdout).toMatch(/bob\s+[0-9a-f]{32}\s+\S+\s+valid/);
    const json = await parley('pki', 'list', '--data', data, '--json');
    const rows = JSON.parse(json.stdout) as { name: string; status: string }[];
    expect(rows.map((x) => `${x.name}:${x.status}`).sort()).toEqual(['alice:revoked', 'bob:valid']);
  });

  it('fails clearly with a non-zero exit', async () => {
    const bad = await parley('pki', 'issue', 'Not-Valid', '--data', data, '--out', root);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/invalid name/);
    const none = await parley(
      'pki',
      'issue',
      'carol',
      '--data',
      join(root, 'empty'),
      '--out',
      root,
    );
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/no CA .*parley pki init/);
    const missing = await parley('pki', 'issue', 'carol', '--out', root);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/--data/);
    const unknown = await parley('pki', 'revoke', 'nobody', '--data', data);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/no unrevoked certificate for nobody/);
    const reason = await parley('pki', 'revoke', 'bob', '--data', data, '--reason', 'bored');
    expect(reason.code).not.toBe(0);
    expect(reason.stderr).toMatch(/--reason/);
    const days = await parley('pki', 'issue', 'dan', '--data', data, '--out', root, '--days', '0');
    expect(days.code).not.toBe(0);
    expect(days.stderr).toMatch(/--days/);
    const csr = await parley(
      'pki',
      'sign',
      join(root, 'alice', 'alice.crt'),
      '--data',
      data,
      '--out',
      join(root, 'x.crt'),
    );
    expect(csr.code).not.toBe(0);
    expect(csr.stderr).toMatch(/certificate request/);
  });

  it('has help text for each subcommand', async () => {
    const h = await parley('pki', '--help');
    for (const c of ['init', 'issue', 'sign', 'revoke', 'list']) expect(h.stdout).toContain(c);
    const hi = await parley('pki', 'issue', '--help');
    expect(hi.stdout).toMatch(/--out <OUTDIR>/);
  });
});
