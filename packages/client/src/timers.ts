/**
 * Time as the client core sees it: a clock and one-shot timers, both parameters, so
 * tests and simulators drive time themselves. This file is the only place in the core
 * that touches the host's timer and clock globals (as the defaults).
 */

/** An opaque handle from `Timers.set`. */
export type TimerHandle = unknown;

/** One-shot timers. Core timers never keep a host process alive on their own. */
export interface Timers {
  set(fn: () => void, delayMs: number): TimerHandle;
  clear(handle: TimerHandle): void;
}

/** Milliseconds since the epoch. */
export type Clock = () => number;

/** The host's timers; `unref`'d where the host has it (Node), so pending retries never keep a finished command running. */
export const systemTimers: Timers = {
  set(fn, delayMs) {
    const handle = setTimeout(fn, delayMs);
    (handle as { unref?: () => void } | undefined)?.unref?.();
    return handle;
  },
  clear(handle) {
    clearTimeout(handle as Parameters<typeof clearTimeout>[0]);
  },
};

/** The host's wall clock. */
export const systemClock: Clock = () => Date.now();
