/** @jsxImportSource preact */
/**
 * One conversation: the trust line, the key-change warning, the "secured again" note,
 * the messages (local time, zone in the title; status marks of outgoing messages with
 * the reason of a failure) in an aria-live log, and the composer.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { JSX } from 'preact';
import { MAX_MESSAGE_TEXT_BYTES, describeTrust, fileOfText } from '@parley/client';
import type { Contact, StoredMessage } from '@parley/client';
import type { ChatSession } from './session.js';
import { clockTime, localDateTime, statusMark, timerWords } from './format.js';
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
  const st = m.direction === 'out' ? statusMark(m.status) : undefined;
  const who = m.direction === 'out' ? 'me' : m.peer;
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
        <div class={`status ${m.status}`} title={st.words} aria-label={st.words}>
          {st.mark}
          {m.status === 'failed' && reason ? <span class="reason">: {reason}</span> : null}
        </div>
      ) : null}
    </li>
  );
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
}: {
  s: ChatSession;
  peer: string;
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
      <header class="conv-header">
        <h2 id="conv-title">{peer}</h2>
        <span class={keyChanged ? 'trust danger' : 'trust'}>
          {contact ? describeTrust(contact.trust, s.mode) : 'no key yet (fetched on first message)'}
        </span>
        <button type="button" onClick={onVerify}>
          Safety number
        </button>
        <button type="button" onClick={onEnd}>
          End session
        </button>
        <TimerControl s={s} peer={peer} version={`${messages.length}:${last?.id ?? ''}`} />
      </header>
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
        aria-label={`Messages with ${peer}`}
        tabIndex={0}
      >
        {messages.map((m) => (
          <MessageItem
            key={`${m.direction}:${m.id}`}
            s={s}
            m={m}
            reason={failures.get(m.id)}
            focused={m.id === focusId}
          />
        ))}
      </ol>
      <Composer key={peer} peer={peer} onSend={onSend} />
      <AttachButton
        key={`attach:${peer}`}
        s={s}
        peer={peer}
        dropped={dropped}
        onSent={() => setDropped(undefined)}
      />
    </section>
  );
}
