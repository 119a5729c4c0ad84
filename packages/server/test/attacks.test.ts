/**
 * The attack suite (M41 server side, issue 4): each attack is closed or dropped as
 * designed, leaves an audit record, and a bystander keeps being served.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initPki, issueClient, revoke } from '@parley/pki';
import { encodeFrame, frameToBlocks } from '@parley/wire';
import { readFileSync } from 'node:fs';
import {
  clientId,
  startHarness,
  TestClient,
  until,
  type Credentials,
  type Harness,
} from './helpers.js';

let h: Harness;
let bystander: TestClient;

beforeAll(async () => {
  h = await startHarness({
    auth: 'mtls',
    config: {
      limits: {
        handshakeTimeoutMs: 300,
        idleTimeoutMs: 900,
        maxConnectionsPerIdentity: 2,
      },
      rateLimit: { maxBlocksPerConnection: 50, maxBlocksPerIdentity: 100 },
    },
  });
  bystander = await TestClient.connect(h, await h.credentials('bystander'));
  await bystander.hello();
});
afterAll(async () => {
  bystander.close();
  await h.close();
});

/** The bystander still gets answers: the attack did not take the relay down. */
async function stillServed(): Promise<void> {
  const ts = Date.now();
  bystander.send({ type: 'ping', timestamp: ts });
  let pong;
  do pong = await bystander.next('pong');
  while (pong.timestamp !== ts);
  expect(bystander.closed).toBe(false);
}

const audited = (type: string, code?: string): boolean =>
  h.audit().some((r) => r.type === type && (code === undefined || r.code === code));

async function authed(name: string): Promise<TestClient> {
  const c = await TestClient.connect(h, await h.credentials(name));
  await c.hello();
  return c;
}

const block = (fill: (b: Uint8Array) => void): Uint8Array => {
  const b = new Uint8Array(4096);
  fill(b);
  return b;
};

describe('attacks on the message layer', () => {
  it('oversize message: closed before parsing (1009), audited', async () => {
    const c = await authed('big');
    c.sendRaw(new Uint8Array(1024 * 1024));
    expect(await c.waitClosed()).toBe(1009);
    await until(() => audited('frame.oversize'), 'audit');
    await stillServed();
  });

  it('wrong-size message: closed (1008), audited with its size', async () => {
    const c = await authed('small');
    c.sendRaw(new Uint8Array(100));
    expect(await c.waitClosed()).toBe(1008);
    expect(h.audit().some((r) => r.type === 'frame.wrong-size' && r.value === 100)).toBe(true);
    await stillServed();
  });

  it('text message: closed (1003), audited', async () => {
    const c = await authed('texter');
    c.sendRaw('x'.repeat(4096));
    expect(await c.waitClosed()).toBe(1003);
    expect(audited('frame.text', 'BLOCK_NOT_BINARY')).toBe(true);
    await stillServed();
  });

  it('garbage block: closed (1008), audited as malformed', async () => {
    const c = await authed('garbage');
    c.sendRaw(block((b) => crypto.getRandomValues(b)));
    expect(await c.waitClosed()).toBe(1008);
    expect(audited('frame.malformed')).toBe(true);
    await stillServed();
  });

  it('malformed frames in well-formed blocks: unknown type, truncated fields', async () => {
    const unknown = await authed('malformed1');
    const [b1] = frameToBlocks(new Uint8Array([0x3e, 1, 2, 3]), { streamId: 1 });
    unknown.sendRaw(b1 as Uint8Array);
    expect(await unknown.waitClosed()).toBe(1008);
    expect(audited('frame.malformed', 'FRAME_UNKNOWN_TYPE')).toBe(true);

    const truncated = await authed('malformed2');
    const full = encodeFrame({
      type: 'send',
      clientMessageId: clientId(1),
      from: { name: 'malformed2', deviceId: 1 },
      to: { name: 'bystander', deviceId: 1 },
      payload: new Uint8Array(50),
    });
    const [b2] = frameToBlocks(full.subarray(0, full.length - 10), { streamId: 1 });
    truncated.sendRaw(b2 as Uint8Array);
    expect(await truncated.waitClosed()).toBe(1008);
    expect(audited('frame.malformed', 'FRAME_TRUNCATED')).toBe(true);
    expect(bystander.has('deliver')).toBe(false);
    await stillServed();
  });

  it('a frame from the wrong direction is refused', async () => {
    const c = await authed('direction');
    const [b] = frameToBlocks(encodeFrame({ type: 'mailbox.empty' }), { streamId: 1 });
    c.sendRaw(b as Uint8Array);
    expect(await c.waitClosed()).toBe(1008);
    expect(audited('frame.malformed', 'FRAME_WRONG_DIRECTION')).toBe(true);
  });

  it('flood: more blocks than the window allows closes the connection (1008), audited', async () => {
    const c = await authed('flooder');
    for (let i = 0; i < 200 && !c.closed; i++) c.send({ type: 'ping', timestamp: Date.now() });
    expect(await c.waitClosed()).toBe(1008);
    expect(audited('rate.flood', 'connection-blocks')).toBe(true);
    await stillServed();
  });

  it('spoofed sender: dropped silently and audited (connection stays)', async () => {
    const c = await authed('spoofer');
    c.send({
      type: 'send',
      clientMessageId: clientId(5),
      from: { name: 'bystander', deviceId: 1 },
      to: { name: 'bystander', deviceId: 1 },
      payload: new Uint8Array(3),
    });
    c.send({ type: 'ping', timestamp: Date.now() });
    await c.next('pong');
    expect(c.has('receipt') || c.has('error')).toBe(false);
    expect(h.audit().some((r) => r.type === 'sender.spoofed' && r.identity === 'spoofer')).toBe(
      true,
    );
    expect(bystander.has('deliver')).toBe(false);
    c.close();
  });

  it('too many connections for one identity: refused (1013), audited', async () => {
    const creds = await h.credentials('greedy');
    const cs: TestClient[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await TestClient.connect(h, creds);
      c.send({ type: 'hello', protocolVersions: [1], timestamp: Date.now() });
      cs.push(c);
    }
    await cs[0]?.next('welcome');
    await cs[1]?.next('welcome');
    expect((await cs[2]?.next('error'))?.code).toBe('rate_limited');
    expect(await cs[2]?.waitClosed()).toBe(1013);
    expect(audited('conn.cap', 'per-identity')).toBe(true);
    for (const c of cs) c.close();
  });

  it('idle connection that ignores pings is closed; one that answers stays', async () => {
    const idle = await authed('sleepy');
    idle.answerPings = false;
    const awake = await authed('awake');
    expect(await idle.waitClosed()).toBe(1008);
    expect(audited('conn.idle')).toBe(true);
    expect(awake.closed).toBe(false);
    awake.close();
  });
});

describe('attacks on the TLS layer', () => {
  async function refused(tlsOpts: { cert?: string; key?: string }): Promise<TestClient> {
    const c = new TestClient(h.relay.url, { ca: h.relay.caPem, ...tlsOpts });
    await until(() => c.closed, 'refusal');
    expect(c.opened).toBe(false);
    return c;
  }

  it('no client certificate: handshake fails, audited', async () => {
    const before = h.audit().filter((r) => r.type === 'tls.rejected').length;
    await refused({});
    await until(() => h.audit().filter((r) => r.type === 'tls.rejected').length > before, 'audit');
    await stillServed();
  });

  it('certificate from a foreign CA: handshake fails, audited', async () => {
    const other = mkdtempSync(join(tmpdir(), 'parley-foreign-'));
    try {
      await initPki(other);
      const f = await issueClient(other, 'intruder', join(other, 'out'));
      const before = h.audit().filter((r) => r.type === 'tls.rejected').length;
      await refused({ cert: f.certPem, key: readFileSync(f.keyPath, 'utf8') });
      await until(
        () => h.audit().filter((r) => r.type === 'tls.rejected').length > before,
        'audit',
      );
      await stillServed();
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('expired certificate: handshake fails, audited', async () => {
    const past = new Date(Date.now() - 10 * 24 * 3600 * 1000);
    const creds: Credentials = await h.credentials('expired', { now: () => past, validityDays: 1 });
    const before = h.audit().filter((r) => r.type === 'tls.rejected').length;
    await refused({ cert: creds.cert, key: creds.key });
    await until(() => h.audit().filter((r) => r.type === 'tls.rejected').length > before, 'audit');
    await stillServed();
  });

  it('revoked certificate: the live connection is cut on CRL reload and new handshakes fail', async () => {
    const creds = await h.credentials('revokee');
    const live = await TestClient.connect(h, creds);
    await live.hello();
    await revoke(join(h.dir, 'data'), 'revokee');
    await h.relay.reloadCrl();
    await live.waitClosed();
    expect(audited('tls.rejected', 'revoked-while-connected')).toBe(true);
    expect(audited('crl.reloaded')).toBe(true);
    await refused({ cert: creds.cert, key: creds.key });
    await stillServed();
  });

  it('revocation takes effect from the CRL file alone (polled), without a signal', async () => {
    const creds = await h.credentials('revokee2');
    const live = await TestClient.connect(h, creds);
    await live.hello();
    await revoke(join(h.dir, 'data'), 'revokee2');
    // No reloadCrl() call: the relay notices the rewritten crl.pem by itself.
    await live.waitClosed(15_000);
    expect(h.audit().filter((r) => r.code === 'revoked-while-connected').length).toBe(2);
    await stillServed();
  });

  it('TLS 1.2 client: refused, audited', async () => {
    const before = h.audit().filter((r) => r.type === 'tls.rejected').length;
    const creds = await h.credentials('oldtls');
    const outcome = await new Promise<string>((resolve) => {
      const s = tlsConnect({
        host: '127.0.0.1',
        port: h.relay.port,
        ca: h.relay.caPem,
        cert: creds.cert,
        key: creds.key,
        maxVersion: 'TLSv1.2',
        servername: 'localhost',
      });
      s.on('secureConnect', () => {
        s.destroy();
        resolve('connected');
      });
      s.on('error', (e: Error & { code?: string }) => resolve(e.code ?? 'error'));
    });
    expect(outcome).not.toBe('connected');
    await until(() => h.audit().filter((r) => r.type === 'tls.rejected').length > before, 'audit');
    await stillServed();
  });

  it('half-sent handshake left open: cut at the handshake timeout, audited', async () => {
    const closed = await new Promise<boolean>((resolve) => {
      const s = netConnect(h.relay.port, '127.0.0.1', () => {
        // A TLS record header announcing a ClientHello, then silence.
        s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00]));
      });
      s.on('close', () => resolve(true));
      s.on('error', () => undefined);
    });
    expect(closed).toBe(true);
    expect(audited('tls.timeout', 'ERR_TLS_HANDSHAKE_TIMEOUT')).toBe(true);
    await stillServed();
  });
});

describe('slow HTTP upgrade', () => {
  it('a TLS client that never finishes its upgrade request is cut and audited', async () => {
    const slow = await startHarness({ auth: 'mtls', config: { limits: { authTimeoutMs: 400 } } });
    try {
      const creds = await slow.credentials('slowpoke');
      const closed = await new Promise<boolean>((resolve) => {
        const s = tlsConnect(
          {
            host: '127.0.0.1',
            port: slow.relay.port,
            ca: slow.relay.caPem,
            cert: creds.cert,
            key: creds.key,
            servername: 'localhost',
          },
          () => s.write('GET /ws HTTP/1.1\r\nHost: localhost\r\n'),
        );
        s.on('close', () => resolve(true));
        s.on('error', () => undefined);
      });
      expect(closed).toBe(true);
      await until(() => slow.audit().some((r) => r.type === 'auth.timeout'), 'audit');
    } finally {
      await slow.close();
    }
  });
});

describe('connection cap', () => {
  it('refuses connections beyond the overall maximum, audited', async () => {
    const small = await startHarness({
      auth: 'mtls',
      config: { limits: { maxConnections: 2, maxConnectionsPerIdentity: 2 } },
    });
    try {
      const a = await TestClient.connect(small, await small.credentials('cap-a'));
      await a.hello();
      const b = await TestClient.connect(small, await small.credentials('cap-b'));
      await b.hello();
      const capC = await small.credentials('cap-c');
      const c = new TestClient(small.relay.url, {
        ca: small.relay.caPem,
        cert: capC.cert,
        key: capC.key,
      });
      await until(() => c.closed, 'refusal');
      expect(c.opened).toBe(false);
      expect(small.audit().some((r) => r.type === 'conn.cap' && r.code === 'max-connections')).toBe(
        true,
      );
      a.send({ type: 'ping', timestamp: Date.now() });
      await a.next('pong');
      a.close();
      b.close();
    } finally {
      await small.close();
    }
  });
});
