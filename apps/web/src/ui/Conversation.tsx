/** @jsxImportSource preact */
/**
 * One conversation: the trust line, the key-change warning, the "secured again" note,
 * the messages (local time, zone in the title; status marks of outgoing messages with
 * the reason of a failure) in an aria-live log, and the composer.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { JSX } from 'preact';
import { MAX_MESSAGE_TEXT_BYTES, describeTrust } from '@parley/client';
import type { Contact, StoredMessage } from '@parley/client';
import type { ChatSession } from './session.js';
import { clockTime, localDateTime, statusMark } from './format.js';

function MessageItem({ m, reason }: { m: StoredMessage; reason: string | undefined }): JSX.Element {
  const st = m.direction === 'out' ? statusMark(m.status) : undefined;
  return (
    <li class={`msg ${m.direction}`} data-id={m.id} data-status={m.status}>
      <div class="meta">
        <span class="who">{m.direction === 'out' ? 'me' : m.peer}</span>{' '}
        <time dateTime={new Date(m.sentAt).toISOString()} title={localDateTime(m.sentAt)}>
          {clockTime(m.sentAt)}
        </time>
      </div>
      <p class="text">{m.text}</p>
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
}): JSX.Element {
  const log = useRef<HTMLOListElement>(null);
  const last = messages[messages.length - 1];
  useEffect(() => {
    const el = log.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [peer, last?.id, last?.status]);

  return (
    <section class="conversation" aria-labelledby="conv-title">
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
          <MessageItem key={`${m.direction}:${m.id}`} m={m} reason={failures.get(m.id)} />
        ))}
      </ol>
      <Composer key={peer} peer={peer} onSend={onSend} />
    </section>
  );
}
