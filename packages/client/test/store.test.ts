import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { createPortableCrypto } from '@parley/crypto';
import { MemoryStore, MIN_KDF_MEMORY_KIB } from '@parley/client';
import { createProfile, openProfile } from '@parley/client-node';
import type { ClientStore } from '@parley/client';
import { storeContract } from './store-contract.js';
import type { StoreHarness } from './store-contract.js';
import { storeSearchContract } from './store-search-contract.js';

const crypto = createPortableCrypto();
const root = mkdtempSync(join(tmpdir(), 'parley-store-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const memory: StoreHarness = { open: async () => new MemoryStore() };
storeContract('memory', memory);
storeSearchContract('memory', memory);

let n = 0;
const dirs = new WeakMap<ClientStore, string>();
const cheap = { crypto, kdf: { memoryKiB: MIN_KDF_MEMORY_KIB, iterations: 1 } };
const sqlcipher: StoreHarness = {
  open: async () => {
    const dir = join(root, `p${n++}`);
    const s = await createProfile(dir, 'correct horse', cheap);
    dirs.set(s, dir);
    return s;
  },
  reopen: async (s) => {
    const dir = dirs.get(s) as string;
    await s.close();
    return openProfile(dir, 'correct horse', cheap);
  },
};
storeContract('sqlcipher', sqlcipher);
storeSearchContract('sqlcipher', sqlcipher);
