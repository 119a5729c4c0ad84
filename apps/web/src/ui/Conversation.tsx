/** @jsxImportSource preact */
/**
 * One conversation: the trust line, the key-change warning, the "secured again" note,
 * the messages (local time, zone in the title; status marks of outgoing messages with
 * the reason of a failure) in an aria-live log, and the composer.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { JSX } from 'preact';
import { MAX_MESSAGE_TEXT_BYTES, describeTrust, fileOfText } from '@parley/client';
import type { Contact, GroupInfo, StoredMessage } from '@parley/client';
import type { ChatSession } from './session.js';
import { clockTime, groupStatusMark, localDateTime, statusMark, timerWords } from './format.js';
import type { ShownGroupEvent } from './use-chat.js';
import { GroupPanel, groupEventText } from './Groups.js';
import type { GroupEvent } from '@parley/client';
import { AttachButton, FileMessage } from './Attachment.js';
import { TimerControl } from './TimerControl.js';

function MessageItem({
  s,
  m,
  reason,
  focused,
}: {
  s: ChatSession;
  m: StoredMessage;
  reason: string | undefined;
  focused: boolean;
}): JSX.Element {
  const st =
    m.direction !== 'out'
      ? undefined
      : m.groupDelivery
        ? groupStatusMark(m.status, m.groupDelivery)
        : statusMark(m.status);
  // In a group the conversation is the group; the sender is the message's own field.
  const who = m.direction === 'out' ? 'me' : (m.from ?? m.peer);
  if (m.timerMs !== undefined) {
    return (
      <li class="msg event timer-event" data-id={m.id} data-timer={m.timerMs}>
        <p class="text">
          {m.direction === 'out' ? 'You' : m.peer} set disappearing messages to{' '}
          {timerWords(m.timerMs)} ({clockTime(m.sentAt)})
        </p>
      </li>
    );
  }
  const file = fileOfText(m.text);
  return (
    <li
      class={`msg ${m.direction}${focused ? ' focused' : ''}`}
      data-id={m.id}
      data-status={m.status}
      data-from={who}
      tabIndex={focused ? -1 : undefined}
    >
      <div class="meta">
        <span class="who">{who}</span>{' '}
        <time dateTime={new Date(m.sentAt).toISOString()} title={localDateTime(m.sentAt)}>
          {clockTime(m.sentAt)}
        </time>
        {m.expiresAt !== undefined ? (
          <span class="expires" title={`disappears at ${localDateTime(m.expiresAt)}`}>
            {' '}
            ⏱ {clockTime(m.expiresAt)}
          </span>
        ) : null}
      </div>
      {file ? <FileMessage s={s} entry={file} /> : <p class="text">{m.text}</p>}
      {st ? (
        <div
          class={`status ${m.status}`}
          title={st.words}
          aria-label={st.words}
          data-delivered={
            m.groupDelivery ? `${m.groupDelivery.by.length}/${m.groupDelivery.of}` : undefined
          }
        >
          {st.mark}
          {m.status === 'failed' && reason ? <span class="reason">: {reason}</span> : null}
        </div>
      ) : null}
    </li>
  );
}

function EventItem({ e }: { e: ShownGroupEvent }): JSX.Element {
  return (
    <li class="msg event group-event" data-change={e.event.change}>
      <p class="text">
        {groupEventText(e.event)} ({clockTime(e.at)})
      </p>
    </li>
  );
}

type Entry = { kind: 'message'; m: StoredMessage } | { kind: 'event'; e: ShownGroupEvent };

/**
 * Membership events merged into the messages by local time; the messages keep the
 * store's order (an event goes before the first message stored after it).
 */
function timeline(messages: readonly StoredMessage[], events: readonly ShownGroupEvent[]): Entry[] {
  const out: Entry[] = [];
  const waiting = [...events].sort((a, b) => a.at - b.at);
  let i = 0;
  for (const m of messages) {
    while (i < waiting.length && waiting[i]!.at < m.storedAt)
      out.push({ kind: 'event', e: waiting[i++]! });
    out.push({ kind: 'message', m });
  }
  while (i < waiting.length) out.push({ kind: 'event', e: waiting[i++]! });
  return out;
}

export function Composer({
  peer,
  onSend,
}: {
  peer: string;
  onSend: (text: string) => Promise<boolean>;
}): JSX.Element {
  const [text, setText] = useState('');
  const [error, setError] = useState<string | undefined>();
  const ref = useRef<HTMLTextAreaElement>(null);
  useEffect(() => ref.current?.focus(), [peer]);

  const send = async (): Promise<void> => {
    const body = text.replace(/\s+$/, '');
    if (body.trim().length === 0) return;
    if (new TextEncoder().encode(body).length > MAX_MESSAGE_TEXT_BYTES) {
      setError(`Too long: at most ${MAX_MESSAGE_TEXT_BYTES} bytes per message.`);
      return;
    }
    setError(undefined);
    // Cleared only once the core has stored it, so a refused message stays editable.
    if (await onSend(body)) setText('');
  };

  const onKeyDown = (e: KeyboardEvent): void => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      void send();
    }
  };

  return (
    <form
      class="composer"
      onSubmit={(e) => {
        e.preventDefault();
        void send();
      }}
    >
      <label for="composer-text" class="visually-hidden">
        Message to {peer}
      </label>
      <textarea
        id="composer-text"
        ref={ref}
        rows={2}
        value={text}
        placeholder={`Message ${peer} (Enter sends, Shift+Enter new line)`}
        onInput={(e) => setText(e.currentTarget.value)}
        onKeyDown={onKeyDown}
        aria-describedby="composer-error"
      />
      <button type="submit">Send</button>
      <p id="composer-error" class="error" role="alert">
        {error ?? ''}
      </p>
    </form>
  );
}

export function Conversation({
  s,
  peer,
  contact,
  messages,
  failures,
  keyChanged,
  repaired,
  onSend,
  onVerify,
  onEnd,
  focusId,
  group,
  groupEvents,
  onGroupChanged,
}: {
  s: ChatSession;
  peer: string;
  /** Set when the conversation is a group's (`peer` is then its conversation id). */
  group?: GroupInfo | undefined;
  groupEvents?: readonly ShownGroupEvent[] | undefined;
  onGroupChanged?: (e: GroupEvent) => void;
  contact: Contact | undefined;
  messages: readonly StoredMessage[];
  failures: ReadonlyMap<string, string>;
  keyChanged: boolean;
  repaired: boolean;
  onSend: (text: string) => Promise<boolean>;
  onVerify: () => void;
  /** Ends the session (keys discarded on both sides; the next message starts afresh). */
  onEnd: () => void;
  /** A message to bring into view (a search answer). */
  focusId?: string | undefined;
}): JSX.Element {
  const log = useRef<HTMLOListElement>(null);
  const [dropped, setDropped] = useState<File | undefined>();
  const last = messages[messages.length - 1];
  const focusShown = focusId !== undefined && messages.some((m) => m.id === focusId);
  useEffect(() => {
    const el = log.current;
    if (el && !focusShown) el.scrollTop = el.scrollHeight;
  }, [peer, last?.id, last?.status, focusShown]);
  useEffect(() => {
    if (!focusShown) return;
    const el = log.current?.querySelector<HTMLElement>(`li[data-id="${focusId}"]`);
    el?.scrollIntoView({ block: 'center' });
    el?.focus();
  }, [focusId, focusShown]);

  return (
    <section
      class="conversation"
      aria-labelledby="conv-title"
      onDragOver={(e) => e.preventDefault()}
      onDrop={(e) => {
        const file = e.dataTransfer?.files[0];
        if (!file) return;
        e.preventDefault();
        setDropped(file);
      }}
    >
      {group ? (
        <header class="conv-header">
          <h2 id="conv-title">
            <span class="group-mark" aria-hidden="true">
              #
            </span>
            {group.name}
            <span class="visually-hidden"> (group)</span>
          </h2>
          <GroupPanel s={s} group={group} onChanged={(e) => onGroupChanged?.(e)} />
        </header>
      ) : (
        <header class="conv-header">
          <h2 id="conv-title">{peer}</h2>
          <span class={keyChanged ? 'trust danger' : 'trust'}>
            {contact
              ? describeTrust(contact.trust, s.mode)
              : 'no key yet (fetched on first message)'}
          </span>
          <button type="button" onClick={onVerify}>
            Safety number
          </button>
          <button type="button" onClick={onEnd}>
            End session
          </button>
          <TimerControl s={s} peer={peer} version={`${messages.length}:${last?.id ?? ''}`} />
        </header>
      )}
      {keyChanged ? (
        <div class="keychange" role="alert">
          <strong>⚠ {peer}&apos;s identity key changed.</strong> Someone may be impersonating {peer}
          , or they reinstalled. Compare the safety number before you trust new messages.
          <button type="button" onClick={onVerify}>
            Compare and accept the new key
          </button>
        </div>
      ) : null}
      {repaired ? (
        <p class="note" role="status">
          Session with {peer} secured again.
        </p>
      ) : null}
      <ol
        class="messages"
        ref={log}
        role="log"
        aria-live="polite"
        aria-label={group ? `Messages in ${group.name}` : `Messages with ${peer}`}
        tabIndex={0}
      >
        {timeline(messages, groupEvents ?? []).map((x, i) =>
          x.kind === 'message' ? (
            <MessageItem
              key={`${x.m.direction}:${x.m.id}`}
              s={s}
              m={x.m}
              reason={failures.get(x.m.id)}
              focused={x.m.id === focusId}
            />
          ) : (
            <EventItem key={`event:${i}`} e={x.e} />
          ),
        )}
      </ol>
      {group && group.status !== 'active' ? (
        <p class="note" role="status">
          {group.status === 'left'
            ? `You left ${group.name}; nothing more is sent or read here.`
            : `You were removed from ${group.name}; nothing more is sent or read here.`}
        </p>
      ) : (
        <Composer key={peer} peer={group ? group.name : peer} onSend={onSend} />
      )}
      {group ? null : (
        <AttachButton
          key={`attach:${peer}`}
          s={s}
          peer={peer}
          dropped={dropped}
          onSent={() => setDropped(undefined)}
        />
      )}
    </section>
  );
}
