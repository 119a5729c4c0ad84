/// <reference lib="dom" />
/** Reads every Parley database of this origin raw, as the browser keeps it on disk. */
import { toHex } from '@parley/crypto';
import { listIdbProfiles } from '../../src/platform/idb-store.js';

/** Every database of ours, every store, every key and value, as hex and JSON text. */
export async function rawDump(): Promise<string> {
  const parts: string[] = [];
  const enc = (v: unknown): string =>
    v instanceof Uint8Array
      ? toHex(v)
      : v instanceof ArrayBuffer
        ? toHex(new Uint8Array(v))
        : JSON.stringify(v);
  for (const profile of await listIdbProfiles()) {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const req = indexedDB.open(`parley-profile:${profile}`);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    for (const storeName of Array.from(db.objectStoreNames)) {
      const tx = db.transaction(storeName, 'readonly');
      const store = tx.objectStore(storeName);
      const [keys, values] = await Promise.all([
        new Promise<IDBValidKey[]>(
          (r) =>
            (store.getAllKeys().onsuccess = (e) =>
              r((e.target as IDBRequest<IDBValidKey[]>).result)),
        ),
        new Promise<unknown[]>(
          (r) => (store.getAll().onsuccess = (e) => r((e.target as IDBRequest<unknown[]>).result)),
        ),
      ]);
      keys.forEach((key, i) => parts.push(`${profile}/${storeName}/${enc(key)}=${enc(values[i])}`));
    }
    db.close();
  }
  return parts.join('\n');
}
