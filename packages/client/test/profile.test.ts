import { readFileSync, readdirSync, rmSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createPortableCrypto } from '@parley/crypto';
import { MIN_KDF_MEMORY_KIB } from '@parley/client';
import {
  createProfile,
  openProfile,
  PROFILE_DB_FILE,
  PROFILE_HEADER_FILE,
} from '@parley/client-node';

const crypto = createPortableCrypto();
const root = mkdtempSync(join(tmpdir(), 'parley-profile-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const cheap = { crypto, kdf: { memoryKiB: MIN_KDF_MEMORY_KIB, iterations: 1 } };
let n = 0;

/** Every file of the profile with its bytes and mtime: "touched" means any change here. */
function snapshot(dir: string): Record<string, { bytes: string; mtimeMs: number }> {
  const out: Record<string, { bytes: string; mtimeMs: number }> = {};
  for (const f of readdirSync(dir).sort()) {
    out[f] = {
      bytes: readFileSync(join(dir, f)).toString('hex'),
      mtimeMs: statSync(join(dir, f)).mtimeMs,
    };
  }
  return out;
}

async function makeProfile(secretText: string): Promise<string> {
  const dir = join(root, `p${n++}`);
  const s = await createProfile(dir, 'right passphrase', cheap);
  await s.commit([
    { op: 'meta.put', key: 'identity', value: new Uint8Array(32).fill(0x5a) },
    {
      op: 'message.put',
      message: {
        id: 'm1',
        peer: 'bob',
        direction: 'in',
        text: secretText,
        sentAt: 1,
        storedAt: 2,
        status: 'received',
        shown: false,
      },
    },
  ]);
  await s.close();
  return dir;
}

describe('profile (encrypted SQLite + Argon2id header)', () => {
  it('encrypts the database: no plaintext or key bytes on disk', async () => {
    const text = 'the-eagle-lands-at-midnight';
    const dir = await makeProfile(text);
    for (const f of readdirSync(dir)) {
      const bytes = readFileSync(join(dir, f));
      expect(bytes.includes(Buffer.from(text))).toBe(false);
      expect(bytes.includes(Buffer.from('SQLite format 3'))).toBe(false);
      expect(bytes.includes(Buffer.alloc(32, 0x5a))).toBe(false);
    }
    expect(statSync(join(dir, PROFILE_DB_FILE)).mode & 0o077).toBe(0);
    const s = await openProfile(dir, 'right passphrase', cheap);
    expect((await s.listMessages('bob'))[0]?.text).toBe(text);
    await s.close();
  });

  it('wrong passphrase: typed error and the profile is not touched', async () => {
    const dir = await makeProfile('hello');
    const before = snapshot(dir);
    await expect(openProfile(dir, 'wrong passphrase', cheap)).rejects.toMatchObject({
      name: 'ClientError',
      code: 'WRONG_PASSPHRASE',
    });
    expect(snapshot(dir)).toEqual(before);
    const s = await openProfile(dir, 'right passphrase', cheap);
    expect(await s.listMessages('bob')).toHaveLength(1);
    await s.close();
  });

  it('corrupt header: PROFILE_CORRUPT, database left as it was', async () => {
    const dir = await makeProfile('hello');
    const header = readFileSync(join(dir, PROFILE_HEADER_FILE), 'utf8');
    writeFileSync(join(dir, PROFILE_HEADER_FILE), header.slice(0, header.length / 2));
    const before = snapshot(dir);
    await expect(openProfile(dir, 'right passphrase', cheap)).rejects.toMatchObject({
      code: 'PROFILE_CORRUPT',
    });
    expect(snapshot(dir)).toEqual(before);
    // Restoring the header recovers everything: nothing was lost.
    writeFileSync(join(dir, PROFILE_HEADER_FILE), header);
    const s = await openProfile(dir, 'right passphrase', cheap);
    expect((await s.listMessages('bob'))[0]?.text).toBe('hello');
    await s.close();
  });

  it('corrupt database: PROFILE_CORRUPT, not mistaken for a wrong passphrase, bytes kept', async () => {
    const dir = await makeProfile('hello');
    const dbPath = join(dir, PROFILE_DB_FILE);
    const db = readFileSync(dbPath);
    const damaged = Buffer.from(db);
    for (let i = 0; i < 64; i++) damaged[i] = (damaged[i] as number) ^ 0xff;
    writeFileSync(dbPath, damaged);
    await expect(openProfile(dir, 'right passphrase', cheap)).rejects.toMatchObject({
      code: 'PROFILE_CORRUPT',
    });
    expect(readFileSync(dbPath).equals(damaged)).toBe(true);
  });

  it('refuses to create over an existing profile and reports a missing one', async () => {
    const dir = await makeProfile('hello');
    await expect(createProfile(dir, 'x', cheap)).rejects.toMatchObject({ code: 'PROFILE_EXISTS' });
    await expect(openProfile(join(root, 'nope'), 'x', cheap)).rejects.toMatchObject({
      code: 'PROFILE_NOT_FOUND',
    });
  });

  it('rejects a header whose KDF cost was lowered below the floor', async () => {
    const dir = await makeProfile('hello');
    const h = JSON.parse(readFileSync(join(dir, PROFILE_HEADER_FILE), 'utf8')) as {
      kdf: { memoryKiB: number };
    };
    h.kdf.memoryKiB = 1;
    writeFileSync(join(dir, PROFILE_HEADER_FILE), JSON.stringify(h));
    await expect(openProfile(dir, 'right passphrase', cheap)).rejects.toMatchObject({
      code: 'PROFILE_CORRUPT',
    });
  });
});
