/**
 * The browser listener of an mtls relay (real TLS, real PKI): no client certificate in
 * the handshake, a certificate login inside the connection instead (hello, challenge,
 * cert.login). A good login is bound to its certificate like an mTLS session (relayed
 * mail both ways with an mTLS device, the certificate in the key directory, cut when
 * the CRL revokes it); a revoked, foreign, mismatched or badly signed login is refused
 * with its reason. The mTLS port keeps refusing certificate-less handshakes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { initPki, issueClient, revoke } from '@parley/pki';
import { authSignedData, type ServerFrame } from '@parley/wire';
import {
  TestClient,
  clientId,
  crypto,
  prekeyUpload,
  startHarness,
  until,
  type Credentials,
  type Harness,
} from './helpers.js';
import { resolveConfig } from '../src/index.js';

let h: Harness;
let browserUrl: string;

beforeAll(async () => {
  h = await startHarness({ config: { browser: { port: 0 }, web: { enabled: false } } });
  if (h.relay.browserPort === undefined) throw new Error('no browser listener');
  browserUrl = `wss://127.0.0.1:${h.relay.browserPort}/ws`;
});

afterAll(async () => {
  await h?.close();
});

const der = (pem: string): Uint8Array => new Uint8Array(new X509Certificate(pem).raw);

/** Connects to the browser listener with no client certificate and runs hello + challenge. */
async function challenged(): Promise<{
  c: TestClient;
  challenge: Extract<ServerFrame, { type: 'challenge' }>;
}> {
  const c = new TestClient(browserUrl, { ca: h.relay.caPem });
  await until(() => c.opened || c.closed, 'open');
  expect(c.opened).toBe(true);
  c.send({ type: 'hello', protocolVersions: [1], timestamp: Date.now() });
  return { c, challenge: await c.next('challenge') };
}

/** A `cert.login` for `name` with `certPem`, signed by `signer` (default: the credentials' key). */
async function certLogin(
  creds: Credentials,
  opts: { name?: string; certPem?: string; signer?: Credentials } = {},
): Promise<{ c: TestClient; answer: ServerFrame }> {
  const { c, challenge } = await challenged();
  const name = opts.name ?? creds.name;
  const timestamp = Date.now();
  const data = authSignedData({ purpose: 'login', challenge, name, deviceId: 1, timestamp });
  const signature = crypto.ed25519.sign((opts.signer ?? creds).identity.secretKey, data);
  c.send({
    type: 'cert.login',
    name,
    deviceId: 1,
    certificate: der(opts.certPem ?? creds.cert),
    timestamp,
    signature,
  });
  await until(() => c.has('welcome') || c.has('cert.refused') || c.closed, 'login answer');
  const answer = c.frames.find((f) => f.type === 'welcome' || f.type === 'cert.refused');
  if (!answer) throw new Error(`closed (${c.closeCode}) without an answer`);
  return { c, answer };
}

describe('mtls relay: browser listener with certificate login', () => {
  it('the mTLS port still refuses a TLS handshake without a client certificate', async () => {
    const c = new TestClient(h.relay.url, { ca: h.relay.caPem });
    await until(() => c.closed, 'refusal');
    expect(c.opened).toBe(false);
  });

  it('a certificate login is an mtls session: mail both ways with an mTLS device, certificate in the directory', async () => {
    const web = await h.credentials('webuser');
    const cli = await h.credentials('cliuser');
    const { c: browser, answer } = await certLogin(web);
    expect(answer).toMatchObject({ type: 'welcome', name: 'webuser', deviceId: 1 });
    const terminal = await TestClient.connect(h, cli);
    await terminal.hello();

    browser.send({
      type: 'send',
      clientMessageId: clientId(1),
      from: { name: 'webuser', deviceId: 1 },
      to: { name: 'cliuser', deviceId: 1 },
      payload: new Uint8Array([1, 2, 3]),
    });
    const toCli = await terminal.next('deliver');
    expect(toCli.from).toEqual({ name: 'webuser', deviceId: 1 });
    expect([...toCli.payload]).toEqual([1, 2, 3]);

    terminal.send({
      type: 'send',
      clientMessageId: clientId(2),
      from: { name: 'cliuser', deviceId: 1 },
      to: { name: 'webuser', deviceId: 1 },
      payload: new Uint8Array([4, 5]),
    });
    const toWeb = await browser.next('deliver');
    expect(toWeb.from).toEqual({ name: 'cliuser', deviceId: 1 });

    // Peers check the browser device's key against the CA through its certificate.
    browser.send(prekeyUpload(2, web.identity));
    await browser.next('prekeys.stored');
    terminal.send({ type: 'identity.lookup', requestId: 7, name: 'webuser' });
    const id = await terminal.next('identity.result');
    expect(id.certificate && [...id.certificate]).toEqual([...der(web.cert)]);
    expect([...id.identityKey]).toEqual([...web.identity.publicKey]);
    browser.close();
    terminal.close();
  });

  it('a revoked certificate: the live browser session is cut on CRL reload, a new login is refused as revoked', async () => {
    const creds = await h.credentials('webrevoked');
    const { c: live, answer } = await certLogin(creds);
    expect(answer.type).toBe('welcome');
    await revoke(join(h.dir, 'data'), 'webrevoked');
    await h.relay.reloadCrl();
    await live.waitClosed();
    const { c, answer: again } = await certLogin(creds);
    expect(again).toEqual({ type: 'cert.refused', reason: 'revoked' });
    await c.waitClosed();
    expect(
      h
        .audit()
        .some(
          (r) => r.type === 'auth.failed' && r.identity === 'webrevoked' && r.code === 'revoked',
        ),
    ).toBe(true);
  });

  it('refuses a foreign CA (untrusted), another name or key (mismatch), and frames before login', async () => {
    const other = mkdtempSync(join(tmpdir(), 'parley-foreign-'));
    try {
      await initPki(other);
      const f = await issueClient(other, 'intruder', join(other, 'out'));
      const own = await h.credentials('intruder');
      const foreign = await certLogin(own, { certPem: f.certPem });
      expect(foreign.answer).toEqual({ type: 'cert.refused', reason: 'untrusted' });
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
    const alice = await h.credentials('alice-b');
    const mallory = await h.credentials('mallory-b');
    // Mallory presents Alice's (public) certificate but can only sign with her own key.
    const stolen = await certLogin(alice, { signer: mallory });
    expect(stolen.answer).toEqual({ type: 'cert.refused', reason: 'mismatch' });
    // Her own certificate claimed for Alice's name.
    const renamed = await certLogin(mallory, { name: 'alice-b' });
    expect(renamed.answer).toEqual({ type: 'cert.refused', reason: 'mismatch' });

    const { c } = await challenged();
    c.send({ type: 'keys.lookup', requestId: 1, name: 'alice-b' });
    expect(await c.waitClosed()).toBe(1008);
    expect(c.has('keys.bundle')).toBe(false);
  });

  it('an open-mode login is not accepted on the browser listener', async () => {
    const creds = await h.credentials('openstyle');
    const { c, challenge } = await challenged();
    const r = await c.answer('login', creds.name, creds.identity, challenge).catch(() => undefined);
    expect(r?.type).not.toBe('welcome');
    expect(await c.waitClosed()).toBe(1008);
  });
});

describe('browser listener configuration', () => {
  it('is off by default, mtls only, and serves the web client unless told not to', () => {
    expect(resolveConfig({}).browser).toBeUndefined();
    const on = resolveConfig({ browser: { port: 8445 } });
    expect(on.browser).toEqual({ port: 8445, host: '127.0.0.1' });
    expect(on.web.enabled).toBe(true);
    expect(resolveConfig({}, { browserPort: 0 }).browser?.port).toBe(0);
    expect(() => resolveConfig({ auth: 'open', browser: { port: 8445 } })).toThrow(/"browser"/);
    expect(() => resolveConfig({ web: { enabled: true } })).toThrow(/browser\.port/);
  });
});
