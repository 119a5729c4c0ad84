/** @jsxImportSource preact */
/**
 * The signed-in screen: connection banner, conversation list (unread counts, presence),
 * the selected conversation, and the safety-number dialog. On a narrow screen the list
 * and the conversation take turns (the "Conversations" button goes back).
 */
import { useState } from 'preact/hooks';
import type { JSX } from 'preact';
import { checkUserName, displayText } from '@parley/client';
import type { ChatSession } from './session.js';
import { useChat } from './use-chat.js';
import type { Connection, Row } from './use-chat.js';
import { Conversation } from './Conversation.js';
import { Safety } from './Safety.js';
import { Search } from './Search.js';
import { BackupExport } from './Backup.js';
import { GroupForms } from './Groups.js';
import {
  disableNotifications,
  enableNotifications,
  notifyIncoming,
  notifyState,
} from './notifications.js';

function Banner({
  connection,
  reason,
}: {
  connection: Connection;
  reason: string | undefined;
}): JSX.Element | null {
  if (connection === 'connected') return null;
  const text =
    connection === 'offline'
      ? 'Offline. Messages you write are kept and sent when the network is back.'
      : connection === 'refused'
        ? `The relay refused this device${reason ? `: ${reason}` : ''}. Messages stay here, unsent.`
        : 'Not connected to the relay; reconnecting… Messages you write are kept and sent after reconnecting.';
  return (
    <div
      class={`banner ${connection}`}
      role={connection === 'refused' ? 'alert' : 'status'}
      data-connection={connection}
      title={reason}
    >
      {text}
    </div>
  );
}

function List({
  rows,
  selected,
  onSelect,
  groupForms,
}: {
  rows: readonly Row[];
  selected: string | undefined;
  onSelect: (peer: string) => void;
  groupForms: JSX.Element;
}): JSX.Element {
  const [name, setName] = useState('');
  const [error, setError] = useState<string | undefined>();
  const open = (e: Event): void => {
    e.preventDefault();
    try {
      onSelect(checkUserName(name.trim().toLowerCase(), 'name'));
      setName('');
      setError(undefined);
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <nav class="list" aria-label="Conversations">
      <form class="new-chat" onSubmit={open}>
        <label for="new-chat-name">Start a conversation</label>
        <div class="row">
          <input
            id="new-chat-name"
            placeholder="name"
            value={name}
            autoComplete="off"
            onInput={(e) => setName(e.currentTarget.value)}
            aria-describedby="new-chat-error"
          />
          <button type="submit">Open</button>
        </div>
        <p id="new-chat-error" class="error" role="alert">
          {error ?? ''}
        </p>
      </form>
      {groupForms}
      <ul>
        {rows.map((r) => (
          <li key={r.peer}>
            <button
              type="button"
              class="conv"
              data-peer={r.peer}
              data-group={r.group?.name}
              aria-current={r.peer === selected ? 'true' : undefined}
              onClick={() => onSelect(r.peer)}
            >
              {r.group ? (
                <span class="group-mark" aria-label="group" title="group">
                  #
                </span>
              ) : (
                <span
                  class={r.online ? 'presence online' : 'presence'}
                  aria-label={r.online ? 'online' : 'offline'}
                  title={r.online ? 'online' : 'offline'}
                >
                  {r.online ? '●' : '○'}
                </span>
              )}
              <span class="peer">{r.group ? r.group.name : r.peer}</span>
              {r.group ? (
                <span
                  class="count"
                  aria-label={`${r.group.members.length} members`}
                  title={`${r.group.members.length} members`}
                >
                  {r.group.members.length}
                  {r.group.status === 'active'
                    ? ''
                    : r.group.status === 'left'
                      ? ' left'
                      : ' removed'}
                </span>
              ) : null}
              {r.unread > 0 ? (
                <span class="unread" aria-label={`${r.unread} unread`}>
                  {r.unread}
                </span>
              ) : null}
              <span class="last">{displayText(r.lastText)}</span>
            </button>
          </li>
        ))}
      </ul>
    </nav>
  );
}

export function Chat({ s, onLock }: { s: ChatSession; onLock: () => void }): JSX.Element {
  const chat = useChat(s, (m) => notifyIncoming(m.peer));
  const [safetyOf, setSafetyOf] = useState<string | undefined>();
  const [narrowView, setNarrowView] = useState<'list' | 'conversation'>('list');
  const [notify, setNotify] = useState(notifyState());
  const [backupOpen, setBackupOpen] = useState(false);
  const [focusId, setFocusId] = useState<string | undefined>();

  const select = (peer: string): void => {
    chat.select(peer);
    setFocusId(undefined);
    setNarrowView('conversation');
  };

  const send = async (text: string): Promise<boolean> => {
    const peer = chat.selected;
    if (peer === undefined) return false;
    const group = chat.groups.find((g) => g.conversation === peer);
    try {
      if (group) await s.client.sendToGroup(group.name, text);
      else await s.client.send(peer, text);
      chat.setNotice(undefined);
      return true;
    } catch (err) {
      chat.setNotice(`Not sent: ${(err as Error).message}`);
      return false;
    } finally {
      chat.refresh();
    }
  };

  const peer = chat.selected;
  const group = chat.groups.find((g) => g.conversation === peer);
  return (
    <div class={`chat show-${narrowView}`}>
      <header class="top">
        <h1>Parley</h1>
        <span class="me">
          {s.name} ({s.mode})
        </span>
        <span class={`conn ${chat.connection}`} data-connection={chat.connection}>
          {chat.connection === 'connected' ? 'connected' : chat.connection}
        </span>
        {notify === 'off' ? (
          <button type="button" onClick={() => void enableNotifications().then(setNotify)}>
            Notify me
          </button>
        ) : notify === 'on' ? (
          <button type="button" onClick={() => setNotify(disableNotifications())}>
            Notifications on
          </button>
        ) : null}
        {s.exportBackup ? (
          <button type="button" onClick={() => setBackupOpen(true)}>
            Back up
          </button>
        ) : null}
        <button type="button" onClick={onLock}>
          Lock
        </button>
      </header>
      <Search
        s={s}
        peer={peer}
        onOpen={(p, id) => {
          select(p);
          setFocusId(id);
        }}
      />
      <Banner connection={chat.connection} reason={chat.linkReason} />
      {chat.notice ? (
        <p class="notice" role="status">
          {chat.notice}
        </p>
      ) : null}
      <div class="panes">
        <List
          rows={chat.rows}
          selected={peer}
          onSelect={select}
          groupForms={
            <GroupForms
              s={s}
              onOpen={(c) => {
                chat.refresh();
                select(c);
              }}
              onMade={chat.noteGroupEvent}
            />
          }
        />
        {peer === undefined ? (
          <section class="conversation empty">
            <p>No conversation selected. Start one with a name on the left.</p>
          </section>
        ) : (
          <div class="conv-wrap">
            <button type="button" class="back" onClick={() => setNarrowView('list')}>
              ← Conversations
            </button>
            <Conversation
              s={s}
              peer={peer}
              group={group}
              groupEvents={chat.groupEvents.get(peer)}
              onGroupChanged={(e) => {
                chat.noteGroupEvent(e);
                chat.refresh();
              }}
              contact={chat.contacts.find((k) => k.name === peer)}
              messages={chat.messages}
              failures={chat.failures}
              keyChanged={chat.keyChanged.includes(peer)}
              repaired={chat.repaired.has(peer)}
              onSend={send}
              focusId={focusId}
              onVerify={() => setSafetyOf(peer)}
              onEnd={() => {
                if (!window.confirm(`End the session with ${peer}? Its keys are discarded.`))
                  return;
                s.client.terminate(peer).catch((err: unknown) => {
                  chat.setNotice(`End session: ${(err as Error).message}`);
                });
              }}
            />
          </div>
        )}
      </div>
      {backupOpen ? <BackupExport s={s} onClose={() => setBackupOpen(false)} /> : null}
      {safetyOf !== undefined ? (
        <Safety
          s={s}
          peer={safetyOf}
          onClose={() => setSafetyOf(undefined)}
          onVerified={() => {
            chat.refresh();
            chat.setNotice(`${safetyOf} marked verified.`);
          }}
        />
      ) : null}
    </div>
  );
}
