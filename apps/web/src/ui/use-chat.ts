/**
 * The chat's state, read from the client core: conversations (with unread counts and
 * presence), contacts, the selected conversation's messages with the reasons of failed
 * ones, the connection state, key-change warnings and "secured again" notes. Every core
 * event triggers one re-read of the store, as in the terminal chat, so what is shown is
 * what is committed.
 */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import type {
  Contact,
  ConversationSummary,
  GroupEvent,
  GroupInfo,
  StoredMessage,
} from '@parley/client';
import type { ChatSession, LinkState } from './session.js';

/** Messages kept on screen per conversation; older ones stay in the store. */
export const VISIBLE_HISTORY = 200;

export type Connection = 'connected' | 'reconnecting' | 'offline' | 'refused';

export interface Row {
  readonly peer: string;
  readonly unread: number;
  readonly online: boolean;
  readonly lastText: string;
  /** Set for a group's conversation (`peer` is then its conversation id). */
  readonly group?: GroupInfo;
}

/** A membership event shown in a group's conversation (kept while the page is open). */
export interface ShownGroupEvent {
  readonly event: GroupEvent;
  /** Local ms it was seen, to place it among the messages. */
  readonly at: number;
}

export interface ChatState {
  readonly connection: Connection;
  /** Why the link is down, when the platform says (refused credentials, network error). */
  readonly linkReason: string | undefined;
  readonly rows: readonly Row[];
  readonly contacts: readonly Contact[];
  /** Every group this profile knows (active, left or removed). */
  readonly groups: readonly GroupInfo[];
  /** Membership events seen since the page opened, by group conversation id. */
  readonly groupEvents: ReadonlyMap<string, readonly ShownGroupEvent[]>;
  /** Shows an event of a change we made (the core reports only others' changes). */
  noteGroupEvent(event: GroupEvent): void;
  readonly selected: string | undefined;
  readonly messages: readonly StoredMessage[];
  /** Reason text of each failed outgoing message of the selected conversation, by id. */
  readonly failures: ReadonlyMap<string, string>;
  /** Peers whose identity key changed and is not verified again. */
  readonly keyChanged: readonly string[];
  /** Peers whose session was repaired since the page opened ("secured again"). */
  readonly repaired: ReadonlySet<string>;
  readonly notice: string | undefined;
  select(peer: string): void;
  setNotice(text: string | undefined): void;
  refresh(): void;
}

function browserOnline(): boolean {
  return typeof navigator === 'undefined' || navigator.onLine !== false;
}

/** Authenticated is what counts as connected; a refusal is not "reconnecting". */
function connectionOf(ready: boolean, online: boolean, link: LinkState | undefined): Connection {
  if (link?.kind === 'refused') return 'refused';
  if (ready) return 'connected';
  return online ? 'reconnecting' : 'offline';
}

export function useChat(s: ChatSession, onIncoming?: (message: StoredMessage) => void): ChatState {
  const { client } = s;
  const [ready, setReady] = useState(client.isReady);
  const [online, setOnline] = useState(browserOnline());
  const [link, setLink] = useState<LinkState | undefined>(undefined);
  const [conversations, setConversations] = useState<ConversationSummary[]>([]);
  const [contacts, setContacts] = useState<Contact[]>([]);
  const [groups, setGroups] = useState<GroupInfo[]>([]);
  const [groupEvents, setGroupEvents] = useState<Map<string, ShownGroupEvent[]>>(new Map());
  const [extraPeers, setExtraPeers] = useState<string[]>([]);
  const [selected, setSelected] = useState<string | undefined>(undefined);
  const [messages, setMessages] = useState<StoredMessage[]>([]);
  const [failures, setFailures] = useState<Map<string, string>>(new Map());
  const [repaired, setRepaired] = useState<Set<string>>(new Set());
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const [tick, setTick] = useState(0);
  const refresh = useCallback(() => setTick((t) => t + 1), []);
  const incoming = useRef(onIncoming);
  incoming.current = onIncoming;
  // Events name the group; it is placed under its conversation once known.
  const pendingEvents = useRef<ShownGroupEvent[]>([]);
  const noteGroupEvent = useCallback((event: GroupEvent) => {
    pendingEvents.current.push({ event, at: Date.now() });
    setTick((t) => t + 1);
  }, []);

  useEffect(() => {
    const off = client.on((e) => {
      if (e.type === 'ready') setReady(true);
      if (e.type === 'disconnected') setReady(false);
      if (e.type === 'message' && e.message.direction === 'in') incoming.current?.(e.message);
      if (e.type === 'session-repaired') setRepaired((r) => new Set(r).add(e.peer));
      if (e.type === 'error') setNotice(e.error.message);
      if (e.type === 'session-ended') setNotice(`Session with ${e.peer} ended; keys discarded.`);
      if (e.type === 'group') pendingEvents.current.push({ event: e, at: Date.now() });
      refresh();
    });
    // The client may have become ready between the first render and this subscription.
    setReady(client.isReady);
    const offLink = s.onLink?.(setLink);
    const up = (): void => setOnline(true);
    const down = (): void => setOnline(false);
    window.addEventListener('online', up);
    window.addEventListener('offline', down);
    // Coming back to the tab marks what is now on screen as read.
    document.addEventListener('visibilitychange', refresh);
    return () => {
      off();
      offLink?.();
      window.removeEventListener('online', up);
      window.removeEventListener('offline', down);
      document.removeEventListener('visibilitychange', refresh);
    };
  }, [s, client, refresh]);

  useEffect(() => {
    let live = true;
    void (async () => {
      const [conv, cont, gl] = await Promise.all([
        client.conversations(),
        client.contacts(),
        client.groupList(),
      ]);
      if (!live) return;
      setConversations(conv);
      setContacts(cont);
      setGroups(gl);
      if (pendingEvents.current.length > 0) {
        const placed = pendingEvents.current.filter((p) =>
          gl.some((g) => g.name === p.event.group),
        );
        pendingEvents.current = pendingEvents.current.filter((p) => !placed.includes(p));
        setGroupEvents((old) => {
          const next = new Map(old);
          for (const p of placed) {
            const conversation = gl.find((g) => g.name === p.event.group)!.conversation;
            next.set(conversation, [...(next.get(conversation) ?? []), p]);
          }
          return next;
        });
      }
      const peer = selected ?? conv[0]?.peer;
      if (peer !== undefined && selected === undefined) setSelected(peer);
      if (peer === undefined) {
        setMessages([]);
        return;
      }
      const list = await client.messages(peer, { limit: VISIBLE_HISTORY });
      const reasons = new Map<string, string>();
      for (const m of list) {
        if (m.direction !== 'out' || m.status !== 'failed') continue;
        const f = await client.sendFailure(peer, m.id);
        if (f) reasons.set(m.id, f.reason);
      }
      if (!live) return;
      setMessages(list);
      setFailures(reasons);
      const lastIn = [...list].reverse().find((m) => m.direction === 'in' && !m.shown);
      if (lastIn?.seq !== undefined && document.visibilityState === 'visible') {
        await client.markShown(peer, lastIn.seq);
        if (live) refresh();
      }
    })().catch((err: unknown) => {
      if (live) setNotice((err as Error).message);
    });
    return () => {
      live = false;
    };
    // `tick` re-reads after every event.
  }, [client, selected, tick, refresh]);

  const rows: Row[] = [];
  const seen = new Set<string>();
  const byConversation = new Map(groups.map((g) => [g.conversation, g]));
  const add = (peer: string, unread: number, lastText: string): void => {
    if (seen.has(peer) || peer === s.name) return;
    seen.add(peer);
    const group = byConversation.get(peer);
    rows.push({
      peer,
      unread,
      online: group === undefined && client.online.has(peer),
      lastText,
      ...(group ? { group } : {}),
    });
  };
  for (const c of conversations) add(c.peer, c.unread, c.lastText);
  for (const g of groups) add(g.conversation, 0, '');
  for (const p of extraPeers) add(p, 0, '');
  for (const k of contacts) add(k.name, 0, '');

  const select = useCallback((peer: string) => {
    setExtraPeers((p) => (p.includes(peer) ? p : [...p, peer]));
    setSelected(peer);
  }, []);

  return {
    connection: connectionOf(ready, online, link),
    linkReason: link && 'reason' in link ? link.reason : undefined,
    rows,
    contacts,
    groups,
    groupEvents,
    noteGroupEvent,
    selected,
    messages: selected === undefined ? [] : messages.filter((m) => m.peer === selected),
    failures,
    keyChanged: contacts.filter((k) => k.trust === 'key-changed').map((k) => k.name),
    repaired,
    notice,
    select,
    setNotice,
    refresh,
  };
}
