/**
 * One identity per name, renewal of the same key, revocation by serial, and a CA key
 * that may be kept away from the relay (issue 9 §2, §3).
 */
import { createPublicKey } from 'node:crypto';
import { cpSync, existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  PkiError,
  createClientVerifier,
  createCsr,
  defaultCaDir,
  generateDeviceKeyPem,
  initPki,
  issueClient,
  listCertificates,
  refreshCrl,
  renew,
  revokeSerial,
  signCsr,
} from '@parley/pki';
import { afterAll, describe, expect, it } from 'vitest';
import { openssl, tempDir } from './helpers.js';

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof PkiError) return e.code;
    throw e;
  }
  return 'no error';
}

const keyOf = (pem: string): string =>
  createPublicKey(pem).export({ format: 'der', type: 'spki' }).toString('hex');

describe('one valid certificate per name', () => {
  const t = tempDir('pki-life');
  afterAll(() => t.cleanup());
  const data = join(t.dir, 'data');

  it('refuses a second issue or sign for a valid name; --replace revokes the old one', async () => {
    await initPki(data);
    const first = await issueClient(data, 'bob', join(t.dir, 'bob1'));
    expect(await codeOf(issueClient(data, 'bob', join(t.dir, 'bob2')))).toBe('exists');
    const csr = await createCsr('bob', await generateDeviceKeyPem());
    expect(await codeOf(signCsr(data, csr))).toBe('exists');
    // Nothing was issued by the refused calls.
    expect((await listCertificates(data)).filter((c) => c.name === 'bob')).toHaveLength(1);

    const second = await issueClient(data, 'bob', join(t.dir, 'bob2'), { replace: true });
    expect(second.replaced).toEqual([first.serial]);
    const rows = await listCertificates(data);
    expect(rows.find((r) => r.serial === first.serial)?.revoked).toBe(true);
    expect(rows.find((r) => r.serial === second.serial)?.revoked).toBe(false);
    const crlPem = readFileSync(join(data, 'pki', 'crl.pem'), 'utf8');
    const caPem = readFileSync(join(data, 'pki', 'ca.crt'), 'utf8');
    const v = await createClientVerifier({ caPem, crlPem });
    expect(() => v.verify({ certPem: first.certPem }, new Date())).toThrow(/revoked/);
    expect(v.verify({ certPem: second.certPem }, new Date()).name).toBe('bob');
    // The library-only override models a CA that does not keep the rule.
    const dup = await issueClient(data, 'bob', join(t.dir, 'bob3'), { allowDuplicate: true });
    expect(dup.replaced).toEqual([]);
    const live = (await listCertificates(data)).filter((c) => c.name === 'bob' && !c.revoked);
    expect(live.map((c) => c.serial).sort()).toEqual([second.serial, dup.serial].sort());
  });

  it('revokes by serial and renews the same key', async () => {
    const carol = await issueClient(data, 'carol', join(t.dir, 'carol'));
    const renewed = await renew(data, 'carol', { validityDays: 30 });
    expect(renewed.serial).not.toBe(carol.serial);
    expect(keyOf(renewed.certPem)).toBe(keyOf(carol.certPem));
    expect(await revokeSerial(data, carol.serial.toUpperCase())).toBe('carol');
    expect(await codeOf(revokeSerial(data, carol.serial))).toBe('not_found');
    const rows = await listCertificates(data);
    expect(rows.find((r) => r.serial === carol.serial)?.revoked).toBe(true);
    expect(rows.find((r) => r.serial === renewed.serial)?.revoked).toBe(false);
    expect(await codeOf(renew(data, 'nobody'))).toBe('not_found');
  });
});

describe('the CA key kept offline', () => {
  const t = tempDir('pki-offline');
  afterAll(() => t.cleanup());

  it('init with ca.key removed keeps ca.crt byte-identical and reports the key offline', async () => {
    const data = join(t.dir, 'data');
    await initPki(data);
    const caCrt = join(data, 'pki', 'ca.crt');
    const before = readFileSync(caCrt);
    rmSync(join(defaultCaDir(data), 'ca.key'));
    const r = await initPki(data);
    expect(r.createdCa).toBe(false);
    expect(r.caKeyOffline).toBe(true);
    expect(readFileSync(caCrt).equals(before)).toBe(true);
    expect(existsSync(join(data, 'pki', 'ca.key'))).toBe(false);
    expect(existsSync(join(defaultCaDir(data), 'ca.key'))).toBe(false);
    expect(await refreshCrl(data, { force: true })).toBe(false);
    expect(await codeOf(issueClient(data, 'dave', join(t.dir, 'dave')))).toBe('ca_offline');
    // Listing needs only the certificate.
    expect(await listCertificates(data)).toEqual([]);
  });

  it('with --ca-dir the relay folder gets only public pieces and its own credentials', async () => {
    const data = join(t.dir, 'relay');
    const caDir = join(t.dir, 'admin-ca');
    const r = await initPki(data, { caDir });
    expect(r.createdCa).toBe(true);
    expect(existsSync(join(caDir, 'ca.key'))).toBe(true);
    expect(existsSync(join(data, 'pki', 'ca.key'))).toBe(false);
    for (const f of ['ca.crt', 'crl.pem', 'server.crt', 'server.key']) {
      expect(existsSync(join(data, 'pki', f))).toBe(true);
    }
    const erin = await issueClient(undefined, 'erin', join(t.dir, 'erin'), { caDir });
    expect(existsSync(join(caDir, 'issued', `${erin.serial}.crt`))).toBe(true);
    await revokeSerial(data, erin.serial, { caDir });
    const crl = join(data, 'pki', 'crl.pem');
    expect(readFileSync(crl, 'utf8')).toBe(readFileSync(join(caDir, 'crl.pem'), 'utf8'));
    const check = openssl([
      'verify',
      '-CAfile',
      join(data, 'pki', 'ca.crt'),
      '-crl_check',
      '-CRLfile',
      crl,
      join(t.dir, 'erin', 'erin.crt'),
    ]);
    expect(check.out).toMatch(/revoked/);
    // The relay folder restarts without the CA (as the relay does, from DATA/pki alone);
    // a foreign CA is never installed over it, and none is made in the default folder.
    expect((await initPki(data, { caDir: join(data, 'pki') })).caKeyOffline).toBe(true);
    expect(await codeOf(initPki(data, { caDir: join(t.dir, 'other-ca') }))).toBe('exists');
    expect(await codeOf(initPki(data))).toBe('exists');
    expect(existsSync(join(defaultCaDir(data), 'ca.crt'))).toBe(false);
  });

  it('by default the CA is in DIR-ca beside DIR; DIR/pki gets ca.crt, server credentials and crl.pem only', async () => {
    const data = join(t.dir, 'plain');
    const r = await initPki(data);
    expect(r.paths.dir).toBe(`${data}-ca`);
    expect(readdirSync(join(data, 'pki')).sort()).toEqual([
      'ca.crt',
      'crl.pem',
      'server.crt',
      'server.key',
    ]);
    expect(existsSync(join(data, 'pki', 'ca.key'))).toBe(false);
    expect(existsSync(join(`${data}-ca`, 'ca.key'))).toBe(true);
    // With only the data folder, the CA commands find the CA beside it.
    const fay = await issueClient(data, 'fay', join(t.dir, 'fay'));
    expect(existsSync(join(`${data}-ca`, 'issued', `${fay.serial}.crt`))).toBe(true);
    await revokeSerial(data, fay.serial);
    expect(readFileSync(join(data, 'pki', 'crl.pem'), 'utf8')).toBe(
      readFileSync(join(`${data}-ca`, 'crl.pem'), 'utf8'),
    );
    expect((await listCertificates(data)).map((c) => [c.name, c.revoked])).toEqual([['fay', true]]);
  });

  it('an older data folder with ca.key in DIR/pki keeps using it there', async () => {
    const data = join(t.dir, 'older');
    await initPki(data);
    // Recreate the former single-folder layout: the whole CA inside DIR/pki.
    cpSync(`${data}-ca`, join(data, 'pki'), { recursive: true });
    rmSync(`${data}-ca`, { recursive: true });
    const r = await initPki(data);
    expect(r.createdCa).toBe(false);
    expect(r.caKeyOffline).toBe(false);
    expect(r.paths.dir).toBe(join(data, 'pki'));
    const gil = await issueClient(data, 'gil', join(t.dir, 'gil'));
    expect(existsSync(join(data, 'pki', 'issued', `${gil.serial}.crt`))).toBe(true);
    expect(existsSync(`${data}-ca`)).toBe(false);
  });
});
