/**
 * Groups end to end: `parley group …`, `send --group` and `read --json` through the
 * real relay over real TLS (mtls), with four CLI profiles. One member is offline while
 * the group is made and used and catches up in order; a removed member's store holds
 * none of what is sent after its removal; the error paths say what is wrong.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPortableCrypto } from '@parley/crypto';
import { issueClient } from '@parley/pki';
import { openNodeClient, openProfile } from '@parley/client-node';
import { startRelay } from '@parley/server';
import type { RunningRelay } from '@parley/server';
import { parleyMain as parley } from './cli-main.js';

const NAMES = ['alice', 'bob', 'carol', 'dave'] as const;
type Name = (typeof NAMES)[number];

interface ReadLine {
  readonly id: string;
  readonly group?: string;
  readonly from: string;
  readonly text: string;
}

describe('parley groups through the real relay', () => {
  const root = mkdtempSync(join(tmpdir(), 'parley-cli-group-'));
  const data = join(root, 'relay');
  const dir = (n: Name): string => join(root, n);
  const pw = (n: Name): string => `pw-${n}`;
  const as = (n: Name, ...args: string[]) => parley(pw(n), ...args);
  let relay: RunningRelay;

  const readJson = async (n: Name): Promise<ReadLine[]> => {
    const r = await as(n, 'read', '--profile', dir(n), '--json');
    expect(r.code, r.stderr).toBe(0);
    return r.stdout
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as ReadLine);
  };
  const sendGroup = async (n: Name, text: string): Promise<string> => {
    const r = await as(n, 'send', '--profile', dir(n), '--group', 'team', text);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^[0-9a-f]{32}\n$/);
    return r.stdout.trim();
  };

  beforeAll(async () => {
    relay = await startRelay({ dataDir: data, port: 0, auth: 'mtls', logLevel: 'silent' });
    for (const n of NAMES) {
      const c = join(root, `creds-${n}`);
      await issueClient(data, n, c);
      const r = await as(
        n,
        'init',
        '--profile',
        dir(n),
        '--server',
        relay.url,
        '--cert',
        join(c, `${n}.crt`),
        '--key',
        join(c, `${n}.key`),
        '--ca',
        join(c, 'ca.crt'),
      );
      expect(r.code, r.stderr).toBe(0);
    }
  }, 120_000);
  afterAll(async () => {
    await relay.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('create, list --json, send --group, read --json; the offline member catches up in order', async () => {
    const c = await as(
      'alice',
      'group',
      'create',
      '--profile',
      dir('alice'),
      'team',
      'bob',
      'carol',
      'dave',
    );
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toBe('team: alice (admin), bob, carol, dave\n');
    const l = await as('alice', 'group', 'list', '--profile', dir('alice'), '--json');
    const [listed] = l.stdout
      .trim()
      .split('\n')
      .map((x) => JSON.parse(x) as Record<string, unknown>);
    expect(listed).toMatchObject({
      group: 'team',
      status: 'active',
      members: [
        { name: 'alice', role: 'admin' },
        { name: 'bob', role: 'member' },
        { name: 'carol', role: 'member' },
        { name: 'dave', role: 'member' },
      ],
    });
    // bob and carol take in the group; dave stays offline throughout.
    expect(await readJson('bob')).toEqual([]);
    expect(await readJson('carol')).toEqual([]);
    const ids = [await sendGroup('alice', 'one'), await sendGroup('alice', 'two')];
    ids.push(await sendGroup('bob', 'three from bob'));
    ids.push(await sendGroup('alice', 'four'));
    const bob = await readJson('bob');
    expect(bob.map((m) => [m.group, m.from, m.text])).toEqual([
      ['team', 'alice', 'one'],
      ['team', 'alice', 'two'],
      ['team', 'alice', 'four'],
    ]);
    const dave = await readJson('dave');
    expect(dave.map((m) => [m.group, m.from, m.text, m.id])).toEqual([
      ['team', 'alice', 'one', ids[0]],
      ['team', 'alice', 'two', ids[1]],
      ['team', 'bob', 'three from bob', ids[2]],
      ['team', 'alice', 'four', ids[3]],
    ]);
    const list = await as('dave', 'group', 'list', '--profile', dir('dave'));
    expect(list.stdout).toBe('team: alice (admin), bob, carol, dave\n');
  }, 180_000);

  it('errors: not an admin, unknown group, unknown member', async () => {
    const notAdmin = await as('bob', 'group', 'remove', '--profile', dir('bob'), 'team', 'carol');
    expect(notAdmin.code).toBe(1);
    expect(notAdmin.stderr).toMatch(/not an admin of team/);
    const unknown = await as('alice', 'send', '--profile', dir('alice'), '--group', 'nope', 'x');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/unknown group nope/);
    const who = await as('alice', 'group', 'add', '--profile', dir('alice'), 'team', 'zed');
    expect(who.code).toBe(1);
    expect(who.stderr).toMatch(/unknown member zed/);
  }, 120_000);

  it('a removed member reads nothing sent after its removal (its store holds none of it)', async () => {
    const r = await as('alice', 'group', 'remove', '--profile', dir('alice'), 'team', 'dave');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('team: alice (admin), bob, carol\n');
    const secret = 'zanzibar after the removal';
    await sendGroup('alice', secret);
    const carol = await readJson('carol');
    expect(carol.map((m) => m.text)).toContain(secret);
    expect((await readJson('dave')).map((m) => m.text)).not.toContain(secret);
    const list = await as('dave', 'group', 'list', '--profile', dir('dave'));
    expect(list.stdout).toMatch(/^team \[removed\]/);
    // Open dave's store and look for the plaintext anywhere in its history.
    const store = await openProfile(dir('dave'), pw('dave'), { crypto: createPortableCrypto() });
    try {
      expect(await store.searchMessages('zanzibar')).toEqual([]);
      const all = await store.listMessages();
      expect(all.map((m) => m.text)).toContain('one');
      expect(all.some((m) => m.text.includes('zanzibar'))).toBe(false);
    } finally {
      await store.close();
    }
  }, 180_000);

  it('group join: the first creates the shared room, the next is added by its admin online', async () => {
    const first = await as('carol', 'group', 'join', '--profile', dir('carol'), 'lobby');
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toBe('lobby (room): carol (admin)\n');
    // carol stays online (its client answers join requests as the room's admin).
    const carol = await openNodeClient({ profile: dir('carol'), passphrase: pw('carol') });
    try {
      await carol.connect();
      const joined = await as('bob', 'group', 'join', '--profile', dir('bob'), 'lobby');
      expect(joined.code, joined.stderr).toBe(0);
      expect(joined.stdout).toBe('lobby (room): bob, carol (admin)\n');
      const sent = await as('bob', 'send', '--profile', dir('bob'), '--group', 'lobby', 'hi room');
      expect(sent.code, sent.stderr).toBe(0);
      const id = sent.stdout.trim();
      for (let i = 0; i < 500; i++) {
        const m = await carol.client.messages(
          (await carol.client.groupList()).find((g) => g.name === 'lobby')!.conversation,
        );
        if (m.some((x) => x.id === id)) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      const conv = (await carol.client.groupList()).find((g) => g.name === 'lobby')!.conversation;
      expect((await carol.client.messages(conv)).map((m) => [m.from, m.text])).toEqual([
        ['bob', 'hi room'],
      ]);
    } finally {
      await carol.close();
    }
  }, 180_000);
});
