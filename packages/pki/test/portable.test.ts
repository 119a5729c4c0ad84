/**
 * The portable entry (WebCrypto only, as in a browser): a CSR for a raw Ed25519 seed
 * that `signCsr` (the CA side) accepts, and the check of the certificate that comes
 * back: accepted for the right CA with the right key, refused for a foreign CA, outside
 * its validity, or when it is not a device certificate.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { webcrypto } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeviceCsr, checkDeviceCertificate } from '../src/portable.js';
import { initPki, readPkiFiles, signCsr } from '../src/index.js';

let dir: string;
let other: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'parley-pki-portable-'));
  other = mkdtempSync(join(tmpdir(), 'parley-pki-portable-other-'));
  await initPki(dir);
  await initPki(other);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(other, { recursive: true, force: true });
});

async function deviceKey(): Promise<{ seed: Uint8Array; pub: Uint8Array }> {
  const kp = (await webcrypto.subtle.generateKey({ name: 'Ed25519' }, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const jwk = await webcrypto.subtle.exportKey('jwk', kp.privateKey);
  return {
    seed: new Uint8Array(Buffer.from(jwk.d ?? '', 'base64url')),
    pub: new Uint8Array(Buffer.from(jwk.x ?? '', 'base64url')),
  };
}

describe('@parley/pki/portable', () => {
  it('a CSR for a raw seed is signed by the CA, and the certificate checks out for that key', async () => {
    const { seed, pub } = await deviceKey();
    const csr = await createDeviceCsr('webby', seed, pub);
    const issued = await signCsr(dir, csr);
    const { caPem } = await readPkiFiles(dir);
    const v = await checkDeviceCertificate({ cert: issued.certPem, caPem, now: new Date() });
    expect(v.name).toBe('webby');
    expect([...v.identityKey]).toEqual([...pub]);
    expect(v.serial).toBe(issued.serial);
    expect(v.caFingerprint).toMatch(/^[0-9a-f]{64}$/);
    // DER in, same answer.
    const again = await checkDeviceCertificate({ cert: v.der, caPem, now: new Date() });
    expect(again.serial).toBe(v.serial);
  });

  it('refuses a foreign CA, a time outside the validity, a CA certificate and a bad name', async () => {
    const { seed, pub } = await deviceKey();
    const issued = await signCsr(dir, await createDeviceCsr('checked', seed, pub));
    const { caPem } = await readPkiFiles(dir);
    const foreign = (await readPkiFiles(other)).caPem;
    await expect(
      checkDeviceCertificate({ cert: issued.certPem, caPem: foreign, now: new Date() }),
    ).rejects.toMatchObject({ code: 'untrusted' });
    const later = new Date(issued.notAfter.getTime() + 1000);
    await expect(
      checkDeviceCertificate({ cert: issued.certPem, caPem, now: later }),
    ).rejects.toMatchObject({ code: 'expired' });
    await expect(
      checkDeviceCertificate({ cert: caPem, caPem, now: new Date() }),
    ).rejects.toMatchObject({ code: 'bad_usage' });
    await expect(
      checkDeviceCertificate({ cert: 'not a certificate', caPem, now: new Date() }),
    ).rejects.toMatchObject({ code: 'malformed' });
    await expect(createDeviceCsr('Not Valid', seed, pub)).rejects.toMatchObject({
      code: 'bad_name',
    });
  });
});
