/**
 * End to end with the real relay (`startRelay`: TLS 1.3, WebSocket, SQLite mailbox,
 * audit log) and real profiles (SQLCipher + Argon2id), in mtls and open mode:
 * Bob offline, Alice sends three messages (each queued), Bob comes online and gets
 * them in order, Alice sees delivered; then a restart of both clients and the relay
 * continues the conversation without a new handshake and shows nothing twice; the
 * relay's files never contain a plaintext; a revoked certificate is refused with a
 * clear error and the profile keeps its history.
 */
import { readFileSync, readdirSync, rmSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ClientEvent } from '@parley/client';
import { initProfile, openNodeClient } from '@parley/client-node';
import type { NodeClient } from '@parley/client-node';
import { revoke } from '@parley/pki';
import { startRelay } from '@parley/server';
import type { RunningRelay } from '@parley/server';
import { KDF, PASS, crypto, initMtlsProfile, until } from './e2e-helpers.js';

const root = mkdtempSync(join(tmpdir(), 'parley-e2e-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Every plaintext this file sends, checked against the relay's files at the end. */
const plaintexts: string[] = [];
const say = (t: string): string => {
  plaintexts.push(t);
  return t;
};

async function connect(
  profile: string,
  server?: string,
): Promise<{ c: NodeClient; events: ClientEvent[] }> {
  const c = await openNodeClient({
    profile,
    passphrase: PASS,
    crypto,
    ...(server ? { server } : {}),
  });
  const events: ClientEvent[] = [];
  c.client.on((e) => events.push(e));
  await c.connect();
  await until(() => c.client.mailboxDrained, 'mailbox drained');
  return { c, events };
}

const texts = async (c: NodeClient, peer: string): Promise<string[]> =>
  (await c.client.messages(peer)).map((m) => `${m.direction}:${m.text}`);

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

async function scenario(mode: 'mtls' | 'open'): Promise<void> {
  const dataDir = join(root, `relay-${mode}`);
  let relay: RunningRelay = await startRelay({ dataDir, port: 0, auth: mode, logLevel: 'silent' });
  const profiles = { alice: join(root, `${mode}-alice`), bob: join(root, `${mode}-bob`) };
  for (const name of ['alice', 'bob'] as const) {
    if (mode === 'mtls') {
      await initMtlsProfile({
        dataDir,
        credsDir: join(root, `${mode}-creds-${name}`),
        name,
        profile: profiles[name],
        server: relay.url,
      });
    } else {
      await initProfile({
        profile: profiles[name],
        passphrase: PASS,
        server: relay.url,
        mode: 'open',
        name,
        caPem: relay.caPem,
        crypto,
        kdf: KDF,
      });
    }
  }
  // Bob registers and publishes prekeys, then goes offline.
  {
    const { c } = await connect(profiles.bob);
    await c.client.requestPresence(); // round trip: the upload has been processed
    await c.close();
  }
  let { c: alice } = await connect(profiles.alice);
  const sent = [];
  for (const t of ['first', 'second', 'third']) {
    const m = await alice.client.send('bob', say(`${mode} ${t} message`));
    await alice.client.waitForStatus('bob', m.id, 'queued', 10_000);
    sent.push(m);
  }
  expect((await alice.client.messages('bob')).map((m) => m.status)).toEqual([
    'queued',
    'queued',
    'queued',
  ]);
  let { c: bob, events: bobEvents } = await connect(profiles.bob);
  await until(
    async () => (await bob.client.messages('alice')).length === 3,
    'three messages at bob',
  );
  expect(await texts(bob, 'alice')).toEqual([
    `in:${mode} first message`,
    `in:${mode} second message`,
    `in:${mode} third message`,
  ]);
  for (const m of sent) await alice.client.waitForStatus('bob', m.id, 'delivered', 10_000);
  expect((await alice.client.contacts()).map((k) => [k.name, k.trust])).toEqual([
    ['bob', mode === 'mtls' ? 'ca-attested' : 'unverified'],
  ]);
  const reply = await bob.client.send('alice', say(`${mode} reply from bob`));
  await bob.client.waitForStatus('alice', reply.id, 'delivered', 10_000);
  const sessionBefore = await alice.store.getSession('bob', 1);
  expect(sessionBefore).toBeDefined();
  const bobOneTimeBefore = (await bob.store.listSecretIds('otk')).length;

  // Restart both clients and the relay (new port, same data directory).
  await alice.close();
  await bob.close();
  await relay.close();
  relay = await startRelay({ dataDir, port: 0, auth: mode, logLevel: 'silent' });
  ({ c: alice } = await connect(profiles.alice, relay.url));
  ({ c: bob, events: bobEvents } = await connect(profiles.bob, relay.url));
  const m4 = await alice.client.send('bob', say(`${mode} after restart`));
  await alice.client.waitForStatus('bob', m4.id, 'delivered', 10_000);
  await until(
    async () => (await bob.client.messages('alice')).length === 5,
    'message after restart',
  );
  expect(await texts(bob, 'alice')).toEqual([
    `in:${mode} first message`,
    `in:${mode} second message`,
    `in:${mode} third message`,
    `out:${mode} reply from bob`,
    `in:${mode} after restart`,
  ]);
  // Only the new message was announced after the restart: nothing shown twice.
  expect(
    bobEvents
      .filter((e) => e.type === 'message' && e.message.direction === 'in')
      .map((e) => (e as { message: { text: string } }).message.text),
  ).toEqual([`${mode} after restart`]);
  // No new handshake: Alice's contact is unchanged and Bob saw no key-change.
  expect(bobEvents.some((e) => e.type === 'key-changed')).toBe(false);
  // A new handshake would have consumed one of Bob's one-time prekeys; none was.
  expect((await bob.store.listSecretIds('otk')).length).toBe(bobOneTimeBefore);

  if (mode === 'mtls') {
    // Revoke Bob: the relay refuses him with a clear error; his profile and history survive.
    await bob.close();
    await revoke(dataDir, 'bob');
    await relay.reloadCrl();
    const again = await openNodeClient({
      profile: profiles.bob,
      passphrase: PASS,
      crypto,
      server: relay.url,
      reconnect: false,
    });
    const err = await again.connect(10_000).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'ClientError', code: 'AUTH_REJECTED' });
    expect((await again.client.messages('alice')).length).toBe(5);
    await again.close();
  } else {
    await bob.close();
  }
  await alice.close();
  await relay.close();

  // The relay's database, WAL and audit log hold none of the plaintexts.
  for (const f of filesUnder(dataDir)) {
    const bytes = readFileSync(f);
    for (const t of plaintexts) expect(bytes.includes(Buffer.from(t)), `${t} in ${f}`).toBe(false);
  }
}

describe('end to end with the real relay', () => {
  it('one client instance rides out a relay restart: reconnect with backoff, outbox flushed, mailbox drained', async () => {
    const dataDir = join(root, 'relay-reconnect');
    let relay = await startRelay({ dataDir, port: 0, auth: 'mtls', logLevel: 'silent' });
    const port = relay.port;
    const profiles = { alice: join(root, 'rc-alice'), bob: join(root, 'rc-bob') };
    for (const name of ['alice', 'bob'] as const) {
      await initMtlsProfile({
        dataDir,
        credsDir: join(root, `rc-creds-${name}`),
        name,
        profile: profiles[name],
        server: relay.url,
      });
    }
    const { c: bob } = await connect(profiles.bob);
    const { c: alice, events: aliceEvents } = await connect(profiles.alice);
    const m1 = await alice.client.send('bob', say('before the relay restart'));
    await alice.client.waitForStatus('bob', m1.id, 'delivered', 10_000);
    await relay.close();
    await until(() => !alice.client.isReady && !bob.client.isReady, 'both see the relay go');
    // Written while the relay is down: stored, waiting in the outbox.
    const m2 = await alice.client.send('bob', say('while the relay was down'));
    expect((await alice.client.messages('bob')).at(-1)?.status).toBe('sending');
    relay = await startRelay({ dataDir, port, auth: 'mtls', logLevel: 'silent' });
    try {
      await alice.client.waitForStatus('bob', m2.id, 'delivered', 30_000);
      expect(await texts(bob, 'alice')).toEqual([
        'in:before the relay restart',
        'in:while the relay was down',
      ]);
      expect(aliceEvents.filter((e) => e.type === 'ready').length).toBeGreaterThanOrEqual(2);
    } finally {
      await alice.close();
      await bob.close();
      await relay.close();
    }
    for (const f of filesUnder(dataDir)) {
      const bytes = readFileSync(f);
      for (const t of plaintexts)
        expect(bytes.includes(Buffer.from(t)), `${t} in ${f}`).toBe(false);
    }
  }, 60_000);

  it('mtls: offline delivery in order, receipts, restart without re-handshake, no plaintext at the relay, revocation', async () => {
    await scenario('mtls');
  }, 120_000);

  it('open mode: registration by challenge, then the same guarantees', async () => {
    await scenario('open');
  }, 120_000);
});
