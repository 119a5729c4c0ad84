import { readFileSync } from 'node:fs';
import { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { initPki, issueClient, readPkiFiles, revoke } from '@parley/pki';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';

/** Upper bound for one handshake attempt so a stuck test fails instead of hanging. */
const ATTEMPT_TIMEOUT_MS = 10_000;

interface Outcome {
  /** What the server wrote after a successful mutual-TLS handshake. */
  readonly received: string;
  readonly error?: string;
}

/** Connects with a client certificate; the server echoes `ok:CN` to authorised peers only. */
function attempt(
  port: number,
  caPem: string,
  certPem: string,
  keyPem: string,
  maxVersion?: tls.SecureVersion,
): Promise<Outcome> {
  return new Promise((resolve) => {
    let received = '';
    let error: string | undefined;
    const sock = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: caPem,
      cert: certPem,
      key: keyPem,
      ...(maxVersion ? { maxVersion } : {}),
    });
    const timer = setTimeout(() => sock.destroy(new Error('timeout')), ATTEMPT_TIMEOUT_MS);
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => (received += d));
    sock.on('error', (e) => (error = e.message));
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(error === undefined ? { received } : { received, error });
    });
  });
}

describe('mutual TLS 1.3 with CA-issued Ed25519 client certificates', () => {
  const t = tempDir('tls');
  const data = join(t.dir, 'data');
  let server: tls.Server;
  let port = 0;
  // Same settings but rejectUnauthorized false, so the reason OpenSSL gives is observable
  // (a strict Node server drops the socket without saying why).
  let reporter: tls.Server;
  let reporterPort = 0;
  let caPem = '';
  const serverErrors: string[] = [];
  const files = (dir: string, name: string) => ({
    cert: readFileSync(join(dir, `${name}.crt`), 'utf8'),
    key: readFileSync(join(dir, `${name}.key`), 'utf8'),
  });

  beforeAll(async () => {
    await initPki(data);
    await issueClient(data, 'alice', join(t.dir, 'alice'));
    await issueClient(data, 'bob', join(t.dir, 'bob'));
    await revoke(data, 'bob');
    await issueClient(data, 'carol', join(t.dir, 'carol'), {
      now: () => new Date(Date.now() - 30 * 86_400_000),
      validityDays: 2,
    });
    await initPki(join(t.dir, 'foreign'));
    await issueClient(join(t.dir, 'foreign'), 'alice', join(t.dir, 'mallory'));
    const pki = await readPkiFiles(data);
    caPem = pki.caPem;
    server = tls.createServer(
      {
        key: pki.serverKeyPem,
        cert: pki.serverCertPem,
        ca: pki.caPem,
        crl: pki.crlPem,
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.3',
      },
      (sock) => {
        const cn = sock.getPeerCertificate().subject?.CN ?? '?';
        sock.end(`ok:${String(cn)}:${String(sock.getProtocol())}`);
      },
    );
    server.on('tlsClientError', (e) => serverErrors.push(e.message));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
    reporter = tls.createServer(
      {
        key: pki.serverKeyPem,
        cert: pki.serverCertPem,
        ca: pki.caPem,
        crl: pki.crlPem,
        requestCert: true,
        rejectUnauthorized: false,
        minVersion: 'TLSv1.3',
      },
      (sock) =>
        sock.end(sock.authorized ? 'authorized' : `denied:${String(sock.authorizationError)}`),
    );
    await new Promise<void>((r) => reporter.listen(0, '127.0.0.1', r));
    reporterPort = (reporter.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    await new Promise<void>((r) => reporter.close(() => r()));
    t.cleanup();
  });

  it('an issued certificate completes the handshake and is identified by CN', async () => {
    const a = files(join(t.dir, 'alice'), 'alice');
    const r = await attempt(port, caPem, a.cert, a.key);
    expect(r.error).toBeUndefined();
    expect(r.received).toBe('ok:alice:TLSv1.3');
    expect((await attempt(reporterPort, caPem, a.cert, a.key)).received).toBe('authorized');
  });

  it('a revoked certificate is refused', async () => {
    const n = serverErrors.length;
    const b = files(join(t.dir, 'bob'), 'bob');
    const r = await attempt(port, caPem, b.cert, b.key);
    expect(r.received).toBe('');
    expect(serverErrors.length).toBeGreaterThan(n);
    expect((await attempt(reporterPort, caPem, b.cert, b.key)).received).toBe(
      'denied:CERT_REVOKED',
    );
  });

  it('an expired certificate is refused', async () => {
    const n = serverErrors.length;
    const c = files(join(t.dir, 'carol'), 'carol');
    const r = await attempt(port, caPem, c.cert, c.key);
    expect(r.received).toBe('');
    expect(serverErrors.length).toBeGreaterThan(n);
    expect((await attempt(reporterPort, caPem, c.cert, c.key)).received).toBe(
      'denied:CERT_HAS_EXPIRED',
    );
  });

  it('a certificate from a foreign CA (same CN) is refused', async () => {
    const n = serverErrors.length;
    const m = files(join(t.dir, 'mallory'), 'alice');
    const r = await attempt(port, caPem, m.cert, m.key);
    expect(r.received).toBe('');
    expect(serverErrors.length).toBeGreaterThan(n);
    expect((await attempt(reporterPort, caPem, m.cert, m.key)).received).toMatch(
      /^denied:(UNABLE_TO_GET_ISSUER_CERT_LOCALLY|UNABLE_TO_VERIFY_LEAF_SIGNATURE|CERT_SIGNATURE_FAILURE)$/,
    );
  });

  it('TLS 1.2 is refused even with a good certificate', async () => {
    const a = files(join(t.dir, 'alice'), 'alice');
    const r = await attempt(port, caPem, a.cert, a.key, 'TLSv1.2');
    expect(r.received).toBe('');
    expect(r.error).toBeDefined();
  });
});
