import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { MemoryStore } from '../src/storage/memory.js';
import { SqliteStore } from '../src/storage/sqlite.js';
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
