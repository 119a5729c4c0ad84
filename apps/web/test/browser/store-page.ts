/// <reference lib="dom" />
/**
 * The test page for the IndexedDB store: runs the client store contract suite in the
 * browser, and offers the raw-contents and wrong-passphrase probes the Node side calls
 * through `page.evaluate`.
 */
import { createPortableCrypto, toHex, utf8Encode } from '@parley/crypto';
import { MIN_KDF_MEMORY_KIB } from '@parley/client';
import type { ClientStore, StoreWrite } from '@parley/client';
import { storeContract } from '../../../../packages/client/test/store-contract.js';
import {
  createIdbProfile,
  deleteIdbProfile,
  openIdbProfile,
} from '../../src/platform/idb-store.js';
import { rawDump } from './raw-dump.js';
import { runCollected } from './vitest-shim.js';

const crypto = createPortableCrypto();
const cheap = { crypto, kdf: { memoryKiB: MIN_KDF_MEMORY_KIB, iterations: 1 } };
const PASS = 'correct horse';

let n = 0;
const names = new WeakMap<ClientStore, string>();
storeContract('indexeddb', {
  open: async () => {
    const name = `contract-${n++}`;
    const s = await createIdbProfile(name, PASS, cheap);
    names.set(s, name);
    return s;
  },
  reopen: async (s) => {
    const name = names.get(s) as string;
    await s.close();
    const r = await openIdbProfile(name, PASS, { crypto });
    names.set(r, name);
    return r;
  },
});

async function writeSecretHistory(profile: string, text: string): Promise<void> {
  const s = await createIdbProfile(profile, PASS, cheap);
  const writes: StoreWrite[] = [
    { op: 'session.put', peer: 'bob', deviceId: 1, state: utf8Encode(`state:${text}`) },
    {
      op: 'message.put',
      message: {
        id: 'aa11',
        peer: 'bob',
        direction: 'out',
        text,
        sentAt: 1,
        storedAt: 2,
        status: 'sending',
        shown: true,
      },
    },
    { op: 'meta.put', key: 'note', value: utf8Encode(text) },
  ];
  await s.commit(writes);
  await s.close();
}

async function tryOpen(profile: string, passphrase: string): Promise<string> {
  try {
    const s = await openIdbProfile(profile, passphrase, { crypto });
    const count = (await s.listMessages()).length;
    await s.close();
    return `ok:${count}`;
  } catch (err) {
    return `error:${String((err as { code?: string }).code)}:${(err as Error).message}`;
  }
}

const api = {
  runContract: runCollected,
  rawDump,
  writeSecretHistory,
  tryOpen,
  deleteProfile: deleteIdbProfile,
  hex: (s: string) => toHex(utf8Encode(s)),
};
(globalThis as unknown as { parleyTest: typeof api }).parleyTest = api;
document.title = 'ready';
