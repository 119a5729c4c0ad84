/**
 * Open-mode session resumption (M6) over real TLS on 127.0.0.1: a device reconnects with
 * the single-use token of its last `welcome` instead of signing; used, expired, foreign
 * and forgotten (relay restarted) tokens get the generic `auth_failed`, are audited, and
 * cost the sender its connection, exactly like a bad signature. Tokens never extend a
 * session past the TTL of the last signed login. mtls mode has no tokens.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Ed25519KeyPair } from '@parley/crypto';
import type { ServerFrame } from '@parley/wire';
import { startRelay } from '../src/index.js';
import { crypto, startHarness, TestClient, until, type Harness } from './helpers.js';

type Welcome = Extract<ServerFrame, { type: 'welcome' }>;

/** Test clock for the relay: real time plus a skew the test moves forward. */
const clock = { skewMs: 0 };
const relayNow = (): number => Date.now() + clock.skewMs;

/** Short enough to expire by moving the clock less than the 60 s freshness window. */
const SESSION_TTL_MS = 30_000;

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    auth: 'open',
    now: relayNow,
    config: { limits: { sessionTtlMs: SESSION_TTL_MS } },
  });
});
afterAll(async () => {
  await h.close();
});
// Each test moves the clock by less than the freshness window from real time (clients
// other than `resume` stamp frames with Date.now()); every connection is closed by then.
beforeEach(() => {
  clock.skewMs = 0;
});

/** Waits for the answer to an authentication attempt: `welcome` or `error`. */
async function verdict(c: TestClient): Promise<ServerFrame> {
  await until(() => c.has('welcome') || c.has('error') || c.closed, 'auth answer');
  const i = c.frames.findIndex((f) => f.type === 'welcome' || f.type === 'error');
  if (i < 0) throw new Error(`closed (${c.closeCode}) during auth`);
  return c.frames.splice(i, 1)[0] as ServerFrame;
}

/** hello, challenge, then `resume` with `token` (no signature anywhere). */
async function resume(c: TestClient, name: string, token: Uint8Array): Promise<ServerFrame> {
  c.send({ type: 'hello', protocolVersions: [1], timestamp: relayNow() });
  await c.next('challenge');
  c.send({ type: 'resume', name, deviceId: 1, sessionToken: token, timestamp: relayNow() });
  return verdict(c);
}

/** Registers `name` on a fresh connection; returns the welcome and the open client. */
async function register(
  name: string,
  target: Harness = h,
): Promise<{ c: TestClient; welcome: Welcome; id: Ed25519KeyPair }> {
  const id = crypto.ed25519.generateKeyPair();
  const c = await TestClient.connect(target);
  const welcome = await c.openAuth('register', name, id);
  if (welcome.type !== 'welcome') throw new Error(`register ${name}: ${welcome.type}`);
  return { c, welcome, id };
}

const failures = (name: string, harness: Harness = h) =>
  harness.audit().filter((r) => r.type === 'auth.failed' && r.identity === name);
const resumes = (name: string, harness: Harness = h) =>
  harness.audit().filter((r) => r.type === 'auth.ok' && r.code === 'resume' && r.identity === name);

describe('session resumption (open mode)', () => {
  it('resumes without a signature, hands out a fresh token, keeps the signed expiry', async () => {
    const { c: first, welcome: w1 } = await register('ria');
    expect(w1.sessionToken.length).toBe(32);
    first.close();

    const c = await TestClient.connect(h);
    const w2 = await resume(c, 'ria', w1.sessionToken);
    expect(w2).toMatchObject({ type: 'welcome', name: 'ria', deviceId: 1 });
    const welcome = w2 as Welcome;
    expect(welcome.sessionToken.length).toBe(32);
    expect(Buffer.from(welcome.sessionToken).equals(Buffer.from(w1.sessionToken))).toBe(false);
    // Not extended: the resumed session ends when the signed one would have.
    expect(welcome.expiresAt).toBe(w1.expiresAt);
    expect(resumes('ria')).toHaveLength(1);
    // The resumed session is a real one.
    c.send({ type: 'presence.list', requestId: 7 });
    expect((await c.next('presence.list.result')).names).toContain('ria');

    // The fresh token works in turn (a chain of reconnects).
    c.close();
    const c3 = await TestClient.connect(h);
    expect((await resume(c3, 'ria', welcome.sessionToken)).type).toBe('welcome');
    expect(resumes('ria')).toHaveLength(2);
    c3.close();
  });

  it('refuses a token that was already used, with the generic answer, and audits it', async () => {
    const { c: first, welcome } = await register('sol');
    first.close();
    const a = await TestClient.connect(h);
    expect((await resume(a, 'sol', welcome.sessionToken)).type).toBe('welcome');
    a.close();

    const b = await TestClient.connect(h);
    expect(await resume(b, 'sol', welcome.sessionToken)).toEqual({
      type: 'error',
      code: 'auth_failed',
    });
    expect(await b.waitClosed()).toBe(1008);
    expect(failures('sol').map((r) => r.code)).toEqual(['resume-unknown-token']);
  });

  it('refuses a token presented for another name (and it stays valid for its owner)', async () => {
    const { c: t1, welcome: tim } = await register('tim');
    const { c: u1 } = await register('uma');
    t1.close();
    u1.close();
    const thief = await TestClient.connect(h);
    expect(await resume(thief, 'uma', tim.sessionToken)).toEqual({
      type: 'error',
      code: 'auth_failed',
    });
    expect(await thief.waitClosed()).toBe(1008);
    expect(failures('uma').map((r) => r.code)).toEqual(['resume-unknown-token']);
    const owner = await TestClient.connect(h);
    expect(await resume(owner, 'tim', tim.sessionToken)).toMatchObject({
      type: 'welcome',
      name: 'tim',
    });
    owner.close();
  });

  it('gives a bad token, an expired token and a bad signature the same answer', async () => {
    const { c: first, welcome, id } = await register('val');
    first.close();
    const answers: ServerFrame[] = [];

    const wrong = await TestClient.connect(h);
    answers.push(await resume(wrong, 'val', crypto.randomBytes(32)));

    const forger = await TestClient.connect(h);
    answers.push(await forger.openAuth('login', 'val', crypto.ed25519.generateKeyPair()));

    // Past the signed session's TTL (clock moved, below the freshness window).
    clock.skewMs += SESSION_TTL_MS + 1_000;
    const late = await TestClient.connect(h);
    answers.push(await resume(late, 'val', welcome.sessionToken));
    for (const c of [wrong, forger, late]) expect(await c.waitClosed()).toBe(1008);
    expect(answers).toEqual(Array(3).fill({ type: 'error', code: 'auth_failed' }));
    expect(failures('val').map((r) => r.code)).toEqual([
      'resume-unknown-token',
      'bad-signature',
      'resume-expired-token',
    ]);

    // The expired token is gone, not merely refused once; signing still works.
    const again = await TestClient.connect(h);
    expect((await resume(again, 'val', welcome.sessionToken)).type).toBe('error');
    const signer = await TestClient.connect(h);
    expect(await signer.openAuth('login', 'val', id)).toMatchObject({ type: 'welcome' });
    signer.close();
  });

  it('does not stretch a session: the signed expiry still demands a signature', async () => {
    const { c: first, welcome: w1, id } = await register('wes');
    first.close();
    clock.skewMs += SESSION_TTL_MS / 2;
    const c = await TestClient.connect(h);
    const w2 = (await resume(c, 'wes', w1.sessionToken)) as Welcome;
    expect(w2.expiresAt).toBe(w1.expiresAt);
    // Move past the signed expiry: the relay asks this resumed connection to sign.
    clock.skewMs += SESSION_TTL_MS / 2 + 1_000;
    const challenge = await c.next('challenge');
    // Its token ended with the signed session too.
    const sneaky = await TestClient.connect(h);
    expect((await resume(sneaky, 'wes', w2.sessionToken)).type).toBe('error');
    const w3 = await c.answer('login', 'wes', id, challenge);
    expect(w3).toMatchObject({ type: 'welcome', name: 'wes' });
    expect((w3 as Welcome).expiresAt).toBeGreaterThan(w1.expiresAt);
    // The re-authenticated connection's new token replaced its old one and works.
    c.close();
    const d = await TestClient.connect(h);
    expect((await resume(d, 'wes', (w3 as Welcome).sessionToken)).type).toBe('welcome');
    d.close();
  });

  it('answers a resume sent in reply to a re-authentication challenge with auth_failed', async () => {
    const { c, welcome } = await register('xia');
    clock.skewMs += SESSION_TTL_MS + 1_000;
    await c.next('challenge');
    c.send({
      type: 'resume',
      name: 'xia',
      deviceId: 1,
      sessionToken: welcome.sessionToken,
      timestamp: relayNow(),
    });
    expect(await verdict(c)).toEqual({ type: 'error', code: 'auth_failed' });
    expect(await c.waitClosed()).toBe(1008);
    expect(failures('xia').map((r) => r.code)).toEqual(['resume-on-reauth']);
  });

  it('limits guessing like logins: one attempt per connection, each audited; others unaffected', async () => {
    const { c: first, welcome } = await register('yan');
    first.close();
    const before = failures('yan').length;
    // 20 connections, each with a wrong token; one of them also piles up more tries.
    const guessers = await Promise.all(Array.from({ length: 20 }, () => TestClient.connect(h)));
    const answers = await Promise.all(
      guessers.map(async (g, i) => {
        g.send({ type: 'hello', protocolVersions: [1], timestamp: relayNow() });
        await g.next('challenge');
        for (let k = 0; k < (i === 0 ? 50 : 1); k++) {
          g.send({
            type: 'resume',
            name: 'yan',
            deviceId: 1,
            sessionToken: crypto.randomBytes(32),
            timestamp: relayNow(),
          });
        }
        return verdict(g);
      }),
    );
    expect(answers).toEqual(Array(20).fill({ type: 'error', code: 'auth_failed' }));
    for (const g of guessers) expect(await g.waitClosed()).toBe(1008);
    // Exactly one failure per connection: the pile of 50 got one answer and a close.
    expect(failures('yan').length - before).toBe(20);
    expect(guessers[0]?.frames.filter((f) => f.type === 'error')).toHaveLength(0);
    // The owner's real token survived the flood.
    const owner = await TestClient.connect(h);
    expect((await resume(owner, 'yan', welcome.sessionToken)).type).toBe('welcome');
    owner.close();
  });
});

describe('session tokens and relay restarts', () => {
  it('forgets every token on restart; the device signs and logs in again', async () => {
    const h2 = await startHarness({ auth: 'open' });
    const dataDir = join(h2.dir, 'data');
    let restarted: Awaited<ReturnType<typeof startRelay>> | undefined;
    try {
      const { c, welcome, id } = await register('zed', h2);
      c.close();
      const port = h2.relay.port;
      await h2.relay.close();
      restarted = await startRelay({ dataDir, port, auth: 'open', logLevel: 'silent' });
      const target = { ...h2, relay: restarted };
      const r = await TestClient.connect(target);
      expect(await resume(r, 'zed', welcome.sessionToken)).toEqual({
        type: 'error',
        code: 'auth_failed',
      });
      expect(await r.waitClosed()).toBe(1008);
      const s = await TestClient.connect(target);
      expect(await s.openAuth('login', 'zed', id)).toMatchObject({ type: 'welcome', name: 'zed' });
      s.close();
      // Same audit log (same data dir): the failed resume after the restart is recorded.
      expect(failures('zed', h2).map((f) => f.code)).toEqual(['resume-unknown-token']);
    } finally {
      await restarted?.close();
      await h2.close(); // (closing the first relay again is a no-op)
    }
  });
});

describe('mtls mode', () => {
  it('issues no token and treats a resume as a protocol violation', async () => {
    const hm = await startHarness({ auth: 'mtls' });
    try {
      const creds = await hm.credentials('amy');
      const a = await TestClient.connect(hm, creds);
      const w = await a.hello();
      expect(w.sessionToken.length).toBe(0);
      a.close();
      const b = await TestClient.connect(hm, creds);
      b.send({ type: 'hello', protocolVersions: [1], timestamp: Date.now() });
      await b.next('welcome');
      b.send({
        type: 'resume',
        name: 'amy',
        deviceId: 1,
        sessionToken: crypto.randomBytes(32),
        timestamp: Date.now(),
      });
      expect(await b.waitClosed()).toBe(1008);
      expect(hm.audit().some((r) => r.type === 'frame.unexpected' && r.code === 'resume')).toBe(
        true,
      );
    } finally {
      await hm.close();
    }
  });
});
