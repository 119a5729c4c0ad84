/** The marks and times the web UI shows (same vocabulary as the terminal chat). */
import { describe, expect, it } from 'vitest';
import type { MessageStatus } from '@parley/client';
import { clockTime, localDateTime, safetyGroups, statusMark } from '../src/ui/format.js';

describe('web UI formatting', () => {
  it('gives every outgoing status its own mark; ✓✓ is only the end-to-end receipt', () => {
    const all: MessageStatus[] = ['sending', 'queued', 'on-device', 'delivered', 'failed'];
    const marks = all.map((s) => statusMark(s).mark);
    expect(new Set(marks).size).toBe(all.length);
    expect(marks.filter((m) => m.includes('✓✓'))).toEqual([statusMark('delivered').mark]);
    expect(statusMark('on-device').words).toMatch(/relay says/);
    expect(statusMark('failed').mark).toBe('✗ not sent');
    expect(statusMark('received').mark).toBe('');
  });

  it('shows local HH:MM and the full time with its UTC offset and zone', () => {
    const at = new Date(2026, 0, 2, 3, 4, 5).getTime();
    expect(clockTime(at)).toBe('03:04');
    expect(localDateTime(at)).toMatch(/^2026-01-02 03:04:05 UTC[+-]\d\d:\d\d \(.+\)$/);
  });

  it('groups the 60 safety-number digits in twelve groups of five', () => {
    const g = safetyGroups('0123456789'.repeat(6));
    expect(g).toHaveLength(12);
    expect(g.every((x) => x.length === 5)).toBe(true);
  });
});
