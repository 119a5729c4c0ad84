/** @jsxImportSource preact */
/**
 * Groups in the web client: the "New group" and "Join room" forms of the conversation
 * list, a group's member panel (an admin adds and removes members; anyone leaves), and
 * the words of membership events. Every action goes to the client core, which checks
 * names and rights; its error is shown beside the form.
 */
import { useState } from 'preact/hooks';
import type { JSX } from 'preact';
import type { GroupEvent, GroupInfo } from '@parley/client';
import type { ChatSession } from './session.js';

/** Names typed as "bob, carol dave": lower case, no duplicates, none empty. */
export function memberNames(text: string): string[] {
  return [
    ...new Set(
      text
        .split(/[\s,]+/)
        .map((n) => n.trim().toLowerCase())
        .filter((n) => n.length > 0),
    ),
  ];
}

/** A membership event in words, as the terminal chat says it. */
export function groupEventText(e: GroupEvent): string {
  const who = e.members.join(', ');
  switch (e.change) {
    case 'create':
      return `${e.by} created ${e.group}`;
    case 'add':
      return `${e.by} added ${who}`;
    case 'remove':
      return `${e.by} removed ${who}`;
    case 'leave':
      return `${e.by} left`;
    case 'rename':
      return `${e.by} renamed the group to ${e.group}`;
    case 'removed-me':
      return `You were removed from ${e.group} by ${e.by}`;
  }
}

/** One labelled text field with its submit button and its error line. */
function ActionForm({
  id,
  label,
  placeholder,
  button,
  run,
  extra,
}: {
  id: string;
  label: string;
  placeholder: string;
  button: string;
  run: (value: string, extra: string) => Promise<void>;
  /** A second field (the members of a new group). */
  extra?: { label: string; placeholder: string };
}): JSX.Element {
  const [value, setValue] = useState('');
  const [more, setMore] = useState('');
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const submit = (e: Event): void => {
    e.preventDefault();
    if (busy || value.trim() === '') return;
    setBusy(true);
    run(value.trim().toLowerCase(), more)
      .then(() => {
        setValue('');
        setMore('');
        setError(undefined);
      })
      .catch((err: unknown) => setError((err as Error).message))
      .finally(() => setBusy(false));
  };
  return (
    <form class="group-form new-chat" onSubmit={submit} data-form={id}>
      <label for={`${id}-name`}>{label}</label>
      <div class="row">
        <input
          id={`${id}-name`}
          placeholder={placeholder}
          value={value}
          autoComplete="off"
          onInput={(e) => setValue(e.currentTarget.value)}
          aria-describedby={`${id}-error`}
        />
        {extra ? null : (
          <button type="submit" disabled={busy}>
            {button}
          </button>
        )}
      </div>
      {extra ? (
        <>
          <label for={`${id}-extra`}>{extra.label}</label>
          <div class="row">
            <input
              id={`${id}-extra`}
              placeholder={extra.placeholder}
              value={more}
              autoComplete="off"
              onInput={(e) => setMore(e.currentTarget.value)}
              aria-describedby={`${id}-error`}
            />
            <button type="submit" disabled={busy}>
              {button}
            </button>
          </div>
        </>
      ) : null}
      <p id={`${id}-error`} class="error" role="alert">
        {error ?? ''}
      </p>
    </form>
  );
}

/** The list's group forms: make a group, join a shared room. */
export function GroupForms({
  s,
  onOpen,
  onMade,
}: {
  s: ChatSession;
  /** Opens the group's conversation. */
  onOpen: (conversation: string) => void;
  /** A group we made or joined (shown as our own event). */
  onMade: (e: GroupEvent) => void;
}): JSX.Element {
  return (
    <details class="group-forms">
      <summary>Groups and rooms</summary>
      <ActionForm
        id="new-group"
        label="New group name"
        placeholder="group name"
        button="Create"
        extra={{ label: 'Members (names, comma separated)', placeholder: 'bob, carol' }}
        run={async (name, members) => {
          const g = await s.client.createGroup(name, memberNames(members));
          onMade({
            type: 'group',
            group: g.name,
            change: 'create',
            by: s.name,
            members: g.members.map((m) => m.name),
          });
          onOpen(g.conversation);
        }}
      />
      <ActionForm
        id="join-room"
        label="Join a shared room"
        placeholder="room name"
        button="Join"
        run={async (room) => {
          const g = await s.client.joinRoom(room);
          onOpen(g.conversation);
        }}
      />
    </details>
  );
}

/** A group's members and what we may do: an admin adds and removes; anyone leaves. */
export function GroupPanel({
  s,
  group,
  onChanged,
}: {
  s: ChatSession;
  group: GroupInfo;
  onChanged: (e: GroupEvent) => void;
}): JSX.Element {
  const admin = group.members.some((m) => m.name === s.name && m.role === 'admin');
  const active = group.status === 'active';
  const [error, setError] = useState<string | undefined>();
  const act = (p: Promise<unknown>): void => {
    p.then(() => setError(undefined)).catch((err: unknown) => setError((err as Error).message));
  };
  const event = (change: GroupEvent['change'], members: string[]): GroupEvent => ({
    type: 'group',
    group: group.name,
    change,
    by: s.name,
    members,
  });
  return (
    <details class="group-panel">
      <summary>
        {group.members.length} member{group.members.length === 1 ? '' : 's'}
        {active ? '' : group.status === 'left' ? ' (you left)' : ' (you were removed)'}
      </summary>
      <ul class="members" aria-label={`Members of ${group.name}`}>
        {group.members.map((m) => (
          <li key={m.name} data-member={m.name}>
            {m.name}
            {m.role === 'admin' ? ' (admin)' : ''}
            {admin && active && m.name !== s.name ? (
              <button
                type="button"
                aria-label={`Remove ${m.name} from ${group.name}`}
                onClick={() => {
                  if (!window.confirm(`Remove ${m.name} from ${group.name}?`)) return;
                  act(
                    s.client
                      .removeFromGroup(group.name, [m.name])
                      .then(() => onChanged(event('remove', [m.name]))),
                  );
                }}
              >
                Remove
              </button>
            ) : null}
          </li>
        ))}
      </ul>
      {admin && active ? (
        <ActionForm
          id="add-members"
          label="Add members (names, comma separated)"
          placeholder="dave, erin"
          button="Add"
          run={async (names) => {
            const list = memberNames(names);
            await s.client.addToGroup(group.name, list);
            onChanged(event('add', list));
          }}
        />
      ) : null}
      {active ? (
        <button
          type="button"
          class="leave"
          onClick={() => {
            if (!window.confirm(`Leave ${group.name}? You will not read what is sent after.`))
              return;
            act(s.client.leaveGroup(group.name).then(() => onChanged(event('leave', [s.name]))));
          }}
        >
          Leave group
        </button>
      ) : null}
      <p class="error" role="alert">
        {error ?? ''}
      </p>
    </details>
  );
}
