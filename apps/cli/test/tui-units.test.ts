/**
 * The chat's pure parts: the input editor over ink key events (paste markers, line
 * breaks, Enter), the transcript layout (wrapping, marks, terminal-safe text), the
 * scroll window, and the time formats.
 */
import { describe, expect, it } from 'vitest';
import type { Key } from 'ink';
import type { StoredMessage } from '@parley/client';
import { EMPTY_INPUT, PASTE_END, PASTE_START, applyInputKey } from '../src/tui/input-editor.js';
import type { InputState } from '../src/tui/input-editor.js';
import { lineWidth, messageLines, visibleWindow } from '../src/tui/transcript.js';
import { isoLocal, localDateTime, terminalSafe } from '../src/tui/format.js';
import { historyLine } from '../src/commands/message-lines.js';

const noKey: Key = {
  upArrow: false,
  downArrow: false,
  leftArrow: false,
  rightArrow: false,
  pageDown: false,
  pageUp: false,
  home: false,
  end: false,
  return: false,
  escape: false,
  ctrl: false,
  shift: false,
  tab: false,
  backspace: false,
  delete: false,
  meta: false,
  super: false,
  hyper: false,
  capsLock: false,
  numLock: false,
};

function feed(events: [string, Partial<Key>?][]): { state: InputState; sent: string[] } {
  let state = EMPTY_INPUT;
  const sent: string[] = [];
  for (const [input, key] of events) {
    const step = applyInputKey(state, input, { ...noKey, ...key });
    state = step.state;
    sent.push(...step.submitted);
  }
  return { state, sent };
}

describe('input editor', () => {
  it('a bracketed paste is text, its line breaks included; Enter after it sends once', () => {
    const r = feed([[PASTE_START], ['one\rtwo\r'], ['', { return: true }], ['three'], [PASTE_END]]);
    expect(r.sent).toEqual([]);
    expect(r.state).toEqual({ text: 'one\ntwo\n\nthree', pasting: false });
    expect(feed([[PASTE_START], ['a\r\nb'], [PASTE_END], ['', { return: true }]]).sent).toEqual([
      'a\nb',
    ]);
  });

  it('Alt+Enter, Shift+Enter and Ctrl+J add a line; Enter sends; backspace and Esc edit', () => {
    const r = feed([
      ['hi'],
      ['', { return: true, meta: true }],
      ['there'],
      ['', { return: true, shift: true }],
      ['x'],
      ['\n'],
      ['yz'],
      ['', { backspace: true }],
      ['', { return: true }],
    ]);
    expect(r.sent).toEqual(['hi\nthere\nx\ny']);
    expect(r.state.text).toBe('');
    expect(feed([['abc'], ['', { escape: true }]]).state.text).toBe('');
    expect(feed([['é😀'], ['', { delete: true }]]).state.text).toBe('é');
  });

  it('without paste markers: typed text plus Enter in one read sends; inner line breaks are a paste', () => {
    expect(feed([['hello\r']]).sent).toEqual(['hello']);
    const r = feed([['l1\rl2\rl3']]);
    expect(r.sent).toEqual([]);
    expect(r.state.text).toBe('l1\nl2\nl3');
    expect(feed([['a\rb\r']]).sent).toEqual(['a\nb']);
    // Control characters other than line breaks never enter the text.
    expect(feed([['a\u0007b\u001bc']]).state.text).toBe('abc');
  });
});

const m = (over: Partial<StoredMessage>): StoredMessage => ({
  id: 'm1',
  peer: 'bob',
  direction: 'in',
  text: 'hello',
  sentAt: Date.UTC(2026, 0, 1, 9, 30),
  storedAt: 1,
  status: 'received',
  shown: true,
  ...over,
});

describe('transcript layout', () => {
  it('wraps a long message into lines no wider than the pane, time and name on the first', () => {
    const text = Array.from({ length: 400 }, (_, i) => `word${i}`).join(' ');
    const lines = messageLines(m({ text }), 40);
    expect(lines.length).toBeGreaterThan(50);
    for (const l of lines) expect(lineWidth(l)).toBeLessThanOrEqual(40);
    expect(lines[0]?.parts.map((p) => p.style)).toEqual(['time', 'peer', 'text']);
    expect(lines.map((l) => l.parts.map((p) => p.text).join('')).join(' ')).toContain(
      'word398 word399',
    );
    // A word longer than the pane is broken, not dropped.
    const long = messageLines(m({ text: 'x'.repeat(130) }), 40);
    expect(long.map((l) => l.parts.map((p) => p.text).join('')).join('')).toContain(
      'x'.repeat(130),
    );
  });

  it('outgoing marks are distinct and last; a failure says why; line breaks are kept', () => {
    const mark = (status: StoredMessage['status'], reason?: string): string => {
      const ls = messageLines(m({ direction: 'out', status, text: 'a\nb' }), 60, reason);
      expect(ls.length).toBe(2);
      const last = ls.at(-1)?.parts.at(-1);
      return `${last?.style}:${last?.text}`;
    };
    expect(mark('sending')).toBe('mark: …');
    expect(mark('queued')).toBe('mark: ✓');
    expect(mark('on-device')).toBe('mark: ✓ on device');
    expect(mark('delivered')).toBe('mark: ✓✓');
    expect(mark('failed', 'bob: unknown')).toBe('failed: ✗ not sent: bob: unknown');
  });

  it("a peer's escape sequences are shown as visible characters, never sent to the terminal", () => {
    const ls = messageLines(m({ text: 'hi\u001b[2J\u001b]0;owned\u0007' }), 60);
    const shown = ls.map((l) => l.parts.map((p) => p.text).join('')).join('');
    expect(shown).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    expect(terminalSafe('a\tb\r\nc')).toBe('a  b\nc');
  });

  it('the scroll window is clamped to the lines there are', () => {
    expect(visibleWindow(100, 10, 0)).toEqual({ start: 90, end: 100, offset: 0 });
    expect(visibleWindow(100, 10, 25)).toEqual({ start: 65, end: 75, offset: 25 });
    expect(visibleWindow(100, 10, 500)).toEqual({ start: 0, end: 10, offset: 90 });
    expect(visibleWindow(5, 10, 3)).toEqual({ start: 0, end: 5, offset: 0 });
  });
});

describe('time formats', () => {
  it('local time with the zone offset, for people and as ISO 8601', () => {
    const before = process.env['TZ'];
    process.env['TZ'] = 'America/St_Johns'; // -03:30 in January
    try {
      const t = Date.UTC(2026, 0, 1, 12, 0, 5, 42);
      expect(localDateTime(t)).toBe('2026-01-01 08:30:05 -03:30');
      expect(isoLocal(t)).toBe('2026-01-01T08:30:05.042-03:30');
      expect(Date.parse(isoLocal(t))).toBe(t);
    } finally {
      if (before === undefined) delete process.env['TZ'];
      else process.env['TZ'] = before;
    }
  });
});

describe('read --history lines', () => {
  it('outgoing lines carry the status mark, a failure its reason (text and JSON)', () => {
    const failed = m({ direction: 'out', status: 'failed', text: 'lost' });
    expect(historyLine(failed, 'alice', false, 'bob: unknown to the relay')).toMatch(
      /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d\d:\d\d\] me → bob: lost ✗ not sent: bob: unknown to the relay$/,
    );
    expect(JSON.parse(historyLine(failed, 'alice', true, 'why'))).toMatchObject({
      from: 'alice',
      to: 'bob',
      status: 'failed',
      failure: 'why',
    });
    expect(historyLine(m({ direction: 'out', status: 'on-device' }), 'alice', false)).toMatch(
      /me → bob: hello ✓ on device$/,
    );
    expect(historyLine(m({}), 'alice', false)).toMatch(/\] bob: hello$/);
  });
});
