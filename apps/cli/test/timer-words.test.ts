/** The disappearing timer's command-line values and how a change shows in the chat. */
import { describe, expect, it } from 'vitest';
import type { StoredMessage } from '@parley/client';
import { parseTimerArg, timerWords } from '../src/tui/timer-words.js';
import { messageLines } from '../src/tui/transcript.js';

describe('disappearing timer words', () => {
  it('parses exactly off|5m|1h|1d|1w and refuses anything else with a typed error', () => {
    expect(['off', '5m', '1h', '1d', '1w'].map(parseTimerArg)).toEqual([
      0, 300_000, 3_600_000, 86_400_000, 604_800_000,
    ]);
    for (const bad of ['', '2h', '5M', '300000', 'on'])
      expect(() => parseTimerArg(bad)).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
    expect(timerWords(86_400_000)).toBe('1 day');
  });

  it('shows a timer change as an event line, not as an empty message', () => {
    const m: StoredMessage = {
      id: 'a'.repeat(32),
      peer: 'bob',
      direction: 'in',
      text: '',
      sentAt: 0,
      storedAt: 0,
      status: 'received',
      shown: false,
      timerMs: 300_000,
    };
    const text = messageLines(m, 80)
      .flatMap((l) => l.parts.map((p) => p.text))
      .join('');
    expect(text).toContain('bob: * bob set disappearing messages to 5 min');
    expect(
      messageLines({ ...m, timerMs: 0 }, 80)
        .flatMap((l) => l.parts.map((p) => p.text))
        .join(''),
    ).toContain('turned disappearing messages off');
  });
});
