/**
 * The session-token registry on its own, with a fake clock: single use, binding to the
 * device address, expiry, replacement, revocation, bounds, and that only hashes are kept.
 */
import { describe, expect, it } from 'vitest';
import { MAX_SESSION_TOKENS_PER_DEVICE, SessionTokenRegistry } from '../src/session-tokens.js';
import { crypto } from './helpers.js';

const alice = { name: 'alice', deviceId: 1 };
const bob = { name: 'bob', deviceId: 1 };

function registry(opts: { maxTokens?: number } = {}) {
  const clock = { t: 1_700_000_000_000 };
  const tokens = new SessionTokenRegistry({ crypto, now: () => clock.t, ...opts });
  return { clock, tokens };
}

describe('SessionTokenRegistry', () => {
  it('a token works once, for its own device, and carries the signed session expiry', () => {
    const { clock, tokens } = registry();
    const expiresAt = clock.t + 60_000;
    const { token } = tokens.issue(alice, expiresAt);
    expect(token.length).toBe(32);
    expect(tokens.redeem(bob, token)).toEqual({ ok: false, reason: 'unknown-token' });
    expect(tokens.redeem({ name: 'alice', deviceId: 2 }, token)).toEqual({
      ok: false,
      reason: 'unknown-token',
    });
    // The wrong-name attempts did not consume it.
    expect(tokens.redeem(alice, token)).toEqual({ ok: true, expiresAt });
    expect(tokens.redeem(alice, token)).toEqual({ ok: false, reason: 'unknown-token' });
    expect(tokens.size).toBe(0);
  });

  it('refuses a token at and after its expiry, and forgets it', () => {
    const { clock, tokens } = registry();
    const a = tokens.issue(alice, clock.t + 1_000).token;
    const b = tokens.issue(alice, clock.t + 1_000).token;
    clock.t += 999;
    expect(tokens.redeem(alice, a).ok).toBe(true);
    clock.t += 1;
    expect(tokens.redeem(alice, b)).toEqual({ ok: false, reason: 'expired-token' });
    expect(tokens.size).toBe(0);
  });

  it('refuses a near miss (one bit flipped) and a wrong length', () => {
    const { clock, tokens } = registry();
    const { token } = tokens.issue(alice, clock.t + 60_000);
    const flipped = token.slice();
    flipped[31] = (flipped[31] as number) ^ 1;
    expect(tokens.redeem(alice, flipped).ok).toBe(false);
    expect(tokens.redeem(alice, token.subarray(0, 31)).ok).toBe(false);
    expect(tokens.redeem(alice, new Uint8Array(0)).ok).toBe(false);
    expect(tokens.redeem(alice, token).ok).toBe(true);
  });

  it('replacing a connection token revokes the old one; revoking twice is harmless', () => {
    const { clock, tokens } = registry();
    const first = tokens.issue(alice, clock.t + 60_000);
    const second = tokens.issue(alice, clock.t + 120_000, first.handle);
    expect(tokens.redeem(alice, first.token).ok).toBe(false);
    tokens.revoke(first.handle);
    expect(tokens.redeem(alice, second.token)).toEqual({ ok: true, expiresAt: clock.t + 120_000 });
    // A handle whose token was redeemed elsewhere can still be "replaced" without effect.
    const third = tokens.issue(alice, clock.t + 60_000, second.handle);
    expect(tokens.size).toBe(1);
    tokens.revoke(third.handle);
    expect(tokens.redeem(alice, third.token).ok).toBe(false);
  });

  it('keeps at most the per-device bound, evicting that device’s oldest first', () => {
    const { clock, tokens } = registry();
    const issued = Array.from(
      { length: MAX_SESSION_TOKENS_PER_DEVICE + 2 },
      () => tokens.issue(alice, clock.t + 60_000).token,
    );
    const other = tokens.issue(bob, clock.t + 60_000).token;
    expect(tokens.size).toBe(MAX_SESSION_TOKENS_PER_DEVICE + 1);
    expect(tokens.redeem(alice, issued[0] as Uint8Array).ok).toBe(false);
    expect(tokens.redeem(alice, issued[1] as Uint8Array).ok).toBe(false);
    for (const t of issued.slice(2)) expect(tokens.redeem(alice, t).ok).toBe(true);
    expect(tokens.redeem(bob, other).ok).toBe(true);
  });

  it('keeps at most the global bound, evicting the oldest token of any device', () => {
    const { clock, tokens } = registry({ maxTokens: 3 });
    const names = ['a', 'b', 'c', 'd', 'e'];
    const issued = names.map((name) => tokens.issue({ name, deviceId: 1 }, clock.t + 60_000));
    expect(tokens.size).toBe(3);
    expect(tokens.redeem({ name: 'a', deviceId: 1 }, issued[0]!.token).ok).toBe(false);
    expect(tokens.redeem({ name: 'b', deviceId: 1 }, issued[1]!.token).ok).toBe(false);
    for (const i of [2, 3, 4]) {
      expect(tokens.redeem({ name: names[i]!, deviceId: 1 }, issued[i]!.token).ok).toBe(true);
    }
  });

  it('holds hashes only: no token bytes in the handle, and the caller may wipe the token', () => {
    const { clock, tokens } = registry();
    const { token, handle } = tokens.issue(alice, clock.t + 60_000);
    const copy = token.slice();
    const held = Object.values(handle).filter((v): v is Uint8Array => v instanceof Uint8Array);
    expect(held.length).toBeGreaterThan(0);
    for (const v of held) expect(Buffer.from(v).equals(Buffer.from(copy))).toBe(false);
    // The relay zeroizes the token once the welcome is sent; the stored hash still matches.
    token.fill(0);
    expect(tokens.redeem(alice, copy).ok).toBe(true);
  });
});
