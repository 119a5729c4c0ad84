/**
 * The `file` entry of an attachment message: what the recipient needs to fetch, check
 * and decrypt the blob, carried only inside the E2EE envelope (docs/client.md, "Content
 * types"). In the local history a file message's text is `FILE_TEXT_PREFIX` + the entry's
 * JSON, so stores and UIs need no new column; `fileOfText` reads it back.
 *
 * Owns: the entry's validation and its text form.
 */
import { utf8Encode } from '@parley/crypto';
import { ClientError } from './errors.js';

export interface FileEntry {
  /** Hex of the 16-byte blob id on the relay. */
  readonly blob: string;
  /** Hex of the 32-byte AES-256-GCM file key. */
  readonly key: string;
  /** Hex SHA-256 of the plaintext file. */
  readonly sha256: string;
  /** Plaintext bytes. */
  readonly size: number;
  /** Size class the file was padded to before chunking. */
  readonly padded: number;
  readonly chunks: number;
  /** Ciphertext bytes per chunk. */
  readonly chunkBytes: number;
  /** The sender's file name (not trusted as a path: see `safeFileName`). */
  readonly name: string;
  /** Media type as the sender guessed it, or application/octet-stream. */
  readonly type: string;
}

/** Longest file name in UTF-8 bytes (a common file-system limit). */
export const MAX_FILE_NAME_BYTES = 255;
/** Longest media type in bytes (RFC 6838 names are at most 127 + 1 + 127). */
export const MAX_FILE_TYPE_BYTES = 255;
/**
 * Marks a history entry as a file message. Starts with NUL, which a typed message never
 * holds; `decodeEnvelope` refuses a text message that starts with it, so a peer cannot
 * pass text off as a file.
 */
export const FILE_TEXT_PREFIX = '\u0000file:';

const hex = (n: number): RegExp => new RegExp(`^[0-9a-f]{${n}}$`);
const HEX32 = hex(32);
const HEX64 = hex(64);
const count = (v: unknown, min = 0): boolean =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= min;

/** Validates an entry from a peer or the store; `PROTOCOL` if anything is off. */
export function checkFileEntry(o: unknown): FileEntry {
  const bad = (what: string): never => {
    throw new ClientError('PROTOCOL', `malformed file entry (${what})`);
  };
  if (typeof o !== 'object' || o === null) return bad('not an object');
  const r = o as Record<string, unknown>;
  if (typeof r['blob'] !== 'string' || !HEX32.test(r['blob'])) bad('blob');
  if (typeof r['key'] !== 'string' || !HEX64.test(r['key'])) bad('key');
  if (typeof r['sha256'] !== 'string' || !HEX64.test(r['sha256'])) bad('sha256');
  if (!count(r['size'])) bad('size');
  if (!count(r['padded'], 1) || (r['padded'] as number) < (r['size'] as number)) bad('padded');
  if (!count(r['chunks'], 1) || !count(r['chunkBytes'], 17)) bad('chunks');
  if (((r['chunkBytes'] as number) - 16) * (r['chunks'] as number) < (r['padded'] as number))
    bad('chunks');
  const name = r['name'];
  if (
    typeof name !== 'string' ||
    name.length === 0 ||
    utf8Encode(name).length > MAX_FILE_NAME_BYTES
  )
    bad('name');
  const type = r['type'];
  if (typeof type !== 'string' || utf8Encode(type).length > MAX_FILE_TYPE_BYTES) bad('type');
  return {
    blob: r['blob'] as string,
    key: r['key'] as string,
    sha256: r['sha256'] as string,
    size: r['size'] as number,
    padded: r['padded'] as number,
    chunks: r['chunks'] as number,
    chunkBytes: r['chunkBytes'] as number,
    name: name as string,
    type: type as string,
  };
}

/** The history text of a file message. */
export function fileText(entry: FileEntry): string {
  return FILE_TEXT_PREFIX + JSON.stringify(entry);
}

/** The entry of a file message's history text, or undefined for a text message. */
export function fileOfText(text: string): FileEntry | undefined {
  if (!text.startsWith(FILE_TEXT_PREFIX)) return undefined;
  try {
    return checkFileEntry(JSON.parse(text.slice(FILE_TEXT_PREFIX.length)));
  } catch {
    return undefined;
  }
}

/**
 * A name safe to create in a save folder: the last path component only, control and
 * reserved characters replaced, no leading dots, at most 255 bytes.
 */
export function safeFileName(name: string): string {
  const last = name.split(/[/\\]/).pop() ?? '';
  let s = last
    .replace(/[\u0000-\u001f\u007f<>:"|?*]/g, '_')
    .replace(/^[.\s]+/, '')
    .trim();
  while (utf8Encode(s).length > 200) s = s.slice(0, -1);
  return s.length === 0 ? 'attachment' : s;
}

/**
 * What a UI shows for a history entry: the text itself, or for a file message a line
 * naming the file (never the entry, which holds the file key).
 */
export function displayText(text: string): string {
  if (!text.startsWith(FILE_TEXT_PREFIX)) return text;
  const f = fileOfText(text);
  return f ? `[file] ${f.name} (${formatBytes(f.size)}, ${f.type})` : '[file] (unreadable entry)';
}

/** Bytes as people read them: 1023 B, 1.5 KiB, 30.0 MiB. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}
