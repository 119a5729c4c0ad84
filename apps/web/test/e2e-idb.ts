/**
 * Reads this origin's raw IndexedDB contents from inside the page: every database,
 * store, key and value, with bytes as Latin-1 text, so a test can search them for
 * plaintext and compare snapshots.
 */
import type { Page } from 'playwright-core';

export function rawIndexedDb(page: Page): Promise<string> {
  return page.evaluate(async () => {
    const bytes = (v: ArrayBuffer | ArrayBufferView): string => {
      const u =
        v instanceof ArrayBuffer
          ? new Uint8Array(v)
          : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
      let s = '';
      for (const b of u) s += String.fromCharCode(b);
      return s;
    };
    const flat = (v: unknown): unknown => {
      if (v instanceof ArrayBuffer || ArrayBuffer.isView(v)) return bytes(v);
      if (Array.isArray(v)) return v.map(flat);
      if (v && typeof v === 'object')
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, flat(x)]));
      return v;
    };
    const req = <T>(r: IDBRequest<T>): Promise<T> =>
      new Promise((res, rej) => {
        r.onsuccess = () => res(r.result);
        r.onerror = () => rej(r.error);
      });
    const out: unknown[] = [];
    for (const info of await indexedDB.databases()) {
      if (!info.name) continue;
      const db = await new Promise<IDBDatabase>((res, rej) => {
        const r = indexedDB.open(info.name!);
        r.onsuccess = () => res(r.result);
        r.onerror = () => rej(r.error);
      });
      for (const store of Array.from(db.objectStoreNames)) {
        const tx = db.transaction(store, 'readonly');
        const os = tx.objectStore(store);
        const [keys, values] = await Promise.all([req(os.getAllKeys()), req(os.getAll())]);
        out.push({ db: info.name, store, keys: flat(keys), values: flat(values) });
      }
      db.close();
    }
    return JSON.stringify(out);
  });
}
