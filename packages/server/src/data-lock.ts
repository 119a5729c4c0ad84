/**
 * One relay process per data folder. Two relays on one folder would interleave the
 * audit log's hash chain and fight over the database's writer, so the second one must
 * refuse to start. The lock is a file `DATA/relay.lock` holding the holder's PID,
 * created atomically (hard link of a fully written temp file, which fails if the lock
 * exists). A lock whose PID is no longer running was left by a crashed relay and is
 * taken over. Same-host only: a PID means nothing on another machine, so a data folder
 * on a shared disk used from two hosts is not protected.
 */
import { linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ServerError } from './errors.js';

/** Name of the lock file inside the data folder. */
export const DATA_LOCK_FILE = 'relay.lock';

/** A held lock; `release` is idempotent. */
export interface DataLock {
  readonly path: string;
  release(): void;
}

/** Locks this process holds, so a second relay in the same process is refused too. */
const heldHere = new Set<string>();

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    return (err as { code?: string }).code === 'EPERM';
  }
}

function holderOf(path: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number.parseInt(text.trim(), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * Takes the data folder's lock or throws `DATA_LOCKED` naming the PID that holds it.
 * A lock left by a process that no longer runs (or an unreadable, empty one) is stale
 * and replaced.
 */
export function lockDataDir(dataDir: string): DataLock {
  const path = join(dataDir, DATA_LOCK_FILE);
  if (heldHere.has(path)) {
    throw new ServerError(
      'DATA_LOCKED',
      `${dataDir} is in use by another relay (pid ${process.pid}, lock ${path})`,
    );
  }
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${process.pid}\n`, { mode: 0o600 });
  try {
    // Two tries: the second after removing a stale lock.
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(tmp, path);
        break;
      } catch (err) {
        if ((err as { code?: string }).code !== 'EEXIST' || attempt > 0) throw err;
        const holder = holderOf(path);
        if (holder !== undefined && holder !== process.pid && processAlive(holder)) {
          throw new ServerError(
            'DATA_LOCKED',
            `${dataDir} is in use by another relay (pid ${holder}, lock ${path})`,
          );
        }
        unlinkSync(path);
      }
    }
  } finally {
    unlinkSync(tmp);
  }
  let held = true;
  heldHere.add(path);
  return {
    path,
    release: () => {
      if (!held) return;
      held = false;
      heldHere.delete(path);
      // Only our own lock: never remove one another process took over meanwhile.
      if (holderOf(path) === process.pid) unlinkSync(path);
    },
  };
}
