/**
 * The browser store's search index (local search over one's own history): keyed
 * tokens, so IndexedDB holds no word of any message. Each word of a message gives a
 * word token and one prefix token per leading run of 1..MAX_PREFIX_CHARS characters;
 * a token is HMAC-SHA256(searchKey, kind ‖ folded text) cut to TOKEN_BYTES, the search
 * key an HKDF subkey of the Argon2id store key. An index entry is the IndexedDB key
 * [token hex, message seq] with no value.
 *
 * What it still tells someone holding the database without the passphrase: how many
 * distinct words and prefixes each message has, which messages share a word (not
 * which word), and their order (seq). The store's records themselves stay sealed.
 *
 * Owns the token rule and the entry layout; the store (idb-store.ts) keeps the entries
 * in step with its messages in the same transaction as the messages themselves.
 */
import { toHex, utf8Encode } from '@parley/crypto';
import type { CryptoProvider } from '@parley/crypto';
import { fileOfText, parseSearchQuery, tokenize } from '@parley/client';
import type { StoredMessage } from '@parley/client';

const SEARCH_INFO = utf8Encode('parley/web-store/search/v1');
/**
 * Longest prefix given its own token: a query prefix beyond it is looked up by its
 * first MAX_PREFIX_CHARS characters and the answers checked against the text, so a
 * long word costs no more entries than this.
 */
export const MAX_PREFIX_CHARS = 10;
/** 128 bits: collisions stay negligible, and every candidate is checked against its text anyway. */
export const TOKEN_BYTES = 16;

/** One index entry: the IndexedDB key in the search store. */
export type IndexEntry = [token: string, seq: number];

/** What a message is found by: its text, or for a file message the file's name. */
function indexedText(m: StoredMessage): string {
  const file = fileOfText(m.text);
  return file ? file.name : m.text;
}

const firstChars = (word: string, n: number): string => [...word].slice(0, n).join('');

export class SearchTokens {
  private readonly key: Uint8Array;

  constructor(
    private readonly crypto: CryptoProvider,
    storeKey: Uint8Array,
  ) {
    this.key = crypto.hkdfSha256(storeKey, new Uint8Array(0), SEARCH_INFO, 32);
  }

  private token(kind: 'w' | 'p', text: string): string {
    return toHex(this.crypto.hmacSha256(this.key, utf8Encode(`${kind}:${text}`))).slice(
      0,
      TOKEN_BYTES * 2,
    );
  }

  /** The index entries of a stored message (none for one without a seq or a word). */
  entries(m: StoredMessage): IndexEntry[] {
    if (m.seq === undefined || m.timerMs !== undefined) return [];
    const plain = new Set<string>();
    for (const word of tokenize(indexedText(m))) {
      plain.add(`w\u0000${word}`);
      const chars = [...word];
      for (let n = 1; n <= Math.min(chars.length, MAX_PREFIX_CHARS); n++)
        plain.add(`p\u0000${chars.slice(0, n).join('')}`);
    }
    const seq = m.seq;
    return [...plain].map((t) => {
      const [kind, text] = t.split('\u0000') as ['w' | 'p', string];
      return [this.token(kind, text), seq];
    });
  }

  /** One token per query term (checks the query like every backend does). */
  queryTokens(query: string): string[] {
    return parseSearchQuery(query).map((t) =>
      t.prefix ? this.token('p', firstChars(t.word, MAX_PREFIX_CHARS)) : this.token('w', t.word),
    );
  }
}
