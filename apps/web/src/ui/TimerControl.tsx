/** @jsxImportSource preact */
/**
 * The conversation's disappearing-message timer (off, 5 min, 1 h, 1 day, 1 week): set
 * here or by the peer, it is shown to both sides as an event in the conversation; the
 * client core deletes expired messages from the store and its index.
 */
import { useEffect, useState } from 'preact/hooks';
import type { JSX } from 'preact';
import { DISAPPEARING_TIMERS_MS } from '@parley/client';
import type { ChatSession } from './session.js';
import { timerWords } from './format.js';

export function TimerControl({
  s,
  peer,
  version,
}: {
  s: ChatSession;
  peer: string;
  /** Changes whenever the conversation does (a timer event may have arrived). */
  version: string;
}): JSX.Element {
  const [timer, setTimer] = useState<number | undefined>();
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    let live = true;
    void s.client.timer(peer).then((ms) => live && setTimer(ms));
    return () => {
      live = false;
    };
  }, [s, peer, version]);

  const change = async (ms: number): Promise<void> => {
    try {
      await s.client.setTimer(peer, ms);
      setTimer(ms);
      setError(undefined);
    } catch (err) {
      setError(`Not changed: ${(err as Error).message}`);
    }
  };

  return (
    <span class="timer">
      <label for="timer-select">Disappearing messages</label>{' '}
      <select
        id="timer-select"
        value={timer === undefined ? '' : String(timer)}
        disabled={timer === undefined}
        onChange={(e) => void change(Number(e.currentTarget.value))}
        aria-describedby="timer-error"
      >
        {DISAPPEARING_TIMERS_MS.map((ms) => (
          <option key={ms} value={String(ms)}>
            {timerWords(ms)}
          </option>
        ))}
      </select>
      <span id="timer-error" class="error" role="alert">
        {error ?? ''}
      </span>
    </span>
  );
}
