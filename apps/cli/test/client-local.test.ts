/**
 * What a person keeps, through `main()` and real relays: `parley search` over messages
 * actually sent (and no word of them readable in the profile files), `parley passphrase`
 * (change; `--duress`, after which the duress passphrase shows exactly what a fresh
 * profile of the same account shows, with the same exit codes), `parley backup` and
 * `parley restore` (wrong passphrase: clear error, nothing written).
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createPortableCrypto } from '@parley/crypto';
import { META_IDENTITY_SECRET, MIN_KDF_MEMORY_KIB } from '@parley/client';
import { createKeyProfile, initProfile, openNodeClient, openProfile } from '@parley/client-node';
import { issueClient } from '@parley/pki';
import { startRelay } from '@parley/server';
import type { RunningRelay } from '@parley/server';
import { main } from '../src/main.js';

const crypto = createPortableCrypto();
const kdf = { memoryKiB: MIN_KDF_MEMORY_KIB, iterations: 1 };

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function parley(env: Record<string, string>, ...args: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  const before = new Map(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    const code = await main(['node', 'parley', ...args]);
    return { code, stdout, stderr };
  } finally {
    for (const [k, v] of before) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    o.mockRestore();
    e.mockRestore();
  }
}
const as = (passphrase: string, extra: Record<string, string> = {}) => ({
  PARLEY_PASSPHRASE: passphrase,
  ...extra,
});

function folderHolds(dir: string, needle: Buffer): string[] {
  return readdirSync(dir).filter((f) => readFileSync(join(dir, f)).includes(needle));
}

describe('parley search, backup and restore (mtls relay)', () => {
  const root = mkdtempSync(join(tmpdir(), 'parley-cli-local-'));
  const data = join(root, 'relay');
  const pa = join(root, 'alice');
  const pb = join(root, 'bob');
  let relay: RunningRelay;

  beforeAll(async () => {
    relay = await startRelay({ dataDir: data, port: 0, auth: 'mtls', logLevel: 'silent' });
    for (const [n, p] of [
      ['alice', pa],
      ['bob', pb],
    ] as const) {
      const issued = await issueClient(data, n, join(root, `creds-${n}`));
      await initProfile({
        profile: p,
        passphrase: `pw-${n}`,
        server: relay.url,
        mode: 'mtls',
        certPem: readFileSync(issued.certPath, 'utf8'),
        keyPem: readFileSync(issued.keyPath, 'utf8'),
        caPem: readFileSync(issued.caPath, 'utf8'),
        crypto,
        kdf,
      });
      const c = await openNodeClient({ profile: p, passphrase: `pw-${n}`, crypto });
      await c.connect();
      await c.close();
    }
  });
  afterAll(async () => {
    await relay.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('search finds a word that was sent, newest first, per conversation, as JSON; no word on disk', async () => {
    for (const text of ['the quokka migration starts at noon', 'second quokka sighting']) {
      expect((await parley(as('pw-alice'), 'send', '--profile', pa, 'bob', text)).code).toBe(0);
    }
    expect((await parley(as('pw-bob'), 'read', '--profile', pb)).code).toBe(0);

    const hit = await parley(as('pw-bob'), 'search', '--profile', pb, 'quokka');
    expect(hit.code).toBe(0);
    expect(hit.stdout).toMatch(
      /^\[[^\]]+\] alice: second quokka sighting\n\[[^\]]+\] alice: the quokka migration starts at noon\n$/,
    );
    const json = await parley(as('pw-alice'), 'search', '--profile', pa, 'migr*', '--json');
    expect(json.code).toBe(0);
    const rows = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows).toMatchObject([
      { peer: 'bob', direction: 'out', text: 'the quokka migration starts at noon' },
    ]);
    const other = await parley(
      as('pw-bob'),
      'search',
      '--profile',
      pb,
      'quokka',
      '--peer',
      'carol',
    );
    expect(other).toMatchObject({ code: 0, stdout: 'no messages found\n' });
    const bad = await parley(as('pw-bob'), 'search', '--profile', pb, '!!');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/query: give at least one word/);

    for (const dir of [pa, pb]) {
      for (const needle of ['quokka', 'uokka', 'QUOKKA', 'sighting']) {
        expect(folderHolds(dir, Buffer.from(needle)), `${dir}: ${needle}`).toEqual([]);
      }
    }
  });

  it('backup, wipe, restore into a fresh folder; a wrong backup passphrase writes nothing', async () => {
    const file = join(root, 'alice.backup');
    const b = await parley(
      as('pw-alice', { PARLEY_BACKUP_PASSPHRASE: 'backup words' }),
      'backup',
      '--profile',
      pa,
      '--out',
      file,
    );
    expect(b.stderr).toBe('');
    expect(b).toMatchObject({ code: 0 });
    expect(b.stdout).toMatch(/^backup written to .*alice\.backup \(1 contacts, 2 messages\)\n$/);
    expect(b.stdout).not.toMatch(/recovery key/);

    const rk = await parley(as('pw-alice'), 'backup', '--profile', pa, '--out', `${file}.rk`);
    expect(rk.code).toBe(0);
    const key = /\n {2}([A-Z2-7-]{39})\n$/.exec(rk.stdout)?.[1];
    expect(key).toBeDefined();

    rmSync(pa, { recursive: true, force: true });
    const fresh = join(root, 'alice-restored');
    const wrong = await parley(
      as('pw-new', { PARLEY_BACKUP_PASSPHRASE: 'not the words' }),
      'restore',
      '--profile',
      fresh,
      '--from',
      file,
    );
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/wrong backup passphrase or recovery key.*nothing was written/);
    expect(existsSync(fresh)).toBe(false);

    const ok = await parley(
      as('pw-new', { PARLEY_BACKUP_PASSPHRASE: 'backup words' }),
      'restore',
      '--profile',
      fresh,
      '--from',
      file,
    );
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/restored into .* \(1 contacts, 2 messages\)/);
    expect(ok.stdout).toMatch(/sessions will be re-secured/);
    const found = await parley(as('pw-new'), 'search', '--profile', fresh, 'noon');
    expect(found.stdout).toMatch(/me → bob: the quokka migration starts at noon/);

    const byKey = await parley(
      as('pw-rk', { PARLEY_BACKUP_PASSPHRASE: key as string }),
      'restore',
      '--profile',
      join(root, 'alice-from-key'),
      '--from',
      `${file}.rk`,
    );
    expect(byKey.code).toBe(0);
  });

  it('mtls: after the duress passphrase the profile is what keygen makes for the name: no certificate yet', async () => {
    const set = await parley(
      as('pw-bob', { PARLEY_NEW_PASSPHRASE: 'bob duress' }),
      'passphrase',
      '--profile',
      pb,
      '--duress',
    );
    expect(set.code).toBe(0);
    const ref = join(root, 'fresh-bob');
    await createKeyProfile({
      profile: ref,
      passphrase: 'bob duress',
      name: 'bob',
      server: relay.url,
      crypto,
      kdf,
    });
    const commands = [['contacts'], ['read'], ['search', 'quokka'], ['contacts']];
    const seen = async (dir: string): Promise<Run[]> => {
      const runs: Run[] = [];
      for (const [cmd, ...rest] of commands)
        runs.push(await parley(as('bob duress'), cmd as string, '--profile', dir, ...rest));
      return runs;
    };
    const duressRuns = await seen(pb);
    expect(duressRuns).toEqual(await seen(ref));
    expect(duressRuns[0]?.code).toBe(1);
    expect(duressRuns[0]?.stderr).toMatch(/no certificate yet/);
  });
});

describe('parley passphrase [--duress] (open relay)', () => {
  const root = mkdtempSync(join(tmpdir(), 'parley-cli-duress-'));
  const pa = join(root, 'alice');
  const pb = join(root, 'bob');
  let relay: RunningRelay;

  beforeAll(async () => {
    relay = await startRelay({
      dataDir: join(root, 'relay'),
      port: 0,
      auth: 'open',
      logLevel: 'silent',
    });
    for (const [n, p] of [
      ['alice', pa],
      ['bob', pb],
    ] as const) {
      await initProfile({
        profile: p,
        passphrase: `pw-${n}`,
        server: relay.url,
        mode: 'open',
        name: n,
        caPem: relay.caPem,
        crypto,
        kdf,
      });
      const c = await openNodeClient({ profile: p, passphrase: `pw-${n}`, crypto });
      await c.connect();
      await c.close();
    }
  });
  afterAll(async () => {
    await relay.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('changes the passphrase: the old one fails, the new one opens the same history', async () => {
    expect((await parley(as('pw-bob'), 'send', '--profile', pb, 'alice', 'hello alice')).code).toBe(
      0,
    );
    const c = await parley(
      as('pw-bob', { PARLEY_NEW_PASSPHRASE: 'pw-bob-2' }),
      'passphrase',
      '--profile',
      pb,
    );
    expect(c).toMatchObject({ code: 0, stdout: 'passphrase changed\n' });
    const old = await parley(as('pw-bob'), 'contacts', '--profile', pb);
    expect(old.code).toBe(1);
    expect(old.stderr).toMatch(/wrong passphrase/);
    const now = await parley(as('pw-bob-2'), 'search', '--profile', pb, 'hello');
    expect(now.stdout).toMatch(/me → alice: hello alice/);
  });

  it('after the duress passphrase: nothing of the real profile left, and the same output as a fresh profile', async () => {
    const secretText = 'the archive is under the third floorboard';
    expect((await parley(as('pw-alice'), 'read', '--profile', pa)).stdout).toMatch(/hello alice/);
    expect((await parley(as('pw-alice'), 'send', '--profile', pa, 'bob', secretText)).code).toBe(0);
    const real = await openProfile(pa, 'pw-alice', { crypto });
    const seed = (await real.getMeta(META_IDENTITY_SECRET)) as Uint8Array;
    await real.close();
    const set = await parley(
      as('pw-alice', { PARLEY_NEW_PASSPHRASE: 'duress words' }),
      'passphrase',
      '--profile',
      pa,
      '--duress',
    );
    expect(set.code).toBe(0);
    expect(set.stdout).toMatch(/^duress passphrase set/);

    // A fresh, never-used profile of the same account on the same relay, for comparison.
    const ref = join(root, 'fresh-alice');
    await initProfile({
      profile: ref,
      passphrase: 'duress words',
      server: relay.url,
      mode: 'open',
      name: 'alice',
      caPem: relay.caPem,
      crypto,
      kdf,
    });
    const commands = [
      ['contacts'],
      ['search', 'archive'],
      ['read', '--json'],
      ['read'],
      ['contacts'],
    ];
    const seen = async (dir: string): Promise<Run[]> => {
      const runs: Run[] = [];
      for (const [cmd, ...rest] of commands)
        runs.push(await parley(as('duress words'), cmd as string, '--profile', dir, ...rest));
      return runs;
    };
    const duressRuns = await seen(pa);
    const freshRuns = await seen(ref);
    expect(duressRuns).toEqual(freshRuns);
    expect(duressRuns[0]).toEqual({ code: 0, stdout: 'no contacts yet\n', stderr: '' });

    for (const f of readdirSync(pa)) {
      const bytes = readFileSync(join(pa, f));
      expect(bytes.includes(Buffer.from(seed)), `${f}: identity secret`).toBe(false);
      expect(bytes.includes(Buffer.from(secretText)), `${f}: sent text`).toBe(false);
      expect(bytes.includes(Buffer.from('hello alice')), `${f}: received text`).toBe(false);
    }
    const realAgain = await parley(as('pw-alice'), 'contacts', '--profile', pa);
    expect(realAgain.code).toBe(1);
    expect(realAgain.stderr).toMatch(/wrong passphrase/);
  });
});
