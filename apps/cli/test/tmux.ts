/**
 * Driving real terminals for the chat tests: one private tmux server per test file
 * (its own socket), panes captured as text, bounded waits on what the screen shows.
 */
import { execFileSync } from 'node:child_process';

export interface Tmux {
  (...args: string[]): string;
  /** The visible screen of a session's pane. */
  capture(session: string): string;
  /** Polls (bounded) until `re` matches the screen; returns it, or throws saying what ran. */
  screenMatching(session: string, re: RegExp, limitMs?: number): Promise<string>;
  /** Sends keys and waits (bounded) until the screen differs from `before`. */
  keysUntilChanged(session: string, before: string, ...keys: string[]): Promise<string>;
  /** Kills the tmux server (every session of this file). */
  killServer(): void;
}

const POLL_MS = 100;
const DEFAULT_LIMIT_MS = 20_000;

export function tmuxServer(name: string): Tmux {
  const tmux = ((...args: string[]): string =>
    execFileSync('tmux', ['-L', name, ...args], { encoding: 'utf8' })) as Tmux;
  tmux.capture = (session) => tmux('capture-pane', '-p', '-t', session);
  tmux.screenMatching = async (session, re, limitMs = DEFAULT_LIMIT_MS) => {
    let last = '';
    for (let waited = 0; waited < limitMs; waited += POLL_MS) {
      last = tmux.capture(session);
      if (re.test(last)) return last;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    const pane = tmux(
      'list-panes',
      '-t',
      session,
      '-F',
      'dead=#{pane_dead} cmd=#{pane_current_command}',
    );
    throw new Error(`pane ${session} never matched ${re} (${pane.trim()}):\n${last}`);
  };
  tmux.keysUntilChanged = async (session, before, ...keys) => {
    tmux('send-keys', '-t', session, ...keys);
    for (let waited = 0; waited < DEFAULT_LIMIT_MS; waited += POLL_MS) {
      const now = tmux.capture(session);
      if (now !== before) return now;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    throw new Error(`pane ${session} did not change after ${keys.join(' ')}:\n${before}`);
  };
  tmux.killServer = () => {
    try {
      tmux('kill-server');
    } catch {
      // already gone
    }
  };
  return tmux;
}
