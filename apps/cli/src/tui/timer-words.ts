/**
 * The disappearing-message timer as the command line and the chat name it: `off`,
 * `5m`, `1h`, `1d`, `1w` on the command line, words in the header and events.
 */
import { ClientError, DISAPPEARING_TIMERS_MS } from '@parley/client';

const ARGS: readonly (readonly [string, number, string])[] = [
  ['off', 0, 'off'],
  ['5m', 5 * 60_000, '5 min'],
  ['1h', 60 * 60_000, '1 hour'],
  ['1d', 24 * 60 * 60_000, '1 day'],
  ['1w', 7 * 24 * 60 * 60_000, '1 week'],
];

/** `off|5m|1h|1d|1w` → ms; anything else is a typed error naming the choices. */
export function parseTimerArg(raw: string): number {
  const hit = ARGS.find(([arg]) => arg === raw);
  if (hit === undefined || !DISAPPEARING_TIMERS_MS.includes(hit[1]))
    throw new ClientError(
      'INVALID_ARGUMENT',
      `timer: expected one of ${ARGS.map(([a]) => a).join('|')}, not ${raw}`,
    );
  return hit[1];
}

/** ms → `off`, `5 min`, `1 hour`, `1 day`, `1 week`. */
export function timerWords(ms: number): string {
  return ARGS.find(([, v]) => v === ms)?.[2] ?? `${Math.round(ms / 1000)} s`;
}

/** The line a timer change shows in a conversation. */
export function timerEventText(who: string, ms: number): string {
  return ms === 0
    ? `${who} turned disappearing messages off`
    : `${who} set disappearing messages to ${timerWords(ms)}`;
}
