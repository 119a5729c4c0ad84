/**
 * The chat's input line as a pure state machine over ink's key events, so that paste
 * and multi-line editing can be tested without a terminal.
 *
 * - Enter sends. Alt+Enter, Shift+Enter (where the terminal reports it: kitty keyboard
 *   protocol) and Ctrl+J insert a line break.
 * - Bracketed paste (the chat turns it on with CSI ? 2004 h): everything between the
 *   terminal's paste markers is text, line breaks included, so a pasted paragraph is
 *   one message. ink hands the markers over as the inputs `[200~` and `[201~` (it strips
 *   the leading ESC).
 * - A terminal without bracketed paste delivers a paste as one read: a line break
 *   followed by more text in the same read is taken as pasted, one at its end as Enter.
 *
 * ink 6's ecosystem offers single-line inputs (ink-text-input, @inkjs/ui TextInput):
 * neither keeps line breaks nor knows paste markers, which is what this needs.
 */
import type { Key } from 'ink';

export interface InputState {
  readonly text: string;
  /** Between the terminal's paste-start and paste-end markers. */
  readonly pasting: boolean;
}

export const EMPTY_INPUT: InputState = { text: '', pasting: false };

/** ink's rendering of the bracketed-paste markers (ESC [ 200 ~ / ESC [ 201 ~, ESC stripped). */
export const PASTE_START = '[200~';
export const PASTE_END = '[201~';

export interface InputStep {
  readonly state: InputState;
  /** Lines to send, in order (usually none or one). */
  readonly submitted: readonly string[];
}

const dropLast = (s: string): string => [...s].slice(0, -1).join('');
const pastedText = (s: string): string => s.replace(/\r\n?/g, '\n').replace(/\t/g, '  ');

/** Applies one ink key event to the input. */
export function applyInputKey(state: InputState, input: string, key: Key): InputStep {
  const submitted: string[] = [];
  if (input === PASTE_START) return { state: { ...state, pasting: true }, submitted };
  if (input === PASTE_END) return { state: { ...state, pasting: false }, submitted };
  if (state.pasting) {
    // Inside a paste nothing is a command: Enter is a line break like any other.
    if (key.return) return { state: { ...state, text: `${state.text}\n` }, submitted };
    return { state: { ...state, text: state.text + pastedText(input) }, submitted };
  }
  if (key.return) {
    if (key.shift || key.meta) return { state: { ...state, text: `${state.text}\n` }, submitted };
    submitted.push(state.text);
    return { state: { ...state, text: '' }, submitted };
  }
  if (key.backspace || key.delete)
    return { state: { ...state, text: dropLast(state.text) }, submitted };
  if (key.escape) return { state: { ...state, text: '' }, submitted };
  if (!input || key.ctrl || key.meta) return { state, submitted };
  let text = state.text;
  const chars = [...input];
  chars.forEach((c, i) => {
    if (c === '\r') {
      if (i === chars.length - 1) {
        submitted.push(text);
        text = '';
      } else if (chars[i + 1] !== '\n') text += '\n';
    } else if (c === '\n') text += '\n';
    else if (c === '\u007f' || c === '\b') text = dropLast(text);
    else if (c === '\t') text += '  ';
    else if (c >= ' ') text += c;
  });
  return { state: { ...state, text }, submitted };
}
