/**
 * `parley chat`: the interactive terminal UI (ink). Left: conversations with unread
 * counts and presence; right: the selected conversation with timestamps and status
 * marks (… sending, ✓ queued, ✓✓ delivered, ✗ not sent); bottom: the input line. Key changes are
 * shown as a red banner until the user verifies; `/verify` opens the safety-number
 * screen with a QR code; `/help` lists every command. Fits 80x24.
 *
 * Everything it shows comes from the client core's store and events; it never talks to
 * the relay or the store directly.
 */
import React, { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { Box, Text, render, useApp, useInput, useStdout } from 'ink';
import QRCode from 'qrcode';
import { checkUserName, describeTrust } from '@parley/client';
import type { Contact, ConversationSummary, StoredMessage } from '@parley/client';
import type { NodeClient } from '@parley/client-node';
import { clockTime, formatSafetyNumber, statusMark } from './format.js';

/** Messages kept on screen per conversation; older ones stay in the store. */
const VISIBLE_HISTORY = 200;
/** Width of the conversation list column (fits a 64-byte name truncated, plus counters). */
const LIST_WIDTH = 22;

type Screen =
  | { kind: 'main' }
  | { kind: 'help' }
  | { kind: 'verify'; peer: string; digits: string; qr: string; trust: string };

interface Row {
  readonly peer: string;
  readonly unread: number;
  readonly online: boolean;
}

const HELP = [
  'Keys',
  '  Up/Down        select a conversation',
  '  Enter          send the typed message to the selected conversation',
  '  Esc            back to the conversation',
  '  Ctrl-C         quit',
  '',
  'Commands (type in the input line)',
  '  /to NAME       open a conversation with NAME',
  '  /verify        safety number and QR code of the selected contact',
  '  /verified      mark the selected contact verified (after comparing numbers)',
  '  /end           end the session with the selected contact (keys discarded)',
  '  /help          this screen',
  '  /quit          leave',
];

/** What the conversation pane says about the contact's key (mtls: CA-certified or not). */
function trustLine(contact: Contact | undefined, mode: 'mtls' | 'open'): string {
  if (!contact) return 'no key yet (fetched on first message)';
  return describeTrust(contact.trust, mode);
}

function ChatApp({ c }: { c: NodeClient }): React.JSX.Element {
  const { exit } = useApp();
  const { stdout } = useStdout();
  const [connected, setConnected] = useState(c.client.isReady);
  const [conversations, setConversations] = useState<ConversationSummary[]>([]);
  const [contacts, setContacts] = useState<Contact[]>([]);
  const [extraPeers, setExtraPeers] = useState<string[]>([]);
  const [selected, setSelected] = useState<string | undefined>(undefined);
  const [messages, setMessages] = useState<StoredMessage[]>([]);
  const [input, setInputState] = useState('');
  // The authoritative input buffer: one terminal read may carry several keys (pasted
  // text, or text plus Enter from tmux send-keys), so edits apply synchronously here.
  const inputRef = useRef('');
  const setInput = useCallback((next: string | ((s: string) => string)) => {
    inputRef.current = typeof next === 'function' ? next(inputRef.current) : next;
    setInputState(inputRef.current);
  }, []);
  const [notice, setNotice] = useState<string>('Type /help for commands.');
  const [warnings, setWarnings] = useState<string[]>([]);
  // Header, notice and input lines, one spare for ink's trailing newline, and the banners.
  const rowsAvail = Math.max(8, (stdout.rows || 24) - 4 - warnings.length);
  const [screen, setScreen] = useState<Screen>({ kind: 'main' });
  const [tick, setTick] = useState(0);
  const refresh = useCallback(() => setTick((t) => t + 1), []);

  const rows: Row[] = useMemo(() => {
    const seen = new Set<string>();
    const out: Row[] = [];
    const add = (peer: string, unread: number): void => {
      if (seen.has(peer) || peer === c.account.name) return;
      seen.add(peer);
      out.push({ peer, unread, online: c.client.online.has(peer) });
    };
    for (const s of conversations) add(s.peer, s.unread);
    for (const p of extraPeers) add(p, 0);
    for (const k of contacts) add(k.name, 0);
    return out;
    // `tick` re-reads presence from the client.
  }, [conversations, contacts, extraPeers, tick]);

  useEffect(() => {
    const off = c.client.on((e) => {
      if (e.type === 'ready') setConnected(true);
      if (e.type === 'disconnected') setConnected(false);
      if (e.type === 'key-changed') {
        setWarnings((w) => [
          ...w.filter((x) => !x.startsWith(`${e.contact.name}:`)),
          `${e.contact.name}: identity key changed! Verify with /verify before trusting.`,
        ]);
      }
      if (e.type === 'error') setNotice(e.error.message);
      if (e.type === 'session-ended') setNotice(`session with ${e.peer} ended; keys discarded`);
      refresh();
    });
    return off;
  }, [c, refresh]);

  useEffect(() => {
    let live = true;
    void (async () => {
      const [conv, cont] = await Promise.all([c.client.conversations(), c.client.contacts()]);
      if (!live) return;
      setConversations(conv);
      setContacts(cont);
      setWarnings((w) => {
        const fromStore = cont
          .filter((k) => k.trust === 'key-changed')
          .map((k) => `${k.name}: identity key changed! Verify with /verify before trusting.`);
        return [...new Set([...w, ...fromStore])];
      });
      const peer = selected ?? conv[0]?.peer;
      if (peer !== undefined && selected === undefined) setSelected(peer);
      if (peer !== undefined) {
        const list = await c.client.messages(peer, { limit: VISIBLE_HISTORY });
        if (!live) return;
        setMessages(list);
        const lastIn = [...list].reverse().find((m) => m.direction === 'in' && !m.shown);
        if (lastIn?.seq !== undefined && screen.kind === 'main') {
          await c.client.markShown(peer, lastIn.seq);
          refresh();
        }
      } else setMessages([]);
    })();
    return () => {
      live = false;
    };
  }, [c, selected, tick, screen.kind, refresh]);

  const openVerify = useCallback(
    async (peer: string) => {
      try {
        if (!(await c.store.getContact(peer))) await c.client.fetchContact(peer);
        const { contact, number } = await c.client.safetyNumber(peer);
        const qr = await QRCode.toString(number.qrPayload, {
          type: 'terminal',
          small: true,
        });
        setScreen({
          kind: 'verify',
          peer,
          digits: formatSafetyNumber(number.digits),
          qr,
          trust: describeTrust(contact.trust, c.account.info.mode),
        });
      } catch (err) {
        setNotice(`verify ${peer}: ${(err as Error).message}`);
      }
    },
    [c],
  );

  const submit = useCallback(
    async (line: string) => {
      const text = line.trim();
      if (text.length === 0) return;
      if (text.startsWith('/')) {
        const [cmd, arg] = text.split(/\s+/, 2);
        switch (cmd) {
          case '/quit':
            return exit();
          case '/help':
            return setScreen({ kind: 'help' });
          case '/to':
            try {
              const peer = checkUserName((arg ?? '').toLowerCase(), 'NAME');
              setExtraPeers((p) => (p.includes(peer) ? p : [...p, peer]));
              setSelected(peer);
              setNotice(`conversation with ${peer}`);
            } catch (err) {
              setNotice((err as Error).message);
            }
            return;
          case '/verify':
            if (selected) await openVerify(selected);
            else setNotice('select a conversation first');
            return;
          case '/verified':
            if (!selected) return setNotice('select a conversation first');
            try {
              await c.client.markVerified(selected);
              setWarnings((w) => w.filter((x) => !x.startsWith(`${selected}:`)));
              setNotice(`${selected} marked verified`);
            } catch (err) {
              setNotice((err as Error).message);
            }
            return refresh();
          case '/end':
            if (!selected) return setNotice('select a conversation first');
            try {
              await c.client.terminate(selected);
            } catch (err) {
              setNotice((err as Error).message);
            }
            return refresh();
          default:
            return setNotice(`unknown command ${cmd ?? ''}; /help lists them`);
        }
      }
      if (!selected) return setNotice('no conversation selected: /to NAME');
      try {
        await c.client.send(selected, text);
      } catch (err) {
        setNotice(`not sent: ${(err as Error).message}`);
      }
      refresh();
    },
    [c, selected, exit, openVerify, refresh],
  );

  useInput((ch, key) => {
    if (key.ctrl && ch === 'c') return exit();
    if (screen.kind !== 'main') {
      if (key.escape || key.return || ch === 'q') setScreen({ kind: 'main' });
      return;
    }
    if (key.upArrow || key.downArrow) {
      if (rows.length === 0) return;
      const i = rows.findIndex((r) => r.peer === selected);
      const next = key.upArrow ? Math.max(0, i - 1) : Math.min(rows.length - 1, i + 1);
      setSelected(rows[next]?.peer);
      return;
    }
    if (key.return) {
      const line = inputRef.current;
      setInput('');
      void submit(line);
      return;
    }
    if (key.backspace || key.delete) return setInput((s) => s.slice(0, -1));
    if (key.escape) return setInput('');
    if (!ch || key.ctrl || key.meta) return;
    for (const c of ch) {
      if (c === '\r' || c === '\n') {
        const line = inputRef.current;
        setInput('');
        void submit(line);
      } else if (c === '\u007f' || c === '\b') setInput((s) => s.slice(0, -1));
      else if (c >= ' ') setInput((s) => s + c);
    }
  });

  const header = (
    <Box>
      <Text bold>Parley</Text>
      <Text>
        {' '}
        · {c.account.name} ({c.account.info.mode}) ·{' '}
      </Text>
      {connected ? (
        <Text color="green">connected</Text>
      ) : (
        <Text color="yellow">offline, reconnecting…</Text>
      )}
    </Box>
  );

  if (screen.kind === 'help') {
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
  if (screen.kind === 'verify') {
    // QR (about 35x18) beside the digits, so the whole screen fits 80x24.
    return (
      <Box flexDirection="column">
        {header}
        <Box flexDirection="row">
          <Text>{screen.qr.replace(/\n+$/, '')}</Text>
          <Box flexDirection="column" paddingLeft={2} width={40}>
            <Text bold>Safety number with {screen.peer}</Text>
            <Text>{screen.trust}</Text>
            <Text> </Text>
            <Text>{screen.digits}</Text>
            <Text> </Text>
            <Text wrap="wrap">
              Compare these digits (or scan the code) with {screen.peer} in person or on a trusted
              call. If they match, type /verified.
            </Text>
            <Text dimColor>Esc: back</Text>
          </Box>
        </Box>
      </Box>
    );
  }

  // Newest messages that fit: one row of the pane is the contact's trust line, and a
  // long message wraps over several rows of the pane's width.
  const paneWidth = Math.max(20, (stdout.columns || 80) - LIST_WIDTH - 2);
  const rowsOf = (m: StoredMessage): number => {
    const label = m.direction === 'out' ? 'me' : m.peer;
    const chars = 6 + label.length + 2 + [...m.text].length + (m.direction === 'out' ? 3 : 0);
    return Math.max(1, Math.ceil(chars / paneWidth));
  };
  const shown: StoredMessage[] = [];
  let used = 1;
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i] as StoredMessage;
    if (used + rowsOf(m) > rowsAvail) break;
    used += rowsOf(m);
    shown.unshift(m);
  }
  return (
    <Box flexDirection="column">
      {header}
      {warnings.map((w) => (
        <Text key={w} color="red" bold>
          ⚠ {w}
        </Text>
      ))}
      <Box flexDirection="row" height={rowsAvail}>
        <Box
          flexDirection="column"
          width={LIST_WIDTH}
          borderStyle="single"
          borderRight
          borderTop={false}
          borderBottom={false}
          borderLeft={false}
        >
          {rows.length === 0 ? <Text dimColor>/to NAME to start</Text> : null}
          {rows.map((r) => (
            <Text key={r.peer} inverse={r.peer === selected} wrap="truncate">
              {r.online ? '●' : '○'} {r.peer.slice(0, LIST_WIDTH - 8)}
              {r.unread > 0 ? ` (${r.unread})` : ''}
            </Text>
          ))}
        </Box>
        <Box flexDirection="column" flexGrow={1} paddingLeft={1} overflow="hidden">
          {selected === undefined ? (
            <Text dimColor>No conversation selected.</Text>
          ) : (
            <Text dimColor wrap="truncate">
              {selected}:{' '}
              {trustLine(
                contacts.find((k) => k.name === selected),
                c.account.info.mode,
              )}
            </Text>
          )}
          {shown.map((m) => (
            <Text key={`${m.direction}:${m.id}`} wrap="wrap">
              <Text dimColor>{clockTime(m.sentAt)} </Text>
              <Text color={m.direction === 'out' ? 'cyan' : 'magenta'}>
                {m.direction === 'out' ? 'me' : m.peer}
              </Text>
              <Text>: {m.text}</Text>
              {m.direction === 'out' ? <Text dimColor> {statusMark(m.status)}</Text> : null}
            </Text>
          ))}
        </Box>
      </Box>
      <Text dimColor wrap="truncate">
        {notice}
      </Text>
      <Box>
        <Text color="cyan">{selected ? `${selected}> ` : '> '}</Text>
        <Text>{input}</Text>
        <Text inverse> </Text>
      </Box>
    </Box>
  );
}

/** Runs the chat until the user quits. Connects in the background and keeps reconnecting. */
export async function runChat(c: NodeClient): Promise<void> {
  c.connect().catch(() => undefined);
  const app = render(<ChatApp c={c} />, { exitOnCtrlC: false });
  await app.waitUntilExit();
}

export { ChatApp };
