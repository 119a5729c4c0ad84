/**
 * The chat's static pieces: the help and safety-number screens and the styling of a
 * transcript line's parts. Presentation only; the chat owns every piece of state.
 */
import React from 'react';
import { Box, Text } from 'ink';
import type { LinePart } from './transcript.js';

/** Every key and command, as `/help` lists them (fits 80x24). */
const HELP = [
  'Keys',
  '  Up/Down        select a conversation',
  '  PgUp/PgDn      scroll back through the history / forward again; End: newest',
  '  Ctrl+F         search the whole history; Enter on a result goes to it',
  '  Enter          send the typed message to the selected conversation',
  '  Alt+Enter      new line in the message (also Shift+Enter where the terminal',
  '                 reports it, and Ctrl+J); a pasted text is one message',
  '  Esc            clear the input; back to the conversation',
  '  Ctrl-C         quit',
  '',
  'Commands (type in the input line)',
  '  /to NAME       open a conversation with NAME',
  '  /search WORDS  search the history (word* for a prefix), newest first',
  '  /verify        safety number and QR code of the selected contact',
  '  /verified      mark the selected contact verified (after comparing numbers)',
  '  /end           end the session with the selected contact (keys discarded)',
  '  /help          this screen',
  '  /quit          leave',
  '',
  'Marks: … sending  ✓ queued  ✓ on device (relay)  ✓✓ delivered  ✗ not sent',
];

export function HelpScreen({ header }: { header: React.JSX.Element }): React.JSX.Element {
  return (
    <Box flexDirection="column">
      {header}
      {HELP.map((l, i) => (
        <Text key={i}>{l}</Text>
      ))}
      <Text dimColor>Esc: back</Text>
    </Box>
  );
}

export function VerifyScreen(props: {
  header: React.JSX.Element;
  peer: string;
  digits: string;
  qr: string;
  trust: string;
}): React.JSX.Element {
  // QR (about 35x18) beside the digits, so the whole screen fits 80x24.
  return (
    <Box flexDirection="column">
      {props.header}
      <Box flexDirection="row">
        <Text>{props.qr.replace(/\n+$/, '')}</Text>
        <Box flexDirection="column" paddingLeft={2} width={40}>
          <Text bold>Safety number with {props.peer}</Text>
          <Text>{props.trust}</Text>
          <Text> </Text>
          <Text>{props.digits}</Text>
          <Text> </Text>
          <Text wrap="wrap">
            Compare these digits (or scan the code) with {props.peer} in person or on a trusted
            call. If they match, type /verified.
          </Text>
          <Text dimColor>Esc: back</Text>
        </Box>
      </Box>
    </Box>
  );
}

export function PartText({ part }: { part: LinePart }): React.JSX.Element {
  switch (part.style) {
    case 'time':
      return <Text dimColor>{part.text}</Text>;
    case 'me':
      return <Text color="cyan">{part.text}</Text>;
    case 'peer':
      return <Text color="magenta">{part.text}</Text>;
    case 'mark':
      return <Text dimColor>{part.text}</Text>;
    case 'failed':
      return <Text color="red">{part.text}</Text>;
    default:
      return <Text>{part.text}</Text>;
  }
}
