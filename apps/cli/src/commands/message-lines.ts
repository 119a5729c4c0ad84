/**
 * How `read`, `read --history` and `send` print messages: for people, local time with
 * the zone's offset and the status marks of the chat; for scripts (`--json`), one
 * object per line with ISO 8601 times carrying the offset. A peer's text is made
 * terminal-safe in human output only (JSON escapes it anyway).
 */
import { ClientError, displayText, fileOfText } from '@parley/client';
import type { StoredMessage } from '@parley/client';
import { isoLocal, localDateTime, statusMark, statusWords, terminalSafe } from '../tui/format.js';
import { timerEventText } from '../tui/timer-words.js';

/** `--json` keys of a disappearing message or a timer change (absent otherwise). */
function timerFields(m: StoredMessage): Record<string, unknown> {
  return {
    ...(m.expiresAt !== undefined ? { expiresAt: isoLocal(m.expiresAt) } : {}),
    ...(m.timerMs !== undefined ? { timerMs: m.timerMs } : {}),
  };
}

/** The text a person sees: a timer change as an event, a disappearing message with its end. */
function humanText(m: StoredMessage, from: string): string {
  if (m.timerMs !== undefined) return `* ${timerEventText(from, m.timerMs)}`;
  const until = m.expiresAt !== undefined ? ` (disappears ${localDateTime(m.expiresAt)})` : '';
  return `${terminalSafe(displayText(m.text))}${until}`;
}

/** Most messages `read --history` prints when no `--limit` is given. */
export const HISTORY_DEFAULT_LIMIT = 50;
/** Bound on `--limit`: beyond this a script should page with several calls. */
const HISTORY_MAX_LIMIT = 100_000;

/** A file of a new message that could not be saved (`read --save-dir`). */
export interface FileFailure {
  readonly reason: string;
  readonly retryable: boolean;
}

/** One new incoming message (`read`, `read --follow`). */
export function messageLine(
  m: StoredMessage,
  json: boolean,
  saved?: string,
  failed?: FileFailure,
  group?: string,
): string {
  const file = fileJson(m.text, saved, failed);
  // In a group the sender is the member who sent it; the conversation is the group.
  const from = m.from ?? m.peer;
  if (json) {
    return JSON.stringify({
      id: m.id,
      ...(group !== undefined ? { group } : {}),
      from,
      text: file ? displayText(m.text) : m.text,
      ...(file ? { file } : {}),
      sentAt: isoLocal(m.sentAt),
      receivedAt: isoLocal(m.storedAt),
      ...timerFields(m),
    });
  }
  const where =
    saved !== undefined
      ? ` saved to ${terminalSafe(saved)}`
      : failed !== undefined
        ? ` FAILED, not saved (${failed.retryable ? 'transient, will be retried' : 'not retryable'}): ${terminalSafe(failed.reason)}`
        : '';
  const who = group !== undefined ? `${from} @ ${group}` : from;
  return `[${localDateTime(m.sentAt)}] ${who}: ${humanText(m, from)}${where}`;
}

/** The file entry as scripts see it: everything but the key. */
function fileJson(
  text: string,
  saved?: string,
  failed?: FileFailure,
): Record<string, unknown> | undefined {
  const f = fileOfText(text);
  if (!f) return undefined;
  return {
    name: f.name,
    type: f.type,
    size: f.size,
    sha256: f.sha256,
    paddedSize: f.padded,
    blob: f.blob,
    ...(saved !== undefined ? { saved } : {}),
    ...(failed !== undefined ? { failed: failed.reason, retryable: failed.retryable } : {}),
  };
}

/** One message of the stored history, either direction, with its status. */
export function historyLine(
  m: StoredMessage,
  me: string,
  json: boolean,
  failure?: string,
  group?: string,
): string {
  const from = m.direction === 'in' ? (m.from ?? m.peer) : me;
  const to = m.direction === 'in' ? me : (group ?? m.peer);
  if (json) {
    return JSON.stringify({
      id: m.id,
      peer: m.peer,
      ...(group !== undefined ? { group } : {}),
      ...(m.groupDelivery
        ? { deliveredTo: m.groupDelivery.by.length, of: m.groupDelivery.of }
        : {}),
      direction: m.direction,
      from,
      to,
      text: fileOfText(m.text) ? displayText(m.text) : m.text,
      ...(fileOfText(m.text) ? { file: fileJson(m.text) } : {}),
      sentAt: isoLocal(m.sentAt),
      storedAt: isoLocal(m.storedAt),
      status: m.status,
      ...(failure !== undefined ? { failure } : {}),
      ...timerFields(m),
    });
  }
  const where = group !== undefined ? ` @ ${group}` : '';
  const who = m.direction === 'in' ? `${from}${where}` : `me → ${to}`;
  const why = failure !== undefined ? `: ${terminalSafe(failure)}` : '';
  const mark = m.direction === 'out' ? ` ${statusMark(m.status)}${why}${groupCount(m)}` : '';
  return `[${localDateTime(m.sentAt)}] ${who}: ${humanText(m, from)}${mark}`;
}

/** "delivered to k of n" of a group message not yet delivered to all (nothing otherwise). */
export function groupCount(m: StoredMessage): string {
  const d = m.groupDelivery;
  if (!d || m.status === 'delivered') return '';
  return ` (delivered to ${d.by.length} of ${d.of})`;
}

/** What `send` says on stderr about where its message is (stdout carries only the id). */
export function sendStatusLine(status: StoredMessage['status']): string {
  return `${statusMark(status)} ${statusWords(status)}`;
}

/** `--limit N`: a positive integer. */
export function parseLimit(raw: string | undefined): number {
  if (raw === undefined) return HISTORY_DEFAULT_LIMIT;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < 1 || n > HISTORY_MAX_LIMIT) {
    throw new ClientError(
      'INVALID_ARGUMENT',
      `--limit: expected a whole number from 1 to ${HISTORY_MAX_LIMIT}, not ${raw}`,
    );
  }
  return n;
}
