/**
 * Local search over one's own history (M38): the query language and the tokenizer
 * every backend agrees on. A backend keeps its index wherever its data is already
 * encrypted (SQLCipher: an FTS5 table inside the same database); this module owns
 * only what a query means, so the memory reference store and the SQLite store give
 * the same answers (the contract suite checks it).
 *
 * A query is a list of terms, all of which must occur in a message (AND). A term is
 * a word as the tokenizer below splits text; a term written with a trailing `*`
 * matches every word that starts with it. Matching ignores case and diacritics.
 */
import { ClientError } from '../errors.js';
import type { StoredMessage } from './types.js';

/** Answers per query unless the caller asks for fewer or more. */
export const DEFAULT_SEARCH_LIMIT = 50;
/** Upper bound on answers: a search result is read by a person, not paged through in bulk. */
export const MAX_SEARCH_LIMIT = 1000;
/** Terms per query: more gives no better answers and only costs index lookups. */
export const MAX_SEARCH_TERMS = 16;
/** Characters of query text accepted; a longer one is refused, not cut. */
export const MAX_SEARCH_QUERY_CHARS = 512;

export interface SearchTerm {
  /** Lower case, without diacritics: how the index stores words. */
  readonly word: string;
  /** Matches every word starting with `word`. */
  readonly prefix: boolean;
}

export interface SearchOptions {
  /** Only this conversation. */
  readonly peer?: string;
  /** At most this many answers (default `DEFAULT_SEARCH_LIMIT`). */
  readonly limit?: number;
}

// The same rule as SQLite FTS5's `unicode61` tokenizer with `remove_diacritics 2`:
// letters and digits make words, everything else separates them.
const SEPARATORS = /[^\p{L}\p{N}]+/u;
const COMBINING_MARKS = /\p{M}/gu;

/** Folds a piece of text the way the index does: NFKD, marks removed, lower case. */
export function foldText(text: string): string {
  return text.normalize('NFKD').replace(COMBINING_MARKS, '').toLowerCase();
}

/** The words of a text, folded, in order. */
export function tokenize(text: string): string[] {
  return foldText(text)
    .split(SEPARATORS)
    .filter((w) => w.length > 0);
}

/** Parses a query; throws `INVALID_ARGUMENT` for one with no word or too many. */
export function parseSearchQuery(query: string): SearchTerm[] {
  if (query.length > MAX_SEARCH_QUERY_CHARS) {
    throw new ClientError(
      'INVALID_ARGUMENT',
      `query: at most ${MAX_SEARCH_QUERY_CHARS} characters`,
    );
  }
  const terms: SearchTerm[] = [];
  for (const chunk of query.split(/\s+/u)) {
    const prefix = chunk.endsWith('*');
    const words = tokenize(chunk);
    // `hel*` is one prefix term; in `foo-ba*` the prefix applies to the last word only.
    words.forEach((word, i) => terms.push({ word, prefix: prefix && i === words.length - 1 }));
  }
  if (terms.length === 0)
    throw new ClientError('INVALID_ARGUMENT', 'query: give at least one word');
  if (terms.length > MAX_SEARCH_TERMS)
    throw new ClientError('INVALID_ARGUMENT', `query: at most ${MAX_SEARCH_TERMS} words`);
  return terms;
}

/** Checks and defaults `limit`. */
export function searchLimit(options: SearchOptions = {}): number {
  const limit = options.limit ?? DEFAULT_SEARCH_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_SEARCH_LIMIT) {
    throw new ClientError('INVALID_ARGUMENT', `limit: an integer in 1..${MAX_SEARCH_LIMIT}`);
  }
  return limit;
}

/** True if every term occurs among the text's words. */
export function matchesTerms(text: string, terms: readonly SearchTerm[]): boolean {
  const words = tokenize(text);
  return terms.every((t) => words.some((w) => (t.prefix ? w.startsWith(t.word) : w === t.word)));
}

/** The reference search over a list of messages: newest (highest seq) first. */
export function searchInMessages(
  all: Iterable<StoredMessage>,
  query: string,
  options: SearchOptions = {},
): StoredMessage[] {
  const terms = parseSearchQuery(query);
  const limit = searchLimit(options);
  return [...all]
    .filter(
      (m) => (options.peer === undefined || m.peer === options.peer) && matchesTerms(m.text, terms),
    )
    .sort((a, b) => (b.seq ?? 0) - (a.seq ?? 0))
    .slice(0, limit);
}

/**
 * The FTS5 MATCH expression for parsed terms. Each word is a quoted string (words hold
 * only letters and digits, so nothing in a query can become FTS5 syntax); juxtaposed
 * strings are an implicit AND.
 */
export function fts5MatchExpression(terms: readonly SearchTerm[]): string {
  return terms.map((t) => `"${t.word.replaceAll('"', '""')}"${t.prefix ? '*' : ''}`).join(' ');
}
