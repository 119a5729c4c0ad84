/**
 * The `BlobStore` contract against the memory store and the default store (SQLite index
 * + files, reopened from disk to show what survives a restart).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { MemoryBlobStore, SqliteFileBlobStore } from '../src/blobs/index.js';
import { runBlobStoreContract } from './blob-store-contract.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

runBlobStoreContract('memory', () => ({ store: new MemoryBlobStore() }));
runBlobStoreContract('sqlite + files', () => {
  const d = mkdtempSync(join(tmpdir(), 'parley-blobs-'));
  dirs.push(d);
  return { store: new SqliteFileBlobStore(d), reopen: () => new SqliteFileBlobStore(d) };
});
