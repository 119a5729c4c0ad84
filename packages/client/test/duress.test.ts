/**
 * Duress passphrase and passphrase change (M40) on real SQLCipher profile folders:
 * the header looks the same with or without a duress passphrase; unlocking with it
 * leaves no byte of the identity secret, of any message text or of the old encrypted
 * database in the folder, the real passphrase opens nothing afterwards (even with the
 * old header put back), and the empty profile it opens then behaves like any profile.
 */
import {
  cpSync,
  linkSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createPortableCrypto } from '@parley/crypto';
import { META_ACCOUNT, META_IDENTITY_SECRET, MIN_KDF_MEMORY_KIB } from '@parley/client';
import type { StoredMessage } from '@parley/client';
import {
  changePassphrase,
  initProfile,
  openProfile,
  PROFILE_DB_FILE,
  PROFILE_HEADER_FILE,
  setDuressPassphrase,
} from '@parley/client-node';

const crypto = createPortableCrypto();
const root = mkdtempSync(join(tmpdir(), 'parley-duress-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const kdf = { memoryKiB: MIN_KDF_MEMORY_KIB, iterations: 1 };
let n = 0;

const SECRET_TEXTS = ['the safe house is on Rue Morgue 17', 'bring the ledger at dawn'];

const msg = (id: string, text: string, direction: 'in' | 'out'): StoredMessage => ({
  id,
  peer: 'bob',
  direction,
  text,
  sentAt: 1,
  storedAt: 2,
  status: direction === 'in' ? 'received' : 'delivered',
  shown: true,
});

async function makeProfile(): Promise<{ dir: string; seed: Uint8Array }> {
  const dir = join(root, `p${n++}`);
  await initProfile({
    profile: dir,
    passphrase: 'real passphrase',
    server: 'wss://127.0.0.1:1',
    mode: 'open',
    name: 'alice',
    caPem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
    kdf,
  });
  const s = await openProfile(dir, 'real passphrase', { crypto });
  // Enough history to span many pages, so the wipe has a real file to destroy.
  const filler = Array.from({ length: 300 }, (_, i) => ({
    op: 'message.put' as const,
    message: msg(`f${i}`, `filler message number ${i}`, 'in'),
  }));
  await s.commit([
    ...filler,
    { op: 'message.put', message: msg('o1', SECRET_TEXTS[0] as string, 'out') },
    { op: 'message.put', message: msg('o2', SECRET_TEXTS[1] as string, 'out') },
    {
      op: 'contact.put',
      contact: {
        name: 'bob',
        deviceId: 1,
        identityKey: new Uint8Array(32).fill(3),
        trust: 'unverified',
        addedAt: 1,
        updatedAt: 1,
      },
    },
  ]);
  const seed = (await s.getMeta(META_IDENTITY_SECRET)) as Uint8Array;
  await s.close();
  return { dir, seed };
}

function folderBytes(dir: string): { name: string; bytes: Buffer }[] {
  return readdirSync(dir).map((f) => ({ name: f, bytes: readFileSync(join(dir, f)) }));
}

describe('duress passphrase', () => {
  it('a header with a duress passphrase has the same shape and size as one without', async () => {
    const a = await makeProfile();
    const b = await makeProfile();
    await setDuressPassphrase({
      profile: b.dir,
      passphrase: 'real passphrase',
      newPassphrase: 'duress words',
      crypto,
    });
    const ha = JSON.parse(readFileSync(join(a.dir, PROFILE_HEADER_FILE), 'utf8')) as object;
    const hb = JSON.parse(readFileSync(join(b.dir, PROFILE_HEADER_FILE), 'utf8')) as object;
    const shape = (h: object): unknown =>
      JSON.parse(JSON.stringify(h, (_k, v: unknown) => (typeof v === 'string' ? v.length : v)));
    expect(shape(hb)).toEqual(shape(ha));
    expect(readFileSync(join(b.dir, PROFILE_HEADER_FILE)).length).toBe(
      readFileSync(join(a.dir, PROFILE_HEADER_FILE)).length,
    );
  });

  it('unlocking with it wipes keys and history and opens an empty profile of the same account', async () => {
    const { dir, seed } = await makeProfile();
    await setDuressPassphrase({
      profile: dir,
      passphrase: 'real passphrase',
      newPassphrase: 'duress words',
      crypto,
    });
    const oldDb = readFileSync(join(dir, PROFILE_DB_FILE));
    const oldHeaderCopy = join(root, `header-${n}.json`);
    cpSync(join(dir, PROFILE_HEADER_FILE), oldHeaderCopy);

    // A second name for the old database's inode shows what happened to its bytes:
    // overwritten in place before the unlink, not merely unlinked.
    const link = join(root, `link-${n}`);
    linkSync(join(dir, PROFILE_DB_FILE), link);

    const decoy = await openProfile(dir, 'duress words', { crypto });
    expect(await decoy.listContacts()).toEqual([]);
    expect(await decoy.listMessages()).toEqual([]);
    expect(await decoy.listConversations()).toEqual([]);
    const account = JSON.parse(
      new TextDecoder().decode(await decoy.getMeta(META_ACCOUNT)),
    ) as Record<string, unknown>;
    expect(account).toMatchObject({ name: 'alice', mode: 'open', registered: false });
    const newSeed = (await decoy.getMeta(META_IDENTITY_SECRET)) as Uint8Array;
    expect(newSeed).toHaveLength(32);
    expect(Buffer.from(newSeed).equals(Buffer.from(seed))).toBe(false);
    await decoy.close();

    // Nothing of the real profile remains in the folder: not the identity secret, not a
    // message text, not one page-sized piece of the old encrypted database.
    const files = folderBytes(dir);
    expect(files.map((f) => f.name).sort()).toEqual([PROFILE_HEADER_FILE, PROFILE_DB_FILE]);
    for (const f of files) {
      expect(f.bytes.includes(Buffer.from(seed)), `${f.name}: identity secret`).toBe(false);
      expect(f.bytes.includes(Buffer.from(seed.subarray(0, 16)))).toBe(false);
      for (const t of SECRET_TEXTS) expect(f.bytes.includes(Buffer.from(t))).toBe(false);
      for (let at = 0; at + 64 <= oldDb.length; at += 4096) {
        expect(f.bytes.includes(oldDb.subarray(at, at + 64)), `${f.name}: old page ${at}`).toBe(
          false,
        );
      }
    }

    const overwritten = readFileSync(link);
    expect(overwritten.length).toBe(oldDb.length);
    for (let at = 0; at + 64 <= oldDb.length; at += 4096) {
      expect(overwritten.includes(oldDb.subarray(at, at + 64)), `old page ${at} survived`).toBe(
        false,
      );
    }

    // The real passphrase opens nothing, even with the old header put back.
    await expect(openProfile(dir, 'real passphrase', { crypto })).rejects.toMatchObject({
      code: 'WRONG_PASSPHRASE',
    });
    const kept = join(root, `kept-${n}`);
    cpSync(dir, kept, { recursive: true });
    cpSync(oldHeaderCopy, join(kept, PROFILE_HEADER_FILE));
    await expect(openProfile(kept, 'real passphrase', { crypto })).rejects.toMatchObject({
      code: 'PROFILE_CORRUPT',
    });

    // From now on the duress passphrase is this profile's ordinary passphrase.
    const again = await openProfile(dir, 'duress words', { crypto });
    await again.commit([{ op: 'message.put', message: msg('d1', 'new life', 'out') }]);
    await again.close();
    const third = await openProfile(dir, 'duress words', { crypto });
    expect((await third.listMessages()).map((m) => m.text)).toEqual(['new life']);
    await third.close();
  });

  it('refuses a duress passphrase equal to the real one, and a change to the duress one', async () => {
    const { dir } = await makeProfile();
    await expect(
      setDuressPassphrase({
        profile: dir,
        passphrase: 'real passphrase',
        newPassphrase: 'real passphrase',
        crypto,
      }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await setDuressPassphrase({
      profile: dir,
      passphrase: 'real passphrase',
      newPassphrase: 'duress words',
      crypto,
    });
    await expect(
      changePassphrase({
        profile: dir,
        passphrase: 'real passphrase',
        newPassphrase: 'duress words',
        crypto,
      }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const s = await openProfile(dir, 'real passphrase', { crypto });
    expect((await s.listMessages('bob')).length).toBe(302);
    await s.close();
  });
});

describe('passphrase change', () => {
  it('re-encrypts under the new passphrase; the old one fails; the duress one still works', async () => {
    const { dir } = await makeProfile();
    await setDuressPassphrase({
      profile: dir,
      passphrase: 'real passphrase',
      newPassphrase: 'duress words',
      crypto,
    });
    const before = readFileSync(join(dir, PROFILE_DB_FILE));
    await changePassphrase({
      profile: dir,
      passphrase: 'real passphrase',
      newPassphrase: 'brand new passphrase',
      crypto,
    });
    expect(readdirSync(dir).sort()).toEqual([PROFILE_HEADER_FILE, PROFILE_DB_FILE]);
    // Every page was rewritten under the new key.
    const after = readFileSync(join(dir, PROFILE_DB_FILE));
    expect(after.subarray(4096, 4096 + 64).equals(before.subarray(4096, 4096 + 64))).toBe(false);
    await expect(openProfile(dir, 'real passphrase', { crypto })).rejects.toMatchObject({
      code: 'WRONG_PASSPHRASE',
    });
    const s = await openProfile(dir, 'brand new passphrase', { crypto });
    expect((await s.listMessages('bob')).map((m) => m.text)).toContain(SECRET_TEXTS[0]);
    await s.close();
    const decoy = await openProfile(dir, 'duress words', { crypto });
    expect(await decoy.listMessages()).toEqual([]);
    await decoy.close();
  });

  it('an interrupted change: whichever passphrase the database answers to opens it', async () => {
    const { dir } = await makeProfile();
    const before = join(root, `before-${n}`);
    cpSync(dir, before, { recursive: true });
    const oldHeader = readFileSync(join(dir, PROFILE_HEADER_FILE));
    await changePassphrase({
      profile: dir,
      passphrase: 'real passphrase',
      newPassphrase: 'brand new passphrase',
      crypto,
    });
    const newHeader = readFileSync(join(dir, PROFILE_HEADER_FILE));

    // Crash after the rekey, before the header was replaced.
    const after = join(root, `after-${n}`);
    cpSync(dir, after, { recursive: true });
    writeFileSync(join(after, PROFILE_HEADER_FILE), oldHeader);
    writeFileSync(join(after, 'profile.json.next'), newHeader);
    await expect(openProfile(after, 'real passphrase', { crypto })).rejects.toMatchObject({
      code: 'WRONG_PASSPHRASE',
      message: expect.stringMatching(/interrupted.*use the new passphrase/) as unknown,
    });
    const finished = await openProfile(after, 'brand new passphrase', { crypto });
    expect((await finished.listMessages('bob')).length).toBe(302);
    await finished.close();
    expect(readFileSync(join(after, PROFILE_HEADER_FILE)).equals(newHeader)).toBe(true);
    expect(readdirSync(after).sort()).toEqual([PROFILE_HEADER_FILE, PROFILE_DB_FILE]);

    // Crash before the rekey committed: the old passphrase still opens, the new one not.
    writeFileSync(join(before, 'profile.json.next'), newHeader);
    await expect(openProfile(before, 'brand new passphrase', { crypto })).rejects.toMatchObject({
      code: 'WRONG_PASSPHRASE',
    });
    expect(readFileSync(join(before, PROFILE_HEADER_FILE)).equals(oldHeader)).toBe(true);
    const old = await openProfile(before, 'real passphrase', { crypto });
    expect((await old.listMessages('bob')).length).toBe(302);
    await old.close();
  });
});
