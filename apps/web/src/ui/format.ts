/** Words and marks the web UI shows; the same vocabulary as the terminal chat. */
import type { MessageStatus } from '@parley/client';

const two = (n: number): string => String(n).padStart(2, '0');

/** HH:MM in local time. */
export function clockTime(ms: number): string {
  const d = new Date(ms);
  return `${two(d.getHours())}:${two(d.getMinutes())}`;
}

/** Full local date and time with the zone, for the title of a time stamp. */
export function localDateTime(ms: number): string {
  const d = new Date(ms);
  const minutes = -d.getTimezoneOffset();
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return (
    `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ` +
    `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ` +
    `UTC${sign}${two(Math.floor(abs / 60))}:${two(abs % 60)} (${zone})`
  );
}

/**
 * The mark beside an outgoing message and what it promises, in words (title and the
 * screen-reader label): `✓✓` only for the recipient's own end-to-end receipt.
 */
export function statusMark(status: MessageStatus): { mark: string; words: string } {
  switch (status) {
    case 'sending':
      return { mark: '…', words: 'sending' };
    case 'queued':
      return { mark: '✓', words: 'queued: stored by the relay' };
    case 'on-device':
      return {
        mark: '✓ on device',
        words: "on device: the relay says the recipient's device took it",
      };
    case 'delivered':
      return { mark: '✓✓', words: "delivered: the recipient's client confirmed it" };
    case 'failed':
      return { mark: '✗ not sent', words: 'failed: not sent' };
    case 'received':
      return { mark: '', words: 'received' };
  }
}

/** Safety number digits in groups of five. */
export function safetyGroups(digits: string): string[] {
  return digits.match(/.{1,5}/g) ?? [];
}

/** A disappearing-message timer in words (the select options and the conversation events). */
export function timerWords(ms: number): string {
  if (ms === 0) return 'off';
  const units: [number, string][] = [
    [7 * 24 * 3_600_000, 'week'],
    [24 * 3_600_000, 'day'],
    [3_600_000, 'hour'],
    [60_000, 'minute'],
  ];
  for (const [size, name] of units) {
    if (ms % size === 0) {
      const n = ms / size;
      return `${n} ${name}${n === 1 ? '' : 's'}`;
    }
  }
  return `${Math.round(ms / 1000)} seconds`;
}

/**
 * The mark of an outgoing group message: the relay's word until every member's own
 * end-to-end receipt is in, with "k/n" of those receipts beside it; `✓✓` only at n of n.
 */
export function groupStatusMark(
  status: MessageStatus,
  delivery: { readonly of: number; readonly by: readonly string[] },
): { mark: string; words: string } {
  const k = Math.min(delivery.by.length, delivery.of);
  const n = delivery.of;
  if (status === 'delivered' && k >= n)
    return { mark: `✓✓ ${n}/${n}`, words: `delivered: all ${n} members' clients confirmed it` };
  const base = statusMark(status === 'delivered' ? 'on-device' : status);
  if (status === 'sending' || status === 'failed') return base;
  return {
    mark: `${base.mark} ${k}/${n}`,
    words: `${base.words}; delivered to ${k} of ${n} members`,
  };
}
