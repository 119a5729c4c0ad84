import fc from 'fast-check';
import { createPortableCrypto, type Ed25519PublicKey, type Ed25519Signature } from '@parley/crypto';
import { describe, expect, it } from 'vitest';
import {
  authSignedData,
  checkFrameFreshness,
  checkFreshness,
  FRESHNESS_WINDOW_MS,
  isLiveOnly,
  negotiateVersion,
  summarizeFrame,
  SUPPORTED_PROTOCOL_VERSIONS,
  type AuthSignedDataInput,
} from '@parley/wire';
import { codeOf } from './error-code.js';

describe('negotiateVersion', () => {
  it('picks the highest common version', () => {
    expect(negotiateVersion([1, 2, 3], [2, 1])).toBe(2);
    expect(negotiateVersion([3, 1], [1, 3])).toBe(3);
    expect(negotiateVersion([1])).toBe(1);
    expect(SUPPORTED_PROTOCOL_VERSIONS).toContain(1);
  });
  it('fails with VERSION_UNSUPPORTED when nothing is shared', () => {
    expect(codeOf(() => negotiateVersion([], [1]))).toBe('VERSION_UNSUPPORTED');
    expect(codeOf(() => negotiateVersion([2, 7], [1]))).toBe('VERSION_UNSUPPORTED');
  });
  it('the result is always in both lists and maximal', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(20)), fc.array(fc.nat(20), { minLength: 1 }), (a, b) => {
        const common = a.filter((v) => b.includes(v));
        if (common.length === 0)
          expect(codeOf(() => negotiateVersion(a, b))).toBe('VERSION_UNSUPPORTED');
        else expect(negotiateVersion(a, b)).toBe(Math.max(...common));
      }),
    );
  });
});

describe('freshness (live-only frames)', () => {
  const now = 1_700_000_000_000;
  it('accepts the closed window on both sides, refuses outside it', () => {
    expect(codeOf(() => checkFreshness(now - FRESHNESS_WINDOW_MS, now))).toBe('no error');
    expect(codeOf(() => checkFreshness(now + FRESHNESS_WINDOW_MS, now))).toBe('no error');
    expect(codeOf(() => checkFreshness(now - FRESHNESS_WINDOW_MS - 1, now))).toBe(
      'STALE_TIMESTAMP',
    );
    expect(codeOf(() => checkFreshness(now + FRESHNESS_WINDOW_MS + 1, now))).toBe(
      'STALE_TIMESTAMP',
    );
    expect(codeOf(() => checkFreshness(Number.NaN, now))).toBe('STALE_TIMESTAMP');
    expect(codeOf(() => checkFreshness(now - 5_000, now, 1_000))).toBe('STALE_TIMESTAMP');
  });
  it('applies to live-only frames only; stored deliveries stay valid', () => {
    const old = now - 10 * FRESHNESS_WINDOW_MS;
    const hello = { type: 'hello', protocolVersions: [1], timestamp: old } as const;
    const deliver = {
      type: 'deliver',
      serverMessageId: 1,
      kind: 'message',
      from: { name: 'a', deviceId: 1 },
      timestamp: old,
      payload: new Uint8Array(0),
    } as const;
    expect(isLiveOnly(hello)).toBe(true);
    expect(isLiveOnly(deliver)).toBe(false);
    expect(codeOf(() => checkFrameFreshness(hello, now))).toBe('STALE_TIMESTAMP');
    expect(codeOf(() => checkFrameFreshness(deliver, now))).toBe('no error');
    expect(codeOf(() => checkFrameFreshness({ type: 'ping', timestamp: now }, now))).toBe(
      'no error',
    );
  });
  it('a resume is live-only: a captured one cannot be sent again later', () => {
    const resume = {
      type: 'resume',
      name: 'a',
      deviceId: 1,
      sessionToken: new Uint8Array(32),
      timestamp: now - FRESHNESS_WINDOW_MS - 1,
    } as const;
    expect(isLiveOnly(resume)).toBe(true);
    expect(codeOf(() => checkFrameFreshness(resume, now))).toBe('STALE_TIMESTAMP');
    expect(codeOf(() => checkFrameFreshness({ ...resume, timestamp: now }, now))).toBe('no error');
  });
});

describe('authSignedData', () => {
  const crypto = createPortableCrypto();
  const challenge = { nonce: new Uint8Array(32).fill(9), timestamp: 1_000, serverId: 'relay.test' };
  const keys = crypto.ed25519.generateKeyPair();
  const register: AuthSignedDataInput = {
    purpose: 'register',
    challenge,
    name: 'alice',
    deviceId: 1,
    timestamp: 1_001,
    identityKey: keys.publicKey,
  };
  const login: AuthSignedDataInput = {
    purpose: 'login',
    challenge,
    name: 'alice',
    deviceId: 1,
    timestamp: 1_001,
  };

  it('has the documented layout', () => {
    const label = new TextEncoder().encode('parley/wire/auth/v1');
    const b = authSignedData(login);
    expect(b.subarray(0, label.length)).toEqual(label);
    expect(b[label.length]).toBe(2);
    // label, purpose, nonce, u64, u8+10, u8+5, u32, u64, absent key
    expect(b.length).toBe(19 + 1 + 32 + 8 + 11 + 6 + 4 + 8 + 1);
    expect(authSignedData(register).length).toBe(b.length + 32);
    expect(authSignedData(register)[19]).toBe(1);
  });

  it('binds every input: changing any one changes the bytes', () => {
    const base = authSignedData(register);
    const variants: AuthSignedDataInput[] = [
      { ...register, challenge: { ...challenge, nonce: new Uint8Array(32).fill(8) } },
      { ...register, challenge: { ...challenge, timestamp: 1_002 } },
      { ...register, challenge: { ...challenge, serverId: 'relay.evil' } },
      { ...register, name: 'alicf' },
      { ...register, deviceId: 2 },
      { ...register, timestamp: 1_002 },
      { ...register, identityKey: crypto.ed25519.generateKeyPair().publicKey },
    ];
    for (const v of variants) expect(authSignedData(v)).not.toEqual(base);
    expect(authSignedData(register)).toEqual(base);
  });

  it('a signature over it verifies, and does not verify for another purpose', () => {
    const sig = crypto.ed25519.sign(keys.secretKey, authSignedData(login));
    const pk = keys.publicKey as Ed25519PublicKey;
    expect(crypto.ed25519.verify(pk, authSignedData(login), sig as Ed25519Signature)).toBe(true);
    expect(crypto.ed25519.verify(pk, authSignedData(register), sig)).toBe(false);
  });

  it('refuses inconsistent inputs', () => {
    expect(codeOf(() => authSignedData({ ...login, identityKey: new Uint8Array(32) }))).toBe(
      'INVALID_ARGUMENT',
    );
    const { identityKey: _k, ...noKey } = register;
    expect(codeOf(() => authSignedData(noKey))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => authSignedData({ ...login, name: 'Bad' }))).toBe('INVALID_ARGUMENT');
    expect(
      codeOf(() =>
        authSignedData({ ...login, challenge: { ...challenge, nonce: new Uint8Array(31) } }),
      ),
    ).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => authSignedData({ ...login, purpose: 'other' as 'login' }))).toBe(
      'INVALID_ARGUMENT',
    );
  });
});

describe('summarizeFrame', () => {
  it('shows routing metadata, never bytes or tokens', () => {
    const payload = new TextEncoder().encode('secret-plaintext-looking-bytes');
    const s = summarizeFrame({
      type: 'send',
      clientMessageId: new Uint8Array(16).fill(0x41),
      from: { name: 'alice', deviceId: 1 },
      to: { name: 'bob', deviceId: 1 },
      payload,
    });
    expect(s).toEqual({
      type: 'send',
      clientMessageId: '<16 bytes>',
      from: { name: 'alice', deviceId: 1 },
      to: { name: 'bob', deviceId: 1 },
      payload: `<${payload.length} bytes>`,
    });
    const token = new Uint8Array(32).fill(0x7a);
    const welcome = summarizeFrame({
      type: 'welcome',
      version: 1,
      name: 'alice',
      deviceId: 1,
      sessionToken: token,
      expiresAt: 5,
      limits: {
        blockBytes: 4096,
        maxFrameBytes: 1,
        maxPayloadBytes: 1,
        rateLimitMessages: 1,
        rateLimitWindowMs: 1,
      },
    });
    expect(welcome).not.toHaveProperty('sessionToken');
    expect(welcome['limits']).toMatchObject({ blockBytes: 4096 });
    const resume = summarizeFrame({
      type: 'resume',
      name: 'alice',
      deviceId: 1,
      sessionToken: token,
      timestamp: 5,
    });
    expect(resume).toEqual({ type: 'resume', name: 'alice', deviceId: 1, timestamp: 5 });
    expect(JSON.stringify(resume)).not.toContain('32 bytes');
  });
});
