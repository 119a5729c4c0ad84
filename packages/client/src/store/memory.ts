/**
 * The in-memory reference store: what every other backend must behave like (the
 * contract suite in test/store-contract.ts runs against each). Batches are applied
 * to a copy of the state and swapped in only if every write succeeded, so a failed
 * batch leaves nothing behind, exactly as a rolled-back SQL transaction would.
 */
import { ClientError } from '../errors.js';
import type {
  ClientStore,
  Contact,
  ConversationSummary,
  ListMessagesOptions,
  OutboxEntry,
  StoreWrite,
  StoredMessage,
} from './types.js';
import { searchInMessages } from './search.js';
import type { SearchOptions } from './search.js';

interface State {
  meta: Map<string, Uint8Array>;
  sessions: Map<string, Uint8Array>;
  secrets: Map<string, Uint8Array>;
  contacts: Map<string, Contact>;
  messages: Map<string, StoredMessage>;
  seen: Set<string>;
  outbox: Map<string, OutboxEntry>;
  nextSeq: number;
}

const sessionKey = (peer: string, deviceId: number): string => `${peer}\u0000${deviceId}`;
const secretKey = (kind: string, id: number): string => `${kind}\u0000${id}`;
const messageKey = (peer: string, direction: string, id: string): string =>
  `${peer}\u0000${direction}\u0000${id}`;
// Stored values are copied in and out so callers cannot mutate the store by aliasing.
const copy = (b: Uint8Array): Uint8Array => b.slice();

function cloneState(s: State): State {
  return {
    meta: new Map(s.meta),
    sessions: new Map(s.sessions),
    secrets: new Map(s.secrets),
    contacts: new Map(s.contacts),
    messages: new Map(s.messages),
    seen: new Set(s.seen),
    outbox: new Map(s.outbox),
    nextSeq: s.nextSeq,
  };
}

function copyContact(c: Contact): Contact {
  return {
    ...c,
    identityKey: copy(c.identityKey),
    ...(c.previousIdentityKey ? { previousIdentityKey: copy(c.previousIdentityKey) } : {}),
  };
}

/** Applies one write to `s` (a private copy). Exported for backends that mirror it. */
function apply(s: State, w: StoreWrite): void {
  switch (w.op) {
    case 'meta.put':
      s.meta.set(w.key, copy(w.value));
      return;
    case 'meta.delete':
      s.meta.delete(w.key);
      return;
    case 'session.put':
      s.sessions.set(sessionKey(w.peer, w.deviceId), copy(w.state));
      return;
    case 'session.delete':
      s.sessions.delete(sessionKey(w.peer, w.deviceId));
      return;
    case 'secret.put':
      s.secrets.set(secretKey(w.kind, w.id), copy(w.value));
      return;
    case 'secret.delete':
      s.secrets.delete(secretKey(w.kind, w.id));
      return;
    case 'contact.put':
      s.contacts.set(w.contact.name, copyContact(w.contact));
      return;
    case 'message.put': {
      const k = messageKey(w.message.peer, w.message.direction, w.message.id);
      const existing = s.messages.get(k);
      const seq = existing?.seq ?? s.nextSeq++;
      s.messages.set(k, { ...w.message, seq });
      return;
    }
    case 'message.status': {
      const k = messageKey(w.peer, 'out', w.id);
      const m = s.messages.get(k) ?? s.messages.get(messageKey(w.peer, 'in', w.id));
      if (!m) throw new ClientError('NOT_FOUND', `message.status: no message ${w.id}`);
      s.messages.set(messageKey(m.peer, m.direction, m.id), { ...m, status: w.status });
      return;
    }
    case 'message.shown':
      for (const [k, m] of s.messages) {
        if (m.peer === w.peer && m.direction === 'in' && (m.seq ?? 0) <= w.uptoSeq && !m.shown) {
          s.messages.set(k, { ...m, shown: true });
        }
      }
      return;
    case 'message.delete':
      // JavaScript strings cannot be wiped; dropping the only reference is what it can do.
      s.messages.delete(messageKey(w.peer, w.direction, w.id));
      return;
    case 'conversation.delete':
      for (const [k, m] of s.messages) if (m.peer === w.peer) s.messages.delete(k);
      return;
    case 'seen.add':
      s.seen.add(w.key);
      return;
    case 'outbox.put':
      s.outbox.set(w.entry.id, { ...w.entry, payload: copy(w.entry.payload) });
      return;
    case 'outbox.sent': {
      const e = s.outbox.get(w.id);
      if (e && e.state === 'pending')
        s.outbox.set(w.id, { ...e, state: 'sent', payload: new Uint8Array(0) });
      return;
    }
    case 'outbox.delete':
      s.outbox.delete(w.id);
      return;
  }
}

/** Filters and orders messages the way every backend must. */
export function selectMessages(
  all: Iterable<StoredMessage>,
  peer: string | undefined,
  options: ListMessagesOptions = {},
): StoredMessage[] {
  let out = [...all].filter(
    (m) =>
      (peer === undefined || m.peer === peer) &&
      (options.afterSeq === undefined || (m.seq ?? 0) > options.afterSeq) &&
      (options.beforeSeq === undefined || (m.seq ?? 0) < options.beforeSeq) &&
      (!options.unshownOnly || (m.direction === 'in' && !m.shown)),
  );
  out.sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
  if (options.limit !== undefined) out = out.slice(Math.max(0, out.length - options.limit));
  return out;
}

/** Conversations, most recent first. */
export function summarise(all: Iterable<StoredMessage>): ConversationSummary[] {
  const byPeer = new Map<string, { last: StoredMessage; unread: number }>();
  for (const m of all) {
    const cur = byPeer.get(m.peer);
    const unread = (cur?.unread ?? 0) + (m.direction === 'in' && !m.shown ? 1 : 0);
    const last = !cur || (m.seq ?? 0) > (cur.last.seq ?? 0) ? m : cur.last;
    byPeer.set(m.peer, { last, unread });
  }
  return [...byPeer.entries()]
    .map(([peer, v]) => ({
      peer,
      lastText: v.last.text,
      lastAt: v.last.storedAt,
      unread: v.unread,
      seq: v.last.seq ?? 0,
    }))
    .sort((a, b) => b.seq - a.seq)
    .map(({ seq: _seq, ...rest }) => rest);
}

/** A store that lives and dies with the process: tests, simulators, ephemeral sessions. */
export class MemoryStore implements ClientStore {
  private state: State = {
    meta: new Map(),
    sessions: new Map(),
    secrets: new Map(),
    contacts: new Map(),
    messages: new Map(),
    seen: new Set(),
    outbox: new Map(),
    nextSeq: 1,
  };
  private closed = false;

  private live(): State {
    if (this.closed) throw new ClientError('CLOSED', 'store is closed');
    return this.state;
  }

  async getMeta(key: string): Promise<Uint8Array | undefined> {
    const v = this.live().meta.get(key);
    return v && copy(v);
  }
  async getSession(peer: string, deviceId: number): Promise<Uint8Array | undefined> {
    const v = this.live().sessions.get(sessionKey(peer, deviceId));
    return v && copy(v);
  }
  async getSecret(kind: string, id: number): Promise<Uint8Array | undefined> {
    const v = this.live().secrets.get(secretKey(kind, id));
    return v && copy(v);
  }
  async listSecretIds(kind: string): Promise<number[]> {
    const prefix = `${kind}\u0000`;
    return [...this.live().secrets.keys()]
      .filter((k) => k.startsWith(prefix))
      .map((k) => Number(k.slice(prefix.length)))
      .sort((a, b) => a - b);
  }
  async getContact(name: string): Promise<Contact | undefined> {
    const c = this.live().contacts.get(name);
    return c && copyContact(c);
  }
  async listContacts(): Promise<Contact[]> {
    return [...this.live().contacts.values()]
      .map(copyContact)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
  async getMessage(
    peer: string,
    direction: 'in' | 'out',
    id: string,
  ): Promise<StoredMessage | undefined> {
    return this.live().messages.get(messageKey(peer, direction, id));
  }
  async listMessages(peer?: string, options?: ListMessagesOptions): Promise<StoredMessage[]> {
    return selectMessages(this.live().messages.values(), peer, options);
  }
  async listConversations(): Promise<ConversationSummary[]> {
    return summarise(this.live().messages.values());
  }
  async searchMessages(query: string, options?: SearchOptions): Promise<StoredMessage[]> {
    return searchInMessages(this.live().messages.values(), query, options);
  }
  async hasSeen(key: string): Promise<boolean> {
    return this.live().seen.has(key);
  }
  async listOutbox(): Promise<OutboxEntry[]> {
    return [...this.live().outbox.values()]
      .filter((e) => e.state === 'pending')
      .sort((a, b) => a.createdAt - b.createdAt)
      .map((e) => ({ ...e, payload: copy(e.payload) }));
  }
  async getOutbox(id: string): Promise<OutboxEntry | undefined> {
    const e = this.live().outbox.get(id);
    return e && { ...e, payload: copy(e.payload) };
  }
  async commit(writes: readonly StoreWrite[]): Promise<void> {
    const next = cloneState(this.live());
    for (const w of writes) apply(next, w);
    this.state = next;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}
