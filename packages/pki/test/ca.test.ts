import { spawnSync } from 'node:child_process';
import { X509Certificate, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { asEd25519SecretKey, createPortableCrypto } from '@parley/crypto';
import {
  defaultCaDir,
  resolvePkiPaths,
  PkiError,
  createCsr,
  createClientVerifier,
  ed25519SeedFromPkcs8Pem,
  generateDeviceKeyPem,
  initPki,
  issueClient,
  listCertificates,
  readPkiFiles,
  refreshCrl,
  revoke,
  signCsr,
  verifyClientCertificate,
} from '@parley/pki';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openssl, tempDir } from './helpers.js';

const DAY_MS = 86_400_000;

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    if (e instanceof PkiError) return e.code;
    throw e;
  }
  return 'no error';
}

function rawEd25519Public(certPem: string): Uint8Array {
  const jwk = createPublicKey(certPem).export({ format: 'jwk' });
  return new Uint8Array(Buffer.from(jwk.x ?? '', 'base64url'));
}

describe('private CA', () => {
  const t = tempDir('pki');
  const data = join(t.dir, 'data');
  const out = join(t.dir, 'out');
  const foreign = join(t.dir, 'foreign');

  beforeAll(async () => {
    await initPki(data, { serverNames: ['chat.example.org', '10.1.2.3'] });
    await initPki(foreign);
  });
  afterAll(() => t.cleanup());

  it('writes the CA files, private keys with mode 0600', async () => {
    const { paths } = await readPkiFiles(data);
    const ca = resolvePkiPaths(data);
    expect(ca.dir).toBe(defaultCaDir(data));
    // The default layout keeps the CA key out of the relay's folder.
    expect(existsSync(join(data, 'pki', 'ca.key'))).toBe(false);
    for (const f of [ca.caKey, paths.serverKey]) {
      expect(statSync(f).mode & 0o777).toBe(0o600);
    }
    for (const f of [paths.caCert, paths.serverCert, paths.crl]) {
      expect(statSync(f).isFile()).toBe(true);
    }
  });

  it('init is idempotent and never replaces an existing CA', async () => {
    const before = readFileSync(join(data, 'pki', 'ca.crt'), 'utf8');
    const keyBefore = readFileSync(join(defaultCaDir(data), 'ca.key'), 'utf8');
    const r = await initPki(data);
    expect(r.createdCa).toBe(false);
    expect(r.createdServer).toBe(false);
    expect(readFileSync(join(data, 'pki', 'ca.crt'), 'utf8')).toBe(before);
    expect(readFileSync(join(defaultCaDir(data), 'ca.key'), 'utf8')).toBe(keyBefore);
  });

  it('init reissues the relay certificate for new server names, keeping the CA', async () => {
    const dir = tempDir('names');
    try {
      const d = join(dir.dir, 'data');
      await initPki(d);
      const ca = readFileSync(join(d, 'pki', 'ca.crt'), 'utf8');
      const srv = readFileSync(join(d, 'pki', 'server.crt'), 'utf8');
      expect((await initPki(d, { serverNames: ['127.0.0.1', '::1'] })).createdServer).toBe(false);
      const r = await initPki(d, { serverNames: ['new.example.org', '0:0:0:0:0:0:0:1'] });
      expect(r.createdServer).toBe(true);
      expect(r.createdCa).toBe(false);
      expect(readFileSync(join(d, 'pki', 'ca.crt'), 'utf8')).toBe(ca);
      expect(readFileSync(join(d, 'pki', 'server.crt'), 'utf8')).not.toBe(srv);
      const text = openssl(['x509', '-in', join(d, 'pki', 'server.crt'), '-noout', '-text']).out;
      expect(text).toMatch(/DNS:new\.example\.org/);
      expect((await initPki(d, { serverNames: ['new.example.org'] })).createdServer).toBe(false);
      // Close to expiry it is renewed as well.
      const later = new Date(Date.now() + 810 * DAY_MS);
      expect((await initPki(d, { now: () => later })).createdServer).toBe(true);
    } finally {
      dir.cleanup();
    }
  });

  it('CA and server certificate are what openssl expects', () => {
    const ca = openssl(['x509', '-in', join(data, 'pki', 'ca.crt'), '-noout', '-text']);
    expect(ca.status).toBe(0);
    expect(ca.out).toMatch(/CA:TRUE, pathlen:0/);
    expect(ca.out).toMatch(/Certificate Sign, CRL Sign/);
    const srv = openssl(['x509', '-in', join(data, 'pki', 'server.crt'), '-noout', '-text']);
    expect(srv.out).toMatch(/DNS:localhost/);
    expect(srv.out).toMatch(/IP Address:127\.0\.0\.1/);
    expect(srv.out).toMatch(/DNS:chat\.example\.org/);
    expect(srv.out).toMatch(/IP Address:10\.1\.2\.3/);
    expect(srv.out).toMatch(/TLS Web Server Authentication/);
    const v = openssl([
      'verify',
      '-CAfile',
      join(data, 'pki', 'ca.crt'),
      '-purpose',
      'sslserver',
      join(data, 'pki', 'server.crt'),
    ]);
    expect(v.status).toBe(0);
  });

  it('issues an Ed25519 client certificate with CN, clientAuth and key usages', async () => {
    const alice = await issueClient(data, 'alice', out);
    expect(statSync(alice.keyPath).mode & 0o777).toBe(0o600);
    expect(readFileSync(alice.caPath, 'utf8')).toBe(
      readFileSync(join(data, 'pki', 'ca.crt'), 'utf8'),
    );
    const text = openssl(['x509', '-in', alice.certPath, '-noout', '-text']).out;
    expect(text).toMatch(/Subject: CN ?= ?alice/);
    expect(text).toMatch(/Public Key Algorithm: ED25519/);
    expect(text).toMatch(/TLS Web Client Authentication/);
    expect(text).toMatch(/Digital Signature, Key Encipherment/);
    expect(text).toMatch(/CA:FALSE/);
    const v = openssl([
      'verify',
      '-CAfile',
      join(data, 'pki', 'ca.crt'),
      '-crl_check',
      '-CRLfile',
      join(data, 'pki', 'crl.pem'),
      '-purpose',
      'sslclient',
      alice.certPath,
    ]);
    expect(v.out).toMatch(/OK/);
    expect(v.status).toBe(0);
  });

  it('the key file holds the identity seed whose public key the certificate attests', async () => {
    const bob = await issueClient(data, 'bob', out);
    const seed = ed25519SeedFromPkcs8Pem(readFileSync(bob.keyPath, 'utf8'));
    expect(seed.length).toBe(32);
    const pair = createPortableCrypto().ed25519.keyPairFromSecret(asEd25519SecretKey(seed));
    expect(Buffer.from(pair.publicKey)).toEqual(Buffer.from(rawEd25519Public(bob.certPem)));
    const { caPem, crlPem } = await readPkiFiles(data);
    const v = await verifyClientCertificate({
      certPem: bob.certPem,
      caPem,
      crlPem,
      now: new Date(),
    });
    expect(v.name).toBe('bob');
    expect(v.serial).toBe(bob.serial);
    expect(Buffer.from(v.identityKey)).toEqual(Buffer.from(pair.publicKey));
    expect(v.notAfter.getTime()).toBe(bob.notAfter.getTime());
  });

  it('rejects keys that are not Ed25519 PKCS#8', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    expect(await codeOf(() => ed25519SeedFromPkcs8Pem(pem))).toBe('bad_key');
    expect(await codeOf(() => ed25519SeedFromPkcs8Pem('garbage'))).toBe('bad_key');
  });

  it('signs a CSR for a key made by our helper and by openssl; the key stays put', async () => {
    const keyPem = await generateDeviceKeyPem();
    const csr = await createCsr('carol', keyPem);
    const carol = await signCsr(data, csr);
    expect(carol.name).toBe('carol');
    const pub = createPublicKey(keyPem).export({ format: 'jwk' }).x;
    expect(createPublicKey(carol.certPem).export({ format: 'jwk' }).x).toBe(pub);

    const dir = tempDir('csr');
    try {
      const k = join(dir.dir, 'dave.key');
      const r = join(dir.dir, 'dave.csr');
      expect(openssl(['genpkey', '-algorithm', 'ed25519', '-out', k]).status).toBe(0);
      expect(openssl(['req', '-new', '-key', k, '-subj', '/CN=dave', '-out', r]).status).toBe(0);
      const dave = await signCsr(data, readFileSync(r, 'utf8'));
      expect(dave.name).toBe('dave');
      const c = join(dir.dir, 'dave.crt');
      writeFileSync(c, dave.certPem);
      const v = openssl(['verify', '-CAfile', join(data, 'pki', 'ca.crt'), c]);
      expect(v.status).toBe(0);
      // The seed read from an openssl-made key yields the certified public key.
      const seed = ed25519SeedFromPkcs8Pem(readFileSync(k, 'utf8'));
      const pair = createPortableCrypto().ed25519.keyPairFromSecret(asEd25519SecretKey(seed));
      expect(Buffer.from(pair.publicKey)).toEqual(Buffer.from(rawEd25519Public(dave.certPem)));
      // The certificate's key is the device's own key: it matches dave.key's public half.
      expect(createPublicKey(dave.certPem).export({ format: 'jwk' }).x).toBe(
        createPublicKey(readFileSync(k, 'utf8')).export({ format: 'jwk' }).x,
      );
    } finally {
      dir.cleanup();
    }
  });

  it('refuses bad CSRs: non-Ed25519, invalid CN, tampered signature, garbage', async () => {
    const dir = tempDir('badcsr');
    try {
      const k = join(dir.dir, 'ec.key');
      const r = join(dir.dir, 'ec.csr');
      openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', k]);
      openssl(['req', '-new', '-key', k, '-subj', '/CN=erin', '-out', r]);
      expect(await codeOf(signCsr(data, readFileSync(r, 'utf8')))).toBe('bad_csr');
      const k2 = join(dir.dir, 'ed.key');
      const r2 = join(dir.dir, 'upper.csr');
      openssl(['genpkey', '-algorithm', 'ed25519', '-out', k2]);
      openssl(['req', '-new', '-key', k2, '-subj', '/CN=Not Valid', '-out', r2]);
      expect(await codeOf(signCsr(data, readFileSync(r2, 'utf8')))).toBe('bad_name');
      // Flip one byte inside the signed CSR body: the self-signature no longer verifies.
      const good = await createCsr('frank', await generateDeviceKeyPem());
      const der = Buffer.from(good.replace(/-----[^-]+-----|\s/g, ''), 'base64');
      der[der.length - 70] = (der[der.length - 70] ?? 0) ^ 0x01;
      const bad = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
      expect(await codeOf(signCsr(data, bad))).toBe('bad_csr');
      expect(await codeOf(signCsr(data, 'not a csr'))).toBe('bad_csr');
    } finally {
      dir.cleanup();
    }
  });

  it('validates names and requires an initialised CA', async () => {
    expect(await codeOf(issueClient(data, 'Alice', out))).toBe('bad_name');
    expect(await codeOf(issueClient(data, '-x', out))).toBe('bad_name');
    expect(await codeOf(issueClient(data, 'a'.repeat(65), out))).toBe('bad_name');
    expect(await codeOf(issueClient(join(t.dir, 'nowhere'), 'alice', out))).toBe('not_initialized');
    expect(await codeOf(revoke(data, 'nobody'))).toBe('not_found');
  });

  it('revocation: openssl, the verifier and the listing all see it', async () => {
    const gina = await issueClient(data, 'gina', join(t.dir, 'gina'));
    const serials = await revoke(data, 'gina', { reason: 'keyCompromise' });
    expect(serials).toEqual([gina.serial]);
    const v = openssl([
      'verify',
      '-CAfile',
      join(data, 'pki', 'ca.crt'),
      '-crl_check',
      '-CRLfile',
      join(data, 'pki', 'crl.pem'),
      gina.certPath,
    ]);
    expect(v.status).not.toBe(0);
    expect(v.out).toMatch(/certificate revoked/);
    const crlText = openssl(['crl', '-in', join(data, 'pki', 'crl.pem'), '-noout', '-text']).out;
    expect(crlText).toMatch(/Next Update/);
    expect(crlText).toMatch(/Key Compromise/);
    expect(crlText.toLowerCase()).toContain(gina.serial);

    const { caPem, crlPem } = await readPkiFiles(data);
    expect(
      await codeOf(
        verifyClientCertificate({ certPem: gina.certPem, caPem, crlPem, now: new Date() }),
      ),
    ).toBe('revoked');
    const rows = await listCertificates(data);
    const g = rows.find((r) => r.serial === gina.serial);
    expect(g?.revoked).toBe(true);
    expect(g?.revokedAt).toBeInstanceOf(Date);
    expect(rows.find((r) => r.name === 'alice')?.revoked).toBe(false);
    // A revoked name can be issued again; only the new serial is live.
    const again = await issueClient(data, 'gina', join(t.dir, 'gina2'));
    const { crlPem: crl2 } = await readPkiFiles(data);
    const ok = await verifyClientCertificate({
      certPem: again.certPem,
      caPem,
      crlPem: crl2,
      now: new Date(),
    });
    expect(ok.name).toBe('gina');
  });

  it('verifier rejects foreign CA, expired, not-yet-valid, wrong usage, bad CRL', async () => {
    const { caPem, crlPem, serverCertPem } = await readPkiFiles(data);
    const f = await readPkiFiles(foreign);
    const mallory = await issueClient(foreign, 'alice', join(t.dir, 'mallory'));
    expect(
      await codeOf(
        verifyClientCertificate({ certPem: mallory.certPem, caPem, crlPem, now: new Date() }),
      ),
    ).toBe('untrusted');

    // A CA made 20 days ago issued henry a one-day certificate 10 days ago.
    const pastData = join(t.dir, 'past');
    await initPki(pastData, { now: () => new Date(Date.now() - 20 * DAY_MS) });
    const past = await readPkiFiles(pastData);
    const start = new Date(Date.now() - 10 * DAY_MS);
    const old = await issueClient(pastData, 'henry', join(t.dir, 'henry'), {
      now: () => start,
      validityDays: 1,
    });
    const pastVerifier = await createClientVerifier({ caPem: past.caPem });
    expect(await codeOf(() => pastVerifier.verify({ certPem: old.certPem }, new Date()))).toBe(
      'expired',
    );
    expect(
      pastVerifier.verify({ certPem: old.certPem }, new Date(start.getTime() + 1000)).name,
    ).toBe('henry');
    expect(
      await codeOf(() =>
        pastVerifier.verify({ certPem: old.certPem }, new Date(start.getTime() - DAY_MS)),
      ),
    ).toBe('expired');
    const verifier = await createClientVerifier({ caPem, crlPem });

    expect(await codeOf(() => verifier.verify({ certPem: serverCertPem }, new Date()))).toBe(
      'bad_usage',
    );
    expect(await codeOf(() => verifier.verify({ certPem: caPem }, new Date()))).toBe('bad_usage');
    expect(
      await codeOf(() => verifier.verify({ certDer: new Uint8Array([1, 2, 3]) }, new Date())),
    ).toBe('malformed');
    // A CRL signed by another CA is refused outright.
    expect(await codeOf(createClientVerifier({ caPem, crlPem: f.crlPem }))).toBe('crl_invalid');
    // A CRL past its nextUpdate fails closed, as OpenSSL does in the handshake.
    const alice = readFileSync(join(out, 'alice.crt'), 'utf8');
    expect(
      await codeOf(() => verifier.verify({ certPem: alice }, new Date(Date.now() + 40 * DAY_MS))),
    ).toBe('crl_invalid');
    // Past the root's own lifetime nothing it signed is trusted.
    expect(
      await codeOf(() => verifier.verify({ certPem: alice }, new Date(Date.now() + 3700 * DAY_MS))),
    ).not.toBe('no error');
    // A certificate never outlives its root.
    const long = await issueClient(data, 'longlived', join(t.dir, 'long'), { validityDays: 3650 });
    expect(long.notAfter.getTime()).toBeLessThanOrEqual(
      Date.parse(new X509Certificate(caPem).validTo),
    );
    expect(long.notAfter.getTime()).toBeGreaterThan(Date.now() + 3000 * DAY_MS);
    // DER input works as well as PEM.
    const der = new Uint8Array(Buffer.from(alice.replace(/-----[^-]+-----|\s/g, ''), 'base64'));
    expect(verifier.verify({ certDer: der }, new Date()).name).toBe('alice');
  });

  it('refreshCrl re-signs only near nextUpdate, keeping the revoked entries', async () => {
    expect(await refreshCrl(data)).toBe(false);
    const later = new Date(Date.now() + 25 * DAY_MS);
    expect(await refreshCrl(data, { now: () => later })).toBe(true);
    const text = openssl(['crl', '-in', join(data, 'pki', 'crl.pem'), '-noout', '-text']).out;
    const next = /Next Update: (.+)/.exec(text)?.[1] ?? '';
    expect(Date.parse(next)).toBeGreaterThan(later.getTime() + 20 * DAY_MS);
    const revokedCount = (await listCertificates(data)).filter((r) => r.revoked).length;
    expect(revokedCount).toBeGreaterThan(0);
    expect((text.match(/Serial Number:/g) ?? []).length).toBe(revokedCount);
  });

  it('concurrent revocations and CRL refreshes lose no revocation (CA lock)', async () => {
    const who = ['kim', 'lee', 'max', 'ned', 'oli', 'pat'];
    const issued = await Promise.all(who.map((n) => issueClient(data, n, join(t.dir, 'many'))));
    await Promise.all([
      ...who.map((n) => revoke(data, n)),
      refreshCrl(data, { force: true }),
      refreshCrl(data, { force: true }),
    ]);
    const { caPem, crlPem } = await readPkiFiles(data);
    const verifier = await createClientVerifier({ caPem, crlPem });
    for (const c of issued) {
      expect(await codeOf(() => verifier.verify({ certPem: c.certPem }, new Date()))).toBe(
        'revoked',
      );
    }
    const rows = await listCertificates(data);
    for (const c of issued) expect(rows.find((r) => r.serial === c.serial)?.revoked).toBe(true);
  });

  it('a lock left by a crashed writer is broken once stale', async () => {
    const q = await issueClient(data, 'quinn', join(t.dir, 'quinn'));
    const lock = join(defaultCaDir(data), '.lock');
    mkdirSync(lock);
    const old = new Date(Date.now() - 60_000);
    utimesSync(lock, old, old);
    expect(await revoke(data, 'quinn')).toEqual([q.serial]);
  });

  it('a lock whose owner process is gone is broken at once (relay killed mid-operation)', async () => {
    const r = await issueClient(data, 'rosa', join(t.dir, 'rosa'));
    const lock = join(defaultCaDir(data), '.lock');
    mkdirSync(lock);
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    writeFileSync(join(lock, 'owner'), String(dead));
    expect(await revoke(data, 'rosa')).toEqual([r.serial]);
  });
});
