/// <reference lib="dom" />
/**
 * The test page for the IndexedDB store: runs the client store contract suite in the
 * browser, and offers the raw-contents and wrong-passphrase probes the Node side calls
 * through `page.evaluate`.
 */
import { createPortableCrypto, toHex, utf8Encode } from '@parley/crypto';
import { MIN_KDF_MEMORY_KIB } from '@parley/client';
import type { ClientStore, OutboxEntry, StoreWrite } from '@parley/client';
import { storeContract } from '../../../../packages/client/test/store-contract.js';
import type { StoreHarness } from '../../../../packages/client/test/store-contract.js';
import { storeSearchContract } from '../../../../packages/client/test/store-search-contract.js';
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
const indexeddb: StoreHarness = {
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
};
storeContract('indexeddb', indexeddb);
storeSearchContract('indexeddb', indexeddb);

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

/**
 * A batch whose second IndexedDB request fails: the first must not land either (one
 * transaction per batch), in memory or on disk after reopening.
 */
async function failMidBatch(profile: string): Promise<string> {
  const s = await createIdbProfile(profile, PASS, cheap);
  await s.commit([{ op: 'session.put', peer: 'bob', deviceId: 1, state: new Uint8Array([1]) }]);
  const put = IDBObjectStore.prototype.put;
  let calls = 0;
  IDBObjectStore.prototype.put = function (this: IDBObjectStore, ...args: Parameters<typeof put>) {
    if (++calls === 2) throw new DOMException('injected failure', 'DataError');
    return put.apply(this, args);
  };
  let outcome = 'committed';
  try {
    await s.commit([
      { op: 'session.put', peer: 'bob', deviceId: 1, state: new Uint8Array([2]) },
      {
        op: 'message.put',
        message: {
          id: 'm1',
          peer: 'bob',
          direction: 'in',
          text: 'decrypted',
          sentAt: 1,
          storedAt: 1,
          status: 'received',
          shown: false,
        },
      },
    ]);
  } catch (err) {
    outcome = `error:${String((err as { code?: string }).code)}`;
  } finally {
    IDBObjectStore.prototype.put = put;
  }
  const inMemory = `${(await s.getSession('bob', 1))?.[0]}/${(await s.listMessages('bob')).length}`;
  await s.close();
  const r = await openIdbProfile(profile, PASS, { crypto });
  const onDisk = `${(await r.getSession('bob', 1))?.[0]}/${(await r.listMessages('bob')).length}`;
  await r.close();
  return `${outcome} memory=${inMemory} disk=${onDisk}`;
}

/**
 * A profile holding an outbox from before typed records (version 2: untyped entries,
 * JSON meta records `outbox:<wire id>`) reopens with typed records and no old keys.
 */
async function legacyOutbox(profile: string): Promise<unknown> {
  const s = await createIdbProfile(profile, PASS, cheap);
  const entry = (id: string, createdAt: number): unknown => ({
    id,
    peer: 'bob',
    deviceId: 1,
    payload: new Uint8Array([1]),
    createdAt,
    attempts: 0,
  });
  // Written as a version-2 client wrote them; the store takes them as given.
  const legacy = [
    {
      op: 'message.put',
      message: {
        id: 'm1',
        peer: 'bob',
        direction: 'out',
        text: 'hello',
        sentAt: 1,
        storedAt: 1,
        status: 'sending',
        shown: true,
      },
    },
    { op: 'outbox.put', entry: entry('m1', 1) },
    { op: 'outbox.put', entry: entry('t1', 2) },
    { op: 'outbox.put', entry: entry('w2', 3) },
    {
      op: 'meta.put',
      key: 'outbox:w2',
      value: utf8Encode('{"frame":"send","kind":"msg","message":"m1"}'),
    },
    {
      op: 'meta.put',
      key: 'outbox:w0',
      value: utf8Encode('{"frame":"send","kind":"msg","message":"m1"}'),
    },
  ] as unknown as StoreWrite[];
  await s.commit(legacy);
  await s.close();
  const r = await openIdbProfile(profile, PASS, { crypto });
  const pick = (e: OutboxEntry | undefined): unknown =>
    e && [e.id, e.peer, e.frame, e.kind, e.message ?? null, e.state];
  const out = {
    pending: (await r.listOutbox()).map(pick),
    w0: pick(await r.getOutbox('w0')),
    meta: [await r.getMeta('outbox:w2'), await r.getMeta('outbox:w0')].map((v) => v === undefined),
  };
  await r.close();
  return out;
}

const api = {
  legacyOutbox,
  failMidBatch,
  runContract: runCollected,
  rawDump,
  writeSecretHistory,
  tryOpen,
  deleteProfile: deleteIdbProfile,
  hex: (s: string) => toHex(utf8Encode(s)),
};
(globalThis as unknown as { parleyTest: typeof api }).parleyTest = api;
document.title = 'ready';
