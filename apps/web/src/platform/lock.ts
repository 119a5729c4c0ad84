/**
 * One writer per profile across the browser's tabs and windows: a Web Lock named for
 * the profile is held for as long as a tab has the profile open, so two tabs never
 * advance the same ratchet or resend the same outbox. A second tab does not get the
 * lock and shows "open in another tab"; it may wait for the lock to come free.
 */

/** Lock names share the profile's database prefix so they cannot meet another app's. */
export const LOCK_PREFIX = 'parley-profile:';

/** A held profile lock. */
export interface ProfileLock {
  readonly profile: string;
  /** Gives the lock back (idempotent). */
  release(): void;
}

function locks(): LockManager {
  const l = (globalThis.navigator as Navigator | undefined)?.locks;
  if (!l) {
    // Without Web Locks nothing stops a second tab from writing the same ratchet.
    throw new Error(
      'this browser has no Web Locks (navigator.locks): cannot open a profile safely',
    );
  }
  return l;
}

function hold(
  profile: string,
  wait: boolean,
  signal?: AbortSignal,
): Promise<ProfileLock | undefined> {
  return new Promise((resolve, reject) => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    const options: LockOptions = wait
      ? { mode: 'exclusive', ...(signal ? { signal } : {}) }
      : { mode: 'exclusive', ifAvailable: true };
    locks()
      .request(`${LOCK_PREFIX}${profile}`, options, async (lock) => {
        if (!lock) return resolve(undefined);
        let released = false;
        resolve({
          profile,
          release: () => {
            if (released) return;
            released = true;
            release();
          },
        });
        // The lock is held until this callback's promise settles.
        await held;
      })
      .catch(reject);
  });
}

/** Takes the profile's lock if no other tab holds it; otherwise `undefined`. */
export function tryLockProfile(profile: string): Promise<ProfileLock | undefined> {
  return hold(profile, false);
}

/** Waits until the other tab lets go of the profile (closes it), then holds it. */
export async function waitForProfileLock(
  profile: string,
  signal?: AbortSignal,
): Promise<ProfileLock> {
  const lock = await hold(profile, true, signal);
  if (!lock) throw new Error('lock not granted');
  return lock;
}
