/**
 * Backup and restore (issue 13 §5). Through the real mtls relay: alice backs up, chats
 * on (so the backup's ratchet states go stale), loses her folder, restores the backup
 * into a fresh folder, and the conversation with bob continues both ways, readable and
 * `delivered` only after the recipient has the message. Without a relay: the file holds
 * no plaintext; a recovery key is accepted however it is typed; a wrong secret, an
 * altered file, a non-backup or an occupied target are clear errors that write nothing.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ClientEvent } from '@parley/client';
import { backupProfile, openNodeClient, restoreProfile } from '@parley/client-node';
import type { NodeClient } from '@parley/client-node';
import { KDF, PASS, crypto, startMtlsPair, until } from './e2e-helpers.js';

const root = mkdtempSync(join(tmpdir(), 'parley-e2e-backup-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

type Log = string[];
interface Peer {
  readonly c: NodeClient;
  readonly events: ClientEvent[];
}

async function enter(log: Log, name: string, profile: string): Promise<Peer> {
  const c = await openNodeClient({ profile, passphrase: PASS, crypto });
  const events: ClientEvent[] = [];
  c.client.on((e) => {
    events.push(e);
    if (e.type === 'message' && e.message.direction === 'in')
      log.push(`${name}:has:${e.message.text}`);
    if (e.type === 'status') log.push(`${name}:${e.status}:${e.id}`);
  });
  await c.connect();
  await until(() => c.client.mailboxDrained, `${name} drained`);
  return { c, events };
}

/** Sends, waits for `delivered`, and checks it came only after the recipient had it. */
async function deliver(log: Log, from: Peer, name: string, to: string, text: string) {
  const { id } = await from.c.client.send(to, text);
  await from.c.client.waitForStatus(to, id, 'delivered', 30_000);
  const delivered = log.indexOf(`${name}:delivered:${id}`);
  const has = log.indexOf(`${to}:has:${text}`);
  expect(has, `${to} has "${text}"`).toBeGreaterThanOrEqual(0);
  expect(delivered, `"${text}" delivered after ${to} had it`).toBeGreaterThan(has);
}

const texts = async (p: Peer, peer: string): Promise<string[]> =>
  (await p.c.client.messages(peer)).map((m) => `${m.direction}:${m.text}`);

describe('backup and restore', () => {
  it('backup, chat on, wipe, restore in a fresh folder: the conversation continues both ways', async () => {
    const { relay, profiles } = await startMtlsPair(join(root, 'pair'));
    const log: Log = [];
    const file = join(root, 'alice.parley-backup');
    try {
      const bob = await enter(log, 'bob', profiles.bob);
      let alice = await enter(log, 'alice', profiles.alice);
      await deliver(log, alice, 'alice', 'bob', 'a1 before the backup');
      await deliver(log, bob, 'bob', 'alice', 'b1 before the backup');
      await alice.c.close();
      const made = await backupProfile({
        profile: profiles.alice,
        passphrase: PASS,
        out: file,
        backupPassphrase: 'backup words',
        crypto,
        kdf: KDF,
      });
      expect(made).toEqual({ messages: 2, contacts: 1 });

      // The backup goes stale: both ratchets move on after it was taken.
      alice = await enter(log, 'alice', profiles.alice);
      await deliver(log, alice, 'alice', 'bob', 'a2 after the backup');
      await deliver(log, bob, 'bob', 'alice', 'b2 after the backup');
      await deliver(log, alice, 'alice', 'bob', 'a3 after the backup');
      await alice.c.close();
      rmSync(profiles.alice, { recursive: true, force: true });

      const fresh = join(root, 'alice-restored');
      await expect(
        restoreProfile({
          profile: fresh,
          from: file,
          backupSecret: 'not the words',
          passphrase: PASS,
          crypto,
          kdf: KDF,
        }),
      ).rejects.toMatchObject({ code: 'WRONG_PASSPHRASE' });
      expect(existsSync(fresh)).toBe(false);
      const restored = await restoreProfile({
        profile: fresh,
        from: file,
        backupSecret: 'backup words',
        passphrase: PASS,
        crypto,
        kdf: KDF,
      });
      expect(restored).toEqual({ messages: 2, contacts: 1, sessions: 1 });

      alice = await enter(log, 'alice', fresh);
      expect(await texts(alice, 'bob')).toEqual([
        'out:a1 before the backup',
        'in:b1 before the backup',
      ]);
      await deliver(log, alice, 'alice', 'bob', 'a4 from the restored profile');
      await deliver(log, bob, 'bob', 'alice', 'b4 to the restored profile');
      // The restored ratchet state was stale, and the end-to-end repair re-secured it.
      expect([...alice.events, ...bob.events].some((e) => e.type === 'session-repaired')).toBe(
        true,
      );
      await deliver(log, alice, 'alice', 'bob', 'a5');
      await deliver(log, bob, 'bob', 'alice', 'b5');
      expect(await texts(alice, 'bob')).toEqual([
        'out:a1 before the backup',
        'in:b1 before the backup',
        'out:a4 from the restored profile',
        'in:b4 to the restored profile',
        'out:a5',
        'in:b5',
      ]);
      expect((await texts(bob, 'alice')).filter((t) => t.startsWith('in:'))).toEqual([
        'in:a1 before the backup',
        'in:a2 after the backup',
        'in:a3 after the backup',
        'in:a4 from the restored profile',
        'in:a5',
      ]);
      await alice.c.close();
      await bob.c.close();
    } finally {
      await relay.close();
    }
  });

  it('recovery key, plaintext-free file, and clear errors that write nothing', async () => {
    const { relay, profiles } = await startMtlsPair(join(root, 'offline'));
    await relay.close();
    const secret = 'a sentence only the backup knows';
    const s = await openNodeClient({ profile: profiles.alice, passphrase: PASS, crypto });
    await s.store.commit([
      {
        op: 'message.put',
        message: {
          id: '00'.repeat(16),
          peer: 'bob',
          direction: 'in',
          text: secret,
          sentAt: 1,
          storedAt: 1,
          status: 'received',
          shown: true,
        },
      },
    ]);
    await s.close();
    const file = join(root, 'rk.parley-backup');
    const made = await backupProfile({
      profile: profiles.alice,
      passphrase: PASS,
      out: file,
      crypto,
      kdf: KDF,
    });
    expect(made.recoveryKey).toMatch(/^([A-Z2-7]{4}-){7}[A-Z2-7]{4}$/);
    const bytes = readFileSync(file);
    expect(bytes.includes(Buffer.from(secret))).toBe(false);
    expect(bytes.includes(Buffer.from('SQLite format 3'))).toBe(false);
    await expect(
      backupProfile({ profile: profiles.alice, passphrase: PASS, out: file, crypto, kdf: KDF }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });

    await expect(
      backupProfile({
        profile: profiles.alice,
        passphrase: PASS,
        out: join(root, 'no-such-dir', 'x.backup'),
        crypto,
        kdf: KDF,
      }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const target = join(root, 'rk-restored');
    const opts = { profile: target, from: file, passphrase: PASS, crypto, kdf: KDF };
    const typed = (made.recoveryKey as string).toLowerCase().replaceAll('-', ' ');
    // Altered file: one ciphertext byte flipped.
    const altered = join(root, 'altered');
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 40] = (flipped[flipped.length - 40] as number) ^ 1;
    writeFileSync(altered, flipped);
    await expect(
      restoreProfile({ ...opts, from: altered, backupSecret: typed }),
    ).rejects.toMatchObject({ code: 'WRONG_PASSPHRASE' });
    const junk = join(root, 'junk');
    writeFileSync(junk, 'not a backup at all, just text');
    await expect(
      restoreProfile({ ...opts, from: junk, backupSecret: typed }),
    ).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(restoreProfile({ ...opts, backupSecret: 'AAAA-BBBB' })).rejects.toMatchObject({
      code: 'WRONG_PASSPHRASE',
    });
    expect(existsSync(target)).toBe(false);
    mkdirSync(join(root, 'occupied'));
    writeFileSync(join(root, 'occupied', 'notes.txt'), 'mine');
    await expect(
      restoreProfile({ ...opts, profile: join(root, 'occupied'), backupSecret: typed }),
    ).rejects.toMatchObject({ code: 'PROFILE_EXISTS' });
    expect(readFileSync(join(root, 'occupied', 'notes.txt'), 'utf8')).toBe('mine');

    await restoreProfile({ ...opts, backupSecret: typed });
    const r = await openNodeClient({ profile: target, passphrase: PASS, crypto });
    expect((await r.store.searchMessages('sentence')).map((m) => m.text)).toEqual([secret]);
    expect(r.account.name).toBe('alice');
    await r.close();
  });
});
