/** Text formatting shared by the scriptable commands and the chat UI. */
import type { MessageStatus } from '@parley/client';

/** Safety number digits in groups of five, three groups per line (easy to read aloud). */
export function formatSafetyNumber(digits: string): string {
  const groups = digits.match(/.{1,5}/g) ?? [];
  const lines: string[] = [];
  for (let i = 0; i < groups.length; i += 3) lines.push(groups.slice(i, i + 3).join(' '));
  return lines.join('\n');
}

const two = (n: number): string => String(n).padStart(2, '0');

/** HH:MM in local time, for the conversation view. */
export function clockTime(ms: number): string {
  const d = new Date(ms);
  return `${two(d.getHours())}:${two(d.getMinutes())}`;
}

/** The local zone's offset at `d` as ±HH:MM (ISO 8601). */
function zoneOffset(d: Date): string {
  const minutes = -d.getTimezoneOffset();
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${sign}${two(Math.floor(abs / 60))}:${two(abs % 60)}`;
}

/** Local date and time with the zone's offset, for people: `2026-01-01 14:30:05 +05:30`. */
export function localDateTime(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ${zoneOffset(d)}`;
}

/** ISO 8601 in local time with the offset, for `--json`: `2026-01-01T14:30:05.123+05:30`. */
export function isoLocal(ms: number): string {
  const d = new Date(ms);
  const ms3 = String(d.getMilliseconds()).padStart(3, '0');
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${ms3}${zoneOffset(d)}`;
}

/**
 * Status marks of outgoing messages, each distinct: `…` still with us, `✓` the relay
 * stored it, `✓ on device` the relay says the recipient's device took it (not that it
 * was read or even decrypted), `✓✓` the recipient's client confirmed it end to end,
 * `✗ not sent` it never left (the reason is shown where there is room).
 */
export function statusMark(status: MessageStatus | string): string {
  switch (status) {
    case 'sending':
      return '…';
    case 'queued':
      return '✓';
    case 'on-device':
      return '✓ on device';
    case 'delivered':
      return '✓✓';
    case 'failed':
      return '✗ not sent';
    default:
      return '';
  }
}

/** The same statuses in words, for `send` and `read --history`. */
export function statusWords(status: MessageStatus | string): string {
  switch (status) {
    case 'sending':
      return 'sending (not yet stored by the relay)';
    case 'queued':
      return 'queued (stored by the relay)';
    case 'on-device':
      return "on device (the relay says the recipient's device took it)";
    case 'delivered':
      return "delivered (the recipient's client confirmed it)";
    case 'failed':
      return 'failed (not sent)';
    case 'received':
      return 'received';
    default:
      return status;
  }
}

/**
 * A peer's text made safe for a terminal: control characters (escape sequences could
 * move the cursor, retitle the window or fake other lines) become visible `�`, tabs
 * become spaces; line breaks are kept for the caller to lay out.
 */
export function terminalSafe(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .replace(/\t/g, '  ')
    .replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/g, '\ufffd');
}
