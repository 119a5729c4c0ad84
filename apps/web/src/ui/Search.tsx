/** @jsxImportSource preact */
/**
 * The search box: one's own history (words, `word*` prefixes, all must occur), in the
 * open conversation or everywhere, newest first. Each answer opens its conversation at
 * the message. The store answers from its keyed index (platform/search-tokens.ts).
 */
import { useState } from 'preact/hooks';
import type { JSX } from 'preact';
import { displayText } from '@parley/client';
import type { StoredMessage } from '@parley/client';
import type { ChatSession } from './session.js';
import { localDateTime } from './format.js';

export function Search({
  s,
  peer,
  onOpen,
}: {
  s: ChatSession;
  /** The open conversation, offered as the scope. */
  peer: string | undefined;
  onOpen: (peer: string, id: string) => void;
}): JSX.Element | null {
  const [query, setQuery] = useState('');
  const [onlyHere, setOnlyHere] = useState(false);
  const [results, setResults] = useState<StoredMessage[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  const search = s.search;
  if (!search) return null;

  const run = async (e: Event): Promise<void> => {
    e.preventDefault();
    try {
      const scope = onlyHere && peer !== undefined ? { peer } : {};
      setResults(await search(query, scope));
      setError(undefined);
    } catch (err) {
      setResults(undefined);
      setError((err as Error).message);
    }
  };

  return (
    <section class="search" aria-label="Message search">
      <form role="search" onSubmit={(e) => void run(e)}>
        <label for="search-query">Search messages</label>
        <div class="row">
          <input
            id="search-query"
            type="search"
            value={query}
            placeholder="words, or a prefix like plan*"
            autoComplete="off"
            onInput={(e) => setQuery(e.currentTarget.value)}
            aria-describedby="search-error"
          />
          <button type="submit">Search</button>
        </div>
        {peer !== undefined ? (
          <label class="scope">
            <input
              type="checkbox"
              checked={onlyHere}
              onChange={(e) => setOnlyHere(e.currentTarget.checked)}
            />{' '}
            only with {peer}
          </label>
        ) : null}
        <p id="search-error" class="error" role="alert">
          {error ?? ''}
        </p>
      </form>
      {results !== undefined ? (
        <div class="search-results">
          <p role="status">
            {results.length === 0
              ? 'No message matches.'
              : `${results.length} message${results.length === 1 ? '' : 's'}, newest first`}
          </p>
          <ul>
            {results.map((m) => (
              <li key={`${m.direction}:${m.id}`}>
                <button
                  type="button"
                  class="hit"
                  data-id={m.id}
                  onClick={() => {
                    setResults(undefined);
                    onOpen(m.peer, m.id);
                  }}
                >
                  <span class="who">{m.direction === 'out' ? `me → ${m.peer}` : m.peer}</span>{' '}
                  <time dateTime={new Date(m.sentAt).toISOString()}>{localDateTime(m.sentAt)}</time>
                  <span class="text">{displayText(m.text)}</span>
                </button>
              </li>
            ))}
          </ul>
        </div>
      ) : null}
    </section>
  );
}
