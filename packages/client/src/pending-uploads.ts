/**
 * Attachment uploads that outlive the process: before the first chunk leaves, the file's
 * entry (blob id and key included) is committed to the encrypted store under the peer and
 * the file's digest; sending the same file to the same peer again, after a crash or a
 * kill, finds it and resumes the same blob from the relay's durable count instead of
 * starting over. The record moves to `sending` once the blob is complete, so a process
 * killed between the message commit and the record's removal does not send the message
 * twice: the next run finds the message already in the history.
 *
 * Owns: the record layout and its meta key.
 */
import { toHex, utf8Decode, utf8Encode } from '@parley/crypto';
import { checkFileEntry, fileText, type FileEntry } from './attachment-entry.js';
import type { ClientStore, StoredMessage, StoreWrite } from './store/types.js';

const META_PREFIX = 'attach.pending:';
/** How far back in a conversation a `sending` record looks for its message. */
const SENT_LOOKBACK = 500;

export type PendingPhase = 'uploading' | 'sending';

export interface PendingUpload {
  readonly entry: FileEntry;
  readonly phase: PendingPhase;
}

function metaKey(peer: string, sha256: Uint8Array): string {
  return `${META_PREFIX}${peer}:${toHex(sha256)}`;
}

/** The unfinished upload of this file to `peer`, if any (a damaged record counts as none). */
export async function readPendingUpload(
  store: ClientStore,
  peer: string,
  sha256: Uint8Array,
): Promise<PendingUpload | undefined> {
  const raw = await store.getMeta(metaKey(peer, sha256));
  if (raw === undefined) return undefined;
  try {
    const o = JSON.parse(utf8Decode(raw)) as { entry?: unknown; phase?: unknown };
    const phase = o.phase === 'sending' ? 'sending' : 'uploading';
    return { entry: checkFileEntry(o.entry), phase };
  } catch {
    return undefined;
  }
}

/** The write that records (or advances) an upload. */
export function pendingUploadWrite(
  peer: string,
  sha256: Uint8Array,
  upload: PendingUpload,
): StoreWrite {
  return {
    op: 'meta.put',
    key: metaKey(peer, sha256),
    value: utf8Encode(JSON.stringify(upload)),
  };
}

/** The write that forgets an upload once its message is committed. */
export function pendingUploadDone(peer: string, sha256: Uint8Array): StoreWrite {
  return { op: 'meta.delete', key: metaKey(peer, sha256) };
}

/** The message an earlier run committed for this upload, if it got that far. */
export async function sentMessageOf(
  store: ClientStore,
  peer: string,
  entry: FileEntry,
): Promise<StoredMessage | undefined> {
  const text = fileText(entry);
  const recent = await store.listMessages(peer, { limit: SENT_LOOKBACK });
  return recent.find((m) => m.direction === 'out' && m.text === text);
}
