import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryStore } from '../src/storage/memory.js';
import { SqliteStore } from '../src/storage/sqlite.js';
import type { NewMail } from '../src/storage/types.js';
import { runStoreContract } from './store-contract.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

runStoreContract('memory', () => Promise.resolve({ store: new MemoryStore() }));
runStoreContract('sqlite (writer thread)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-store-'));
  dirs.push(dir);
  const file = join(dir, 'relay.db');
  return {
    store: await SqliteStore.open(file),
    reopen: () => SqliteStore.open(file),
  };
});
runStoreContract('sqlite (inline)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-store-'));
  dirs.push(dir);
  const file = join(dir, 'relay.db');
  return Promise.resolve({
    store: new SqliteStore(file),
    reopen: () => Promise.resolve(new SqliteStore(file)),
  });
});

describe('SqliteStore server ids', () => {
  it('never hands out again an id shown before its mail was committed (crash)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-store-'));
    dirs.push(dir);
    const file = join(dir, 'relay.db');
    const first = await SqliteStore.open(file);
    const mail = (i: number): NewMail => ({
      recipient: { name: 'bob', deviceId: 1 },
      sender: { name: 'alice', deviceId: 1 },
      clientMessageId: new Uint8Array(16).fill(i),
      kind: 'message',
      payload: new Uint8Array([i]),
      storedAt: 1,
      expiresAt: 2 ** 40,
    });
    // Once the first reservation is durable, ids may be shown early.
    const warm = await first.submit(mail(1), 100);
    await warm.committed;
    const early = await first.submit(mail(2), 100);
    expect(early.idDurable).toBe(true);
    const shown = early.decision.ok ? early.decision.serverMessageId : -1;
    // "Crash": a second process opens the database before that mail is committed.
    const second = new SqliteStore(file);
    const after = await second.enqueue(mail(3), 100);
    expect(after.ok && after.serverMessageId > shown).toBe(true);
    await second.close();
    await early.committed;
    await first.close();
  });
});
