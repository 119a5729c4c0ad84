/**
 * `parley chat`: the interactive terminal UI (ink). Left: conversations with unread
 * counts and presence; right: the selected conversation with timestamps and status
 * marks (… sending, ✓ queued, ✓ on device, ✓✓ delivered end to end, ✗ not sent with the
 * reason), scrollable back through the whole stored history (PgUp/PgDn, paged from the
 * store); bottom: the input, multi-line (bracketed paste, Alt/Shift+Enter). Key changes
 * are shown as a red banner until the user verifies; `/verify` opens the safety-number
 * screen with a QR code; Ctrl+F (or `/search WORDS`) searches the whole history and jumps
 * to the message chosen (search-screen.tsx); `/help` lists every command. Fills the terminal and follows
 * its size (80x24 and up).
 *
 * Everything it shows comes from the client core's store and events; it never talks to
 * the relay or the store directly.
 */
import React, { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import { Box, Text, render, useApp, useInput, useStdout } from 'ink';
import type { Key } from 'ink';
import QRCode from 'qrcode';
import wrapAnsi from 'wrap-ansi';
import { MAX_MESSAGE_TEXT_BYTES, checkUserName, describeTrust } from '@parley/client';
import type { Contact, ConversationSummary, GroupEvent, StoredMessage } from '@parley/client';
import type { NodeClient } from '@parley/client-node';
import { formatSafetyNumber, localDateTime, terminalSafe } from './format.js';
import { EMPTY_INPUT, applyInputKey } from './input-editor.js';
import type { InputState } from './input-editor.js';
import { useTerminalSize } from './terminal-size.js';
import { transcriptLines, visibleWindow } from './transcript.js';
import { timerWords } from './timer-words.js';
import { HelpScreen, PartText, VerifyScreen } from './screens.js';
import { EMPTY_SEARCH, SearchScreen, searchKey } from './search-screen.js';
import type { SearchState } from './search-screen.js';

/** Messages read from the store at a time: the newest page, then one more per PgUp past it. */
const HISTORY_PAGE = 100;
/** Width of the conversation list column (fits a 64-byte name truncated, plus counters). */
const LIST_WIDTH = 22;
/** Rows the input grows to before it scrolls (the conversation keeps the rest). */
const MAX_INPUT_ROWS = 5;
/** The conversation pane never shrinks below this (trust line + a few messages). */
const MIN_PANE_ROWS = 4;

/** Terminal control: erase the screen and scrollback, cursor home. */
const CLEAR_SCREEN = '\u001b[2J\u001b[3J\u001b[H';
/** Alternate screen on (the shell's screen comes back on exit) and bracketed paste on. */
const ENTER_FULL_SCREEN = '\u001b[?1049h\u001b[H\u001b[?2004h';
const LEAVE_FULL_SCREEN = '\u001b[?2004l\u001b[?1049l';

const wrapPlain = (text: string, width: number): string[] =>
  text === '' ? [''] : wrapAnsi(text, width, { hard: true, trim: false }).split('\n');

type Screen =
  | { kind: 'main' }
  | { kind: 'help' }
  | { kind: 'search' }
  | { kind: 'verify'; peer: string; digits: string; qr: string; trust: string };

interface Row {
  readonly peer: string;
  readonly unread: number;
  readonly online: boolean;
}

/** What the conversation pane says about the contact's key (mtls: CA-certified or not). */
function trustLine(contact: Contact | undefined, mode: 'mtls' | 'open'): string {
  if (!contact) return 'no key yet (fetched on first message)';
  return describeTrust(contact.trust, mode);
}

function ChatApp({ c }: { c: NodeClient }): React.JSX.Element {
  const { exit } = useApp();
  const { stdout } = useStdout();
  // A resize may shrink the screen under ink's last frame: start the next one on a clean screen.
  const size = useTerminalSize(() => stdout.write(CLEAR_SCREEN));
  const [connected, setConnected] = useState(c.client.isReady);
  const [conversations, setConversations] = useState<ConversationSummary[]>([]);
  const [contacts, setContacts] = useState<Contact[]>([]);
  const [extraPeers, setExtraPeers] = useState<string[]>([]);
  /** Group conversation id → group name (groups are listed as `#name`). */
  const [groups, setGroups] = useState<ReadonlyMap<string, string>>(new Map());
  /** The selected conversation's disappearing-message timer (ms, 0 = off), for the header. */
  const [timerMs, setTimerMs] = useState(0);
  const [selected, setSelected] = useState<string | undefined>(undefined);
  const [messages, setMessages] = useState<StoredMessage[]>([]);
  const [reasons, setReasons] = useState<ReadonlyMap<string, string>>(new Map());
  // Scrollback: how many lines up from the newest the view is (0 follows new messages),
  // whether the store holds older messages than those loaded, and the oldest loaded seq
  // once the user has paged back (undefined: only the newest page is loaded).
  const [scroll, setScroll] = useState(0);
  const [hasOlder, setHasOlder] = useState(false);
  const windowStart = useRef<number | undefined>(undefined);
  const loadingOlder = useRef(false);
  const [input, setInputState] = useState<InputState>(EMPTY_INPUT);
  // The authoritative input buffer: one terminal read may carry several keys (pasted
  // text, or text plus Enter from tmux send-keys), so edits apply synchronously here.
  const inputRef = useRef<InputState>(EMPTY_INPUT);
  const setInput = useCallback((next: InputState) => {
    inputRef.current = next;
    setInputState(next);
  }, []);
  const [notice, setNotice] = useState<string>('Type /help for commands.');
  const [warnings, setWarnings] = useState<string[]>([]);
  const [screen, setScreen] = useState<Screen>({ kind: 'main' });
  const [tick, setTick] = useState(0);
  const refresh = useCallback(() => setTick((t) => t + 1), []);
  const [search, setSearchState] = useState<SearchState>(EMPTY_SEARCH);
  // Like the input: one terminal read may carry the query and Enter, so keys apply to this.
  const searchRef = useRef<SearchState>(EMPTY_SEARCH);
  const setSearch = useCallback((next: SearchState | ((s: SearchState) => SearchState)) => {
    searchRef.current = typeof next === 'function' ? next(searchRef.current) : next;
    setSearchState(searchRef.current);
  }, []);
  /** A search result to bring into view once its conversation is loaded (its first line key). */
  const jumpTo = useRef<string | undefined>(undefined);
  /** The message the last jump went to, highlighted in its conversation. */
  const [highlight, setHighlight] = useState<string | undefined>(undefined);

  const select = useCallback((peer: string | undefined) => {
    windowStart.current = undefined;
    setScroll(0);
    setHighlight(undefined);
    setSelected(peer);
  }, []);

  /** Searches the whole history (the index in the encrypted store), newest first. */
  const runSearch = useCallback(
    async (query: string) => {
      try {
        const results = await c.store.searchMessages(query);
        setSearch((s) => ({ ...s, searched: query, results, index: 0 }));
      } catch (err) {
        setSearch((s) => ({
          ...s,
          searched: query,
          results: [],
          index: 0,
          error: (err as Error).message,
        }));
      }
    },
    [c, setSearch],
  );

  /** Opens a search result's conversation from that message on, the message in view. */
  const jump = useCallback(
    (m: StoredMessage) => {
      windowStart.current = m.seq;
      // Older messages are a PgUp away (a page read finds out whether there are any).
      setHasOlder(true);
      setScroll(0);
      jumpTo.current = `${m.direction}:${m.id}:0`;
      setHighlight(`${m.direction}:${m.id}:`);
      setSelected(m.peer);
      setScreen({ kind: 'main' });
      setNotice(`found message from ${localDateTime(m.sentAt)} · End: latest`);
      refresh();
    },
    [refresh],
  );

  const rows: Row[] = useMemo(() => {
    const seen = new Set<string>();
    const out: Row[] = [];
    const add = (peer: string, unread: number): void => {
      if (seen.has(peer) || peer === c.account.name) return;
      seen.add(peer);
      out.push({ peer, unread, online: c.client.online.has(peer) });
    };
    for (const s of conversations) add(s.peer, s.unread);
    for (const g of groups.keys()) add(g, 0);
    for (const p of extraPeers) add(p, 0);
    for (const k of contacts) add(k.name, 0);
    return out;
    // `tick` re-reads presence from the client.
  }, [conversations, contacts, extraPeers, groups, tick]);

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
      if (e.type === 'group') setNotice(groupEventText(e));
      refresh();
    });
    return off;
  }, [c, refresh]);

  useEffect(() => {
    let live = true;
    void (async () => {
      const [conv, cont, gl] = await Promise.all([
        c.client.conversations(),
        c.client.contacts(),
        c.client.groupList(),
      ]);
      if (!live) return;
      setGroups(
        new Map(gl.filter((g) => g.status === 'active').map((g) => [g.conversation, g.name])),
      );
      setConversations(conv);
      setContacts(cont);
      setWarnings((w) => {
        const fromStore = cont
          .filter((k) => k.trust === 'key-changed')
          .map((k) => `${k.name}: identity key changed! Verify with /verify before trusting.`);
        return [...new Set([...w, ...fromStore])];
      });
      const peer = selected ?? conv[0]?.peer;
      if (peer !== undefined && selected === undefined) select(peer);
      if (peer === undefined) return setMessages([]);
      // The newest page, or everything from the oldest page the user scrolled back to
      // (re-read so status marks and new messages show).
      const from = windowStart.current;
      const list =
        from === undefined
          ? await c.client.messages(peer, { limit: HISTORY_PAGE })
          : await c.client.messages(peer, { afterSeq: from - 1 });
      const t = await c.client.timer(peer);
      if (!live) return;
      setTimerMs(t);
      // An older page landed meanwhile: this read would drop it; read again from there.
      if (windowStart.current !== from) return refresh();
      setMessages(list);
      if (from === undefined) setHasOlder(list.length === HISTORY_PAGE);
      const failed = list.filter((m) => m.direction === 'out' && m.status === 'failed');
      if (failed.length > 0) {
        const found = new Map<string, string>();
        for (const m of failed) {
          const f = await c.client.sendFailure(peer, m.id);
          if (f) found.set(m.id, f.reason);
        }
        if (live) setReasons(found);
      }
      const lastIn = [...list].reverse().find((m) => m.direction === 'in' && !m.shown);
      if (lastIn?.seq !== undefined && screen.kind === 'main') {
        await c.client.markShown(peer, lastIn.seq);
        refresh();
      }
    })();
    return () => {
      live = false;
    };
  }, [c, selected, tick, screen.kind, refresh, select]);

  const selectedRef = useRef(selected);
  selectedRef.current = selected;
  /** Reads the page of history before the oldest loaded message from the store. */
  const loadOlder = useCallback(async () => {
    const peer = selected;
    const oldest = messages[0]?.seq;
    if (peer === undefined || oldest === undefined || loadingOlder.current) return;
    loadingOlder.current = true;
    try {
      const page = await c.client.messages(peer, { beforeSeq: oldest, limit: HISTORY_PAGE });
      if (peer !== selectedRef.current) return;
      windowStart.current = page[0]?.seq ?? oldest;
      setHasOlder(page.length === HISTORY_PAGE);
      setMessages((m) => [...page, ...m.filter((x) => (x.seq ?? 0) >= oldest)]);
    } catch (err) {
      setNotice(`history: ${(err as Error).message}`);
    } finally {
      loadingOlder.current = false;
    }
  }, [c, selected, messages]);

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
      if (text.startsWith('/') && !text.includes('\n')) {
        const [cmd, arg] = text.split(/\s+/, 2);
        switch (cmd) {
          case '/quit':
            return exit();
          case '/help':
            return setScreen({ kind: 'help' });
          case '/search': {
            const query = text.slice('/search'.length).trim();
            setSearch({ ...EMPTY_SEARCH, query });
            setScreen({ kind: 'search' });
            if (query !== '') await runSearch(query);
            return;
          }
          case '/to':
            try {
              const peer = checkUserName((arg ?? '').toLowerCase(), 'NAME');
              setExtraPeers((p) => (p.includes(peer) ? p : [...p, peer]));
              select(peer);
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
      // Refused here, not in the core, so the text stays in the input to be shortened.
      const bytes = Buffer.byteLength(text, 'utf8');
      if (bytes > MAX_MESSAGE_TEXT_BYTES) {
        if (inputRef.current.text === '') setInput({ ...inputRef.current, text: line });
        return setNotice(
          `not sent: ${bytes} bytes, a message holds at most ${MAX_MESSAGE_TEXT_BYTES}; shorten it`,
        );
      }
      setScroll(0);
      try {
        const group = groups.get(selected);
        if (group !== undefined) await c.client.sendToGroup(group, text);
        else await c.client.send(selected, text);
      } catch (err) {
        setNotice(`not sent: ${(err as Error).message}`);
      }
      refresh();
    },
    [c, selected, groups, exit, openVerify, refresh, select, setInput, runSearch],
  );

  // Layout, from the top: header, banners, the panes, the notice, the input (up to
  // MAX_INPUT_ROWS rows), and one row left for ink's trailing newline, so the frame never
  // reaches the terminal's last row (ink would then redraw the whole screen each time).
  const promptText = selected ? `${selected}> ` : '> ';
  const inputWidth = Math.max(10, size.columns - promptText.length - 1);
  const inputLines = input.text.split('\n').flatMap((p) => wrapPlain(terminalSafe(p), inputWidth));
  const inputShown = inputLines.slice(-MAX_INPUT_ROWS);
  const inputHidden = inputLines.length - inputShown.length;
  const paneRows = Math.max(MIN_PANE_ROWS, size.rows - 3 - warnings.length - inputShown.length);
  const paneWidth = Math.max(20, size.columns - LIST_WIDTH - 2);
  const lines = useMemo(
    () => transcriptLines(messages, paneWidth, reasons),
    [messages, paneWidth, reasons],
  );
  // The conversation's first row says how the contact's key is trusted.
  const textRows = paneRows - 1;
  const view = visibleWindow(lines.length, textRows, scroll);
  // Scrolled back and a message arrives: keep the lines being read where they are.
  const newest = useRef<{ key: string | undefined; total: number }>({ key: undefined, total: 0 });
  useLayoutEffect(() => {
    const last = lines.at(-1)?.key;
    const before = newest.current;
    if (
      scroll > 0 &&
      before.key !== undefined &&
      last !== before.key &&
      lines.length > before.total
    ) {
      setScroll((s) => s + lines.length - before.total);
    }
    newest.current = { key: last, total: lines.length };
  }, [lines, scroll]);
  // A jump from the search box: once the message's lines are laid out, scroll them to
  // the top of the pane (or as near as the newest lines allow).
  useLayoutEffect(() => {
    const target = jumpTo.current;
    if (target === undefined) return;
    const i = lines.findIndex((l) => l.key === target);
    if (i < 0) return;
    jumpTo.current = undefined;
    setScroll(Math.max(0, lines.length - i - textRows));
  }, [lines, textRows]);

  const scrollBy = (delta: number): void => {
    const next = view.offset + delta;
    if (delta > 0 && next + textRows > lines.length && hasOlder) {
      // Past the loaded history: read the next older page; the view lands there once loaded.
      setScroll(next);
      void loadOlder();
      return;
    }
    setScroll(visibleWindow(lines.length, textRows, next).offset);
  };

  // ink re-subscribes a changed input handler in a passive effect, after the frame is
  // already on screen; a key arriving in between would reach the previous render's
  // handler (stale selection, empty list). One stable handler reading the latest render's
  // closure (swapped in during the commit, before any input can run) closes that gap.
  const onKey = useRef<(ch: string, key: Key) => void>(() => undefined);
  const handleKey = (ch: string, key: Key): void => {
    if (key.ctrl && ch === 'c') return exit();
    if (screen.kind === 'search') {
      const step = searchKey(searchRef.current, ch, key);
      setSearch(step.state);
      if (step.action.kind === 'close') setScreen({ kind: 'main' });
      if (step.action.kind === 'run') void runSearch(step.action.query);
      if (step.action.kind === 'jump') jump(step.action.message);
      return;
    }
    if (screen.kind === 'main' && key.ctrl && ch === 'f' && !inputRef.current.pasting) {
      setSearch((s) => ({ ...s, index: Math.min(s.index, Math.max(0, s.results.length - 1)) }));
      return setScreen({ kind: 'search' });
    }
    if (screen.kind !== 'main') {
      if (key.escape || key.return || ch === 'q') setScreen({ kind: 'main' });
      return;
    }
    if (!inputRef.current.pasting) {
      const page = Math.max(1, textRows - 1);
      if (key.pageUp) return scrollBy(page);
      if (key.pageDown) return scrollBy(-page);
      if (key.end) return setScroll(0);
      if (key.upArrow || key.downArrow) {
        if (rows.length === 0) return;
        const i = rows.findIndex((r) => r.peer === selected);
        const next = key.upArrow ? Math.max(0, i - 1) : Math.min(rows.length - 1, i + 1);
        if (rows[next]?.peer !== selected) select(rows[next]?.peer);
        return;
      }
    }
    const step = applyInputKey(inputRef.current, ch, key);
    setInput(step.state);
    for (const line of step.submitted) void submit(line);
  };
  useLayoutEffect(() => {
    onKey.current = handleKey;
  });
  useInput(useCallback((ch: string, key: Key) => onKey.current(ch, key), []));

  const header = (
    <Box>
      <Text bold wrap="truncate">
        Parley
      </Text>
      <Text wrap="truncate">
        {' '}
        · {c.account.name} ({c.account.info.mode}) ·{' '}
      </Text>
      {selected !== undefined && timerMs > 0 ? (
        <Text color="cyan">disappearing: {timerWords(timerMs)} · </Text>
      ) : null}
      {connected ? (
        <Text color="green">connected</Text>
      ) : c.revocation?.ownRevocation ? (
        <Text color="red">{c.revocation.ownRevocation.message}</Text>
      ) : (
        <Text color="yellow">offline, reconnecting…</Text>
      )}
    </Box>
  );

  if (screen.kind === 'help') return <HelpScreen header={header} />;
  if (screen.kind === 'verify') return <VerifyScreen header={header} {...screen} />;
  if (screen.kind === 'search') {
    return <SearchScreen header={header} state={search} rows={size.rows - 2} />;
  }

  const selectedIndex = Math.max(
    0,
    rows.findIndex((r) => r.peer === selected),
  );
  const listStart = Math.max(0, selectedIndex - paneRows + 1);
  const atTop = view.start === 0 && !hasOlder;
  const status =
    view.offset > 0 || scroll > 0
      ? `${atTop ? 'start of the conversation' : 'history'} · PgUp older · PgDn newer · End latest`
      : notice;
  return (
    <Box flexDirection="column" height={size.rows - 1}>
      {header}
      {warnings.map((w) => (
        <Text key={w} color="red" bold wrap="truncate">
          ⚠ {w}
        </Text>
      ))}
      <Box flexDirection="row" height={paneRows} overflow="hidden">
        <Box
          flexDirection="column"
          width={LIST_WIDTH}
          flexShrink={0}
          borderStyle="single"
          borderRight
          borderTop={false}
          borderBottom={false}
          borderLeft={false}
        >
          {rows.length === 0 ? <Text dimColor>/to NAME to start</Text> : null}
          {rows.slice(listStart, listStart + paneRows).map((r) => (
            <Text key={r.peer} inverse={r.peer === selected} wrap="truncate">
              {groups.has(r.peer)
                ? `# ${(groups.get(r.peer) ?? '').slice(0, LIST_WIDTH - 8)}`
                : `${r.online ? '●' : '○'} ${r.peer.slice(0, LIST_WIDTH - 8)}`}
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
          {lines.slice(view.start, view.end).map((l) => (
            <Text
              key={l.key}
              wrap="truncate"
              inverse={highlight !== undefined && l.key.startsWith(highlight)}
            >
              {l.parts.map((p, i) => (
                <PartText key={i} part={p} />
              ))}
            </Text>
          ))}
        </Box>
      </Box>
      <Text dimColor wrap="truncate">
        {status}
      </Text>
      {inputShown.map((l, i) => (
        <Box key={i}>
          <Text color="cyan">
            {i === 0
              ? inputHidden > 0
                ? `+${inputHidden}`.padEnd(promptText.length)
                : promptText
              : ' '.repeat(promptText.length)}
          </Text>
          <Text>{l}</Text>
          {i === inputShown.length - 1 ? <Text inverse> </Text> : null}
        </Box>
      ))}
    </Box>
  );
}

/** Runs the chat until the user quits. Connects in the background and keeps reconnecting. */
export async function runChat(c: NodeClient): Promise<void> {
  c.connect().catch(() => undefined);
  let restored = false;
  const restore = (): void => {
    if (restored) return;
    restored = true;
    process.stdout.write(LEAVE_FULL_SCREEN);
  };
  // Even on a crash the user's terminal gets its screen back and paste mode off.
  process.once('exit', restore);
  process.stdout.write(ENTER_FULL_SCREEN);
  try {
    const app = render(<ChatApp c={c} />, {
      exitOnCtrlC: false,
      // Shift+Enter is distinguishable only with the kitty keyboard protocol; ink turns it
      // on for terminals known to support it, after asking them.
      kittyKeyboard: { mode: 'auto' },
    });
    await app.waitUntilExit();
  } finally {
    restore();
    process.off('exit', restore);
  }
}

export { ChatApp };

/** A membership change as the notice line shows it. */
function groupEventText(e: GroupEvent): string {
  const who = e.members.join(', ');
  switch (e.change) {
    case 'create':
      return `${e.by} created ${e.group}`;
    case 'add':
      return `${e.by} added ${who} to ${e.group}`;
    case 'remove':
      return `${e.by} removed ${who} from ${e.group}`;
    case 'leave':
      return `${e.by} left ${e.group}`;
    case 'rename':
      return `${e.by} renamed the group to ${e.group}`;
    case 'removed-me':
      return `you were removed from ${e.group}`;
  }
}
