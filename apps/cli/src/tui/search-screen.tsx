/**
 * The chat's search box (Ctrl+F or `/search WORDS`): a query line over the results of a
 * search of the whole history, newest first, one line each; Up/Down choose one and Enter
 * jumps to it in its conversation. `searchKey` is the pure key handling; the chat owns
 * the state, runs the search (the index inside the encrypted store) and does the jump.
 */
import React from 'react';
import { Box, Text } from 'ink';
import type { Key } from 'ink';
import { displayText, type StoredMessage } from '@parley/client';
import { localDateTime, terminalSafe } from './format.js';

export interface SearchState {
  readonly query: string;
  /** The query the results are for (undefined: nothing searched yet). */
  readonly searched: string | undefined;
  readonly results: readonly StoredMessage[];
  /** The chosen result. */
  readonly index: number;
  /** Why the last search found nothing to show (a query without a word, …). */
  readonly error?: string;
}

export const EMPTY_SEARCH: SearchState = { query: '', searched: undefined, results: [], index: 0 };

export type SearchAction =
  | { readonly kind: 'none' }
  | { readonly kind: 'close' }
  | { readonly kind: 'run'; readonly query: string }
  | { readonly kind: 'jump'; readonly message: StoredMessage };

/** One key in the search box: the next state and what the chat is to do. */
export function searchKey(
  s: SearchState,
  ch: string,
  key: Key,
): { state: SearchState; action: SearchAction } {
  const none = { kind: 'none' } as const;
  if (key.escape) return { state: s, action: { kind: 'close' } };
  if (key.upArrow) return { state: { ...s, index: Math.max(0, s.index - 1) }, action: none };
  if (key.downArrow) {
    return {
      state: { ...s, index: Math.max(0, Math.min(s.results.length - 1, s.index + 1)) },
      action: none,
    };
  }
  if (key.return) {
    const chosen = s.results[s.index];
    if (s.query.trim() === s.searched && chosen) {
      return { state: s, action: { kind: 'jump', message: chosen } };
    }
    return s.query.trim() === ''
      ? { state: s, action: none }
      : { state: s, action: { kind: 'run', query: s.query.trim() } };
  }
  if (key.backspace || key.delete) {
    return { state: { ...s, query: [...s.query].slice(0, -1).join('') }, action: none };
  }
  if (key.ctrl || key.meta || key.tab || key.pageUp || key.pageDown)
    return { state: s, action: none };
  // Typed or pasted text; line breaks and control characters have no place in a query.
  const text = ch.replace(/[\u0000-\u001f\u007f]/g, ' ');
  return text === ''
    ? { state: s, action: none }
    : { state: { ...s, query: s.query + text }, action: none };
}

/** One result line: when, which conversation, who wrote it, the text. */
function resultText(m: StoredMessage): string {
  const who = m.direction === 'out' ? `me → ${m.peer}` : m.peer;
  return `${localDateTime(m.sentAt)} ${who}: ${terminalSafe(displayText(m.text)).replace(/\n/g, ' ')}`;
}

export function SearchScreen(props: {
  header: React.JSX.Element;
  state: SearchState;
  /** Rows the screen may use below the header. */
  rows: number;
}): React.JSX.Element {
  const { state } = props;
  const listRows = Math.max(1, props.rows - 3);
  // The window of results keeps the chosen one in view.
  const first = Math.max(0, Math.min(state.index - listRows + 1, state.results.length - listRows));
  const shown = state.results.slice(Math.max(0, first), Math.max(0, first) + listRows);
  const summary =
    state.error !== undefined
      ? state.error
      : state.searched === undefined
        ? 'words must all occur; word* matches a prefix · Enter: search · Esc: back'
        : state.results.length === 0
          ? `no messages found for "${state.searched}"`
          : `${state.results.length} found, newest first · Up/Down choose · Enter: go to it · Esc: back`;
  return (
    <Box flexDirection="column">
      {props.header}
      <Box>
        <Text color="cyan">search: </Text>
        <Text>{terminalSafe(state.query)}</Text>
        <Text inverse> </Text>
      </Box>
      <Text dimColor wrap="truncate">
        {summary}
      </Text>
      {shown.map((m, i) => (
        <Text
          key={`${m.peer}:${m.direction}:${m.id}`}
          inverse={Math.max(0, first) + i === state.index}
          wrap="truncate"
        >
          {resultText(m)}
        </Text>
      ))}
    </Box>
  );
}
