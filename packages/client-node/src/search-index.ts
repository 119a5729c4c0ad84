/**
 * The search index of the SQLite store (M38): an FTS5 table over `messages.text`,
 * kept in the same SQLCipher database as the messages. SQLCipher encrypts every page
 * of the file, and FTS5 keeps its index in ordinary shadow tables (`message_index_data`,
 * `_idx`, `_config`, `_docsize`) whose pages are encrypted like any other, as are the WAL
 * frames that carry them; so the index adds nothing readable to the disk. With
 * `secure-delete` on, deleting a message removes its tokens from the index at once
 * rather than leaving them in older segments until a merge; `PRAGMA secure_delete`
 * (set by the store) zeroes freed pages before they are encrypted and written.
 *
 * This module owns the index's SQL; the store calls it from its migration and its
 * `searchMessages`.
 */
import type Database from 'better-sqlite3-multiple-ciphers';
import { fts5MatchExpression, parseSearchQuery, searchLimit } from '@parley/client';
import type { SearchOptions } from '@parley/client';

// External content: the index stores tokens and rowids only; the text stays in
// `messages`. Triggers keep it in step with every insert, update and delete, so no
// code path can forget it. `remove_diacritics 2` matches store/search.ts's folding.
const SEARCH_INDEX_SCHEMA = `
CREATE VIRTUAL TABLE message_index USING fts5(text, content='messages', content_rowid='seq',
  tokenize='unicode61 remove_diacritics 2');
INSERT INTO message_index(message_index, rank) VALUES ('secure-delete', 1);
CREATE TRIGGER messages_index_insert AFTER INSERT ON messages BEGIN
  INSERT INTO message_index(rowid, text) VALUES (new.seq, new.text);
END;
CREATE TRIGGER messages_index_delete AFTER DELETE ON messages BEGIN
  INSERT INTO message_index(message_index, rowid, text) VALUES ('delete', old.seq, old.text);
END;
CREATE TRIGGER messages_index_update AFTER UPDATE OF text ON messages BEGIN
  INSERT INTO message_index(message_index, rowid, text) VALUES ('delete', old.seq, old.text);
  INSERT INTO message_index(rowid, text) VALUES (new.seq, new.text);
END;
`;

/**
 * Creates the index and fills it from the messages already stored (the migration of
 * profiles made before search existed). Runs inside the caller's transaction.
 */
export function createSearchIndex(db: Database.Database): void {
  db.exec(SEARCH_INDEX_SCHEMA);
  db.exec(`INSERT INTO message_index(message_index) VALUES ('rebuild')`);
}

/** Prepared search, newest first: FTS5 walks its rowids downwards, so LIMIT stops early. */
export function prepareSearch(
  db: Database.Database,
): (query: string, options?: SearchOptions) => unknown[] {
  const all = db.prepare(
    `SELECT m.* FROM message_index JOIN messages m ON m.seq = message_index.rowid
     WHERE message_index MATCH ? ORDER BY message_index.rowid DESC LIMIT ?`,
  );
  const onePeer = db.prepare(
    `SELECT m.* FROM message_index JOIN messages m ON m.seq = message_index.rowid
     WHERE message_index MATCH ? AND m.peer = ? ORDER BY message_index.rowid DESC LIMIT ?`,
  );
  return (query, options = {}) => {
    const match = fts5MatchExpression(parseSearchQuery(query));
    const limit = searchLimit(options);
    return options.peer === undefined
      ? all.all(match, limit)
      : onePeer.all(match, options.peer, limit);
  };
}
