/**
 * Open mode (M6): server-authenticated TLS, registration of a name with a device key,
 * login by signing a fresh challenge, uniform failures, re-authentication.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crypto, startHarness, TestClient, type Harness } from './helpers.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ auth: 'open', config: { limits: { sessionTtlMs: 60_000 } } });
});
afterAll(async () => {
  await h.close();
});

describe('relay (open mode)', () => {
  it('registers a name with a device key, then logs in by signing a fresh challenge', async () => {
    const id = crypto.ed25519.generateKeyPair();
    const c1 = await TestClient.connect(h);
    const w1 = await c1.openAuth('register', 'dora', id);
    expect(w1.type).toBe('welcome');
    c1.close();
    const c2 = await TestClient.connect(h);
    const w2 = await c2.openAuth('login', 'dora', id);
    expect(w2).toMatchObject({ type: 'welcome', name: 'dora' });
    c2.close();
    const audit = h.audit();
    expect(audit.some((r) => r.type === 'auth.register' && r.identity === 'dora')).toBe(true);
  });

  it('gives the same answer for a wrong key, an unknown name and a taken name, and audits each', async () => {
    const owner = crypto.ed25519.generateKeyPair();
    const thief = crypto.ed25519.generateKeyPair();
    const c0 = await TestClient.connect(h);
    expect((await c0.openAuth('register', 'erin', owner)).type).toBe('welcome');
    c0.close();

    const answers = [];
    for (const [purpose, name] of [
      ['login', 'erin'],
      ['login', 'nobody-here'],
      ['register', 'erin'],
    ] as const) {
      const c = await TestClient.connect(h);
      answers.push(await c.openAuth(purpose, name, thief));
      expect(await c.waitClosed()).toBe(1008);
    }
    expect(answers).toEqual(Array(3).fill({ type: 'error', code: 'auth_failed' }));
    const failures = h.audit().filter((r) => r.type === 'auth.failed');
    expect(failures.map((r) => r.identity)).toEqual(['erin', 'nobody-here', 'erin']);
  });

  it('refuses a signature made for another challenge (replay)', async () => {
    const id = crypto.ed25519.generateKeyPair();
    const c0 = await TestClient.connect(h);
    await c0.openAuth('register', 'fay', id);
    c0.close();
    const a = await TestClient.connect(h);
    a.send({ type: 'hello', protocolVersions: [1], timestamp: Date.now() });
    const ch1 = await a.next('challenge');
    const b = await TestClient.connect(h);
    b.send({ type: 'hello', protocolVersions: [1], timestamp: Date.now() });
    await b.next('challenge');
    // b answers with a signature over a's challenge.
    const answer = await b.answer('login', 'fay', id, ch1);
    expect(answer).toEqual({ type: 'error', code: 'auth_failed' });
    a.close();
  });

  it('closes a connection that never authenticates and one that sends app frames first', async () => {
    const h2 = await startHarness({ auth: 'open', config: { limits: { authTimeoutMs: 300 } } });
    try {
      const silent = await TestClient.connect(h2);
      expect(await silent.waitClosed()).toBe(1008);
      const eager = await TestClient.connect(h2);
      eager.send({ type: 'presence.list', requestId: 1 });
      expect(await eager.waitClosed()).toBe(1008);
      const types = h2.audit().map((r) => r.type);
      expect(types).toContain('auth.timeout');
      expect(types).toContain('frame.unexpected');
    } finally {
      await h2.close();
    }
  });

  it('demands re-authentication when the session expires, and closes if it does not come', async () => {
    const h3 = await startHarness({
      auth: 'open',
      config: { limits: { sessionTtlMs: 200, authTimeoutMs: 400 } },
    });
    try {
      const id = crypto.ed25519.generateKeyPair();
      const good = await TestClient.connect(h3);
      const w = await good.openAuth('register', 'gus', id);
      expect(w.type).toBe('welcome');
      const again = await good.next('challenge');
      const w2 = await good.answer('login', 'gus', id, again);
      expect(w2).toMatchObject({ type: 'welcome', name: 'gus' });
      // The re-authenticated session keeps working.
      good.send({ type: 'ping', timestamp: Date.now() });
      await good.next('pong');
      good.close();

      const lazy = await TestClient.connect(h3);
      await lazy.openAuth('register', 'hal', crypto.ed25519.generateKeyPair());
      await lazy.next('challenge');
      expect(await lazy.waitClosed()).toBe(1008);
      expect(h3.audit().some((r) => r.type === 'auth.timeout' && r.identity === 'hal')).toBe(true);
    } finally {
      await h3.close();
    }
  });

  it('rejects stale live-only frames (freshness window)', async () => {
    const c = await TestClient.connect(h);
    c.send({ type: 'hello', protocolVersions: [1], timestamp: Date.now() - 10 * 60_000 });
    expect(await c.waitClosed()).toBe(1008);
    expect(h.audit().some((r) => r.code === 'STALE_TIMESTAMP')).toBe(true);
  });
});
