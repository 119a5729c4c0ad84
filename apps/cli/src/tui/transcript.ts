/**
 * Lays a conversation out as terminal lines of a given width, so the chat can show any
 * window of it (scrollback) and a message longer than the screen is wrapped and shown
 * in part instead of not at all. Pure: messages in, lines out.
 */
import stringWidth from 'string-width';
import wrapAnsi from 'wrap-ansi';
import { displayText, type StoredMessage } from '@parley/client';
import { clockTime, statusMark, terminalSafe } from './format.js';
import { timerEventText } from './timer-words.js';

export type PartStyle = 'time' | 'me' | 'peer' | 'mark' | 'failed' | 'text';

export interface LinePart {
  readonly text: string;
  readonly style: PartStyle;
}

export interface TranscriptLine {
  /** Stable across renders: message key and line number. */
  readonly key: string;
  readonly parts: readonly LinePart[];
}

/** Wraps one paragraph to `width` columns, breaking inside words only when they are longer. */
function wrap(text: string, width: number): string[] {
  if (text === '') return [''];
  return wrapAnsi(text, width, { hard: true, trim: false, wordWrap: true }).split('\n');
}

/** The lines of one message; `reason` is why a failed message was not sent. */
export function messageLines(m: StoredMessage, width: number, reason?: string): TranscriptLine[] {
  // In a group, the member who sent it.
  const label = m.direction === 'out' ? 'me' : (m.from ?? m.peer);
  const count =
    m.groupDelivery && m.status !== 'delivered'
      ? ` ${m.groupDelivery.by.length}/${m.groupDelivery.of}`
      : '';
  const time = clockTime(m.sentAt);
  const prefix = `${time} ${label}: `;
  const failed = m.direction === 'out' && m.status === 'failed';
  const mark =
    m.direction === 'out'
      ? ` ${statusMark(m.status)}${count}${failed && reason !== undefined ? `: ${terminalSafe(reason)}` : ''}`
      : '';
  // A timer change is an event in the conversation, not something anyone wrote.
  const body =
    m.timerMs !== undefined
      ? `* ${timerEventText(label, m.timerMs)}`
      : terminalSafe(displayText(m.text));
  const paragraphs = `${prefix}${body}${mark}`.split('\n');
  const raw = paragraphs.flatMap((p) => wrap(p, Math.max(1, width)));
  const id = `${m.direction}:${m.id}`;
  return raw.map((line, i) => {
    const parts: LinePart[] = [];
    let rest = line;
    if (i === 0 && rest.startsWith(prefix)) {
      parts.push({ text: `${time} `, style: 'time' });
      parts.push({ text: label, style: m.direction === 'out' ? 'me' : 'peer' });
      rest = rest.slice(time.length + 1 + label.length);
    }
    if (i === raw.length - 1 && mark !== '' && rest.endsWith(mark)) {
      parts.push({ text: rest.slice(0, rest.length - mark.length), style: 'text' });
      parts.push({ text: mark, style: failed ? 'failed' : 'mark' });
    } else parts.push({ text: rest, style: 'text' });
    return { key: `${id}:${i}`, parts: parts.filter((p) => p.text !== '') };
  });
}

/** Every line of a conversation, oldest first. */
export function transcriptLines(
  messages: readonly StoredMessage[],
  width: number,
  reasons: ReadonlyMap<string, string> = new Map(),
): TranscriptLine[] {
  return messages.flatMap((m) => messageLines(m, width, reasons.get(m.id)));
}

/** Display width of a line (wide characters count twice), for tests and layout checks. */
export function lineWidth(line: TranscriptLine): number {
  return stringWidth(line.parts.map((p) => p.text).join(''));
}

/**
 * The window of `total` lines to show in `rows` rows, `offset` lines up from the newest
 * (0 follows the conversation). Returns [start, end) and the offset actually used.
 */
export function visibleWindow(
  total: number,
  rows: number,
  offset: number,
): { start: number; end: number; offset: number } {
  const maxOffset = Math.max(0, total - rows);
  const used = Math.min(Math.max(0, offset), maxOffset);
  const end = total - used;
  return { start: Math.max(0, end - rows), end, offset: used };
}
