/**
 * The SQLite writer thread. It owns the relay database's only write connection and
 * commits one batch at a time, so the fsync of each group commit (synchronous=FULL)
 * blocks this thread, never the relay's event loop.
 *
 * Protocol: the first message is `{ file, synchronous }`; it answers `{ ready: true }`
 * or `{ error }`. Then each `{ id, batch }` is answered by `{ id, outcomes }` after the
 * commit, in order.
 */
import { parentPort } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import {
  openDatabase,
  prepareStatements,
  runBatch,
  type Statements,
  type WriteRequest,
} from './sqlite-db.js';

let db: Database.Database | undefined;
let statements: Statements | undefined;

parentPort?.on(
  'message',
  (
    m:
      | { file: string; synchronous: 'full' | 'normal' }
      | { id: number; batch: WriteRequest[] }
      | { close: true },
  ) => {
    if ('file' in m) {
      try {
        db = openDatabase(m.file, m.synchronous);
        statements = prepareStatements(db);
        parentPort?.postMessage({ ready: true });
      } catch (err) {
        parentPort?.postMessage({ error: (err as Error).message });
      }
      return;
    }
    if ('close' in m) {
      db?.close();
      db = undefined;
      parentPort?.postMessage({ closed: true });
      return;
    }
    if (!db || !statements) {
      parentPort?.postMessage({
        id: m.id,
        outcomes: m.batch.map(() => ({ ok: false, message: 'writer not open' })),
      });
      return;
    }
    parentPort?.postMessage({ id: m.id, outcomes: runBatch(db, statements, m.batch) });
  },
);
