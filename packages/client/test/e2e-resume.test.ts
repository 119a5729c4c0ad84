/**
 * Open-mode session resumption end to end (real relay over TLS on 127.0.0.1, real
 * profile): after a dropped connection the client resumes with the relay's token and
 * signs nothing (its signer is made to fail); after a relay restart the token is
 * refused, and the client falls back to signing on its own and is ready again. The
 * token never shows in the client's printable state.
 */
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import type { CryptoProvider } from '@parley/crypto';
import type { ClientEvent } from '@parley/client';
import { initProfile, openNodeClient } from '@parley/client-node';
import { loadOrCreateAuditKey, startRelay, verifyAuditLog } from '@parley/server';
import type { RunningRelay } from '@parley/server';
import { KDF, PASS, crypto as base, until } from './e2e-helpers.js';

const root = mkdtempSync(join(tmpdir(), 'parley-resume-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The client's crypto, with an Ed25519 signer the test can switch off and a sign counter. */
const signer = { allowed: true, calls: 0 };
const crypto: CryptoProvider = {
  ...base,
  ed25519: {
    ...base.ed25519,
    sign(secretKey, message) {
      signer.calls++;
      if (!signer.allowed) throw new Error('signing switched off by the test');
      return base.ed25519.sign(secretKey, message);
    },
  },
};

function audit(relay: RunningRelay) {
  const key = loadOrCreateAuditKey(relay.paths.auditKey, base);
  const v = verifyAuditLog(readFileSync(relay.paths.auditLog, 'utf8'), key, base);
  if (!v.ok) throw new Error(`audit log does not verify: ${v.reason}`);
  return v.records;
}

const printable = (token: Uint8Array) => inspect(token, { breakLength: Infinity }).slice(16);

it('resumes without signing after a drop, and signs again after a relay restart', async () => {
  const dataDir = join(root, 'relay');
  let relay = await startRelay({ dataDir, port: 0, auth: 'open', logLevel: 'silent' });
  const profile = join(root, 'ann');
  await initProfile({
    profile,
    passphrase: PASS,
    server: relay.url,
    mode: 'open',
    name: 'ann',
    caPem: relay.caPem,
    crypto: base,
    kdf: KDF,
  });
  const c = await openNodeClient({ profile, passphrase: PASS, crypto });
  const events: ClientEvent[] = [];
  c.client.on((e) => events.push(e));
  // Every token the relay hands out, seen where the transport hands frames to the core.
  const tokens: Uint8Array[] = [];
  const handle = c.client.handleFrame.bind(c.client);
  c.client.handleFrame = (frame) => {
    if (frame.type === 'welcome') tokens.push(frame.sessionToken.slice());
    return handle(frame);
  };
  try {
    await c.connect();
    expect(tokens).toHaveLength(1);
    expect(tokens[0]?.length).toBe(32);
    const ready = () => events.filter((e) => e.type === 'ready').length;

    // 1. Drop the connection with signing switched off: only a resume can get us back.
    signer.allowed = false;
    const signsBefore = signer.calls;
    c.transport.dropConnection();
    await until(() => ready() === 2, 'ready again after the drop');
    expect(signer.calls).toBe(signsBefore);
    expect(events.some((e) => e.type === 'error')).toBe(false);
    const resumed = audit(relay).filter((r) => r.type === 'auth.ok' && r.identity === 'ann');
    expect(resumed.map((r) => r.code ?? 'signed')).toEqual(['signed', 'resume']);
    expect(tokens).toHaveLength(2);
    await c.client.requestPresence(); // the resumed session serves requests

    // The token is in memory only and never printable.
    const shown = inspect(c.client, { depth: 8, breakLength: Infinity });
    for (const t of tokens) expect(shown).not.toContain(printable(t));
    expect(shown).toContain('ResumeTicket(expiresAt');

    // 2. Restart the relay on the same port: it has forgotten every token.
    signer.allowed = true;
    const port = relay.port;
    await relay.close();
    relay = await startRelay({ dataDir, port, auth: 'open', logLevel: 'silent' });
    await until(() => ready() === 3, 'ready after the relay restart', 30_000);
    expect(signer.calls).toBeGreaterThan(signsBefore);
    expect(events.some((e) => e.type === 'auth-rejected')).toBe(false);
    const since = audit(relay)
      .filter((r) => r.identity === 'ann')
      .slice(-2);
    expect(since.map((r) => `${r.type}:${r.code ?? ''}`)).toEqual([
      'auth.failed:resume-unknown-token',
      'auth.ok:',
    ]);
    expect(c.client.isReady).toBe(true);
  } finally {
    await c.close();
    await relay.close();
  }
});
