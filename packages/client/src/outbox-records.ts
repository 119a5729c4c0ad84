/**
 * What an outbox entry is, beside its ciphertext. An entry's id is the wire's client
 * message id (the relay deduplicates retries by it), which is the message id for a
 * message's first encryption but a fresh id for a re-send after a repair (a new
 * ciphertext under a new session is a new relayed item). So each entry has a record
 * saying which frame carries it and which history entry, if any, it delivers.
 *
 * Stored as meta `outbox:<wire id>` = UTF-8 JSON `{"frame":"send"|"session.terminate"|
 * "group.send","kind":<envelope kind>,"message":hex32|null}`, written in the batch that
 * writes the entry. The entry goes on the relay's `queued`; the record stays until the
 * relay's last word on that wire id (its device receipt) or the message's end-to-end
 * receipt, so a late relay receipt still finds the message it is about. Entries from before these records (no record) are read as
 * they were then: a `send` of the message with the entry's id if it exists, otherwise a
 * `session.terminate`.
 */
import { utf8Decode, utf8Encode } from '@parley/crypto';
import type { EnvelopeKind } from './envelope.js';
import type { ClientStore, OutboxEntry, StoreWrite } from './store/types.js';

const META_OUTBOX_PREFIX = 'outbox:';

export type OutboxFrame = 'send' | 'session.terminate' | 'group.send';

export interface OutboxRecord {
  readonly frame: OutboxFrame;
  readonly kind: EnvelopeKind;
  /** The outgoing history entry this ciphertext delivers (`msg` only). */
  readonly message: string | undefined;
}

export function outboxRecordWrite(wireId: string, r: OutboxRecord): StoreWrite {
  return {
    op: 'meta.put',
    key: META_OUTBOX_PREFIX + wireId,
    value: utf8Encode(JSON.stringify({ frame: r.frame, kind: r.kind, message: r.message ?? null })),
  };
}

/** Deletes an entry together with its record. */
export function outboxDeleteWrites(wireId: string): StoreWrite[] {
  return [{ op: 'outbox.delete', id: wireId }, outboxRecordDelete(wireId)];
}

export function outboxRecordDelete(wireId: string): StoreWrite {
  return { op: 'meta.delete', key: META_OUTBOX_PREFIX + wireId };
}

/** Whether `wireId` has a record (so its receipts are about a known item). */
export async function hasOutboxRecord(store: ClientStore, wireId: string): Promise<boolean> {
  return (await store.getMeta(META_OUTBOX_PREFIX + wireId)) !== undefined;
}

export async function readOutboxRecord(
  store: ClientStore,
  entry: OutboxEntry,
): Promise<OutboxRecord> {
  const raw = await store.getMeta(META_OUTBOX_PREFIX + entry.id);
  if (raw !== undefined) {
    try {
      const o = JSON.parse(utf8Decode(raw)) as {
        frame: OutboxFrame;
        kind: EnvelopeKind;
        message: string | null;
      };
      return { frame: o.frame, kind: o.kind, message: o.message ?? undefined };
    } catch {
      // Unreadable record: fall back to the pre-record rule below.
    }
  }
  if (entry.recipients) return { frame: 'group.send', kind: 'msg', message: entry.id };
  const isMessage = (await store.getMessage(entry.peer, 'out', entry.id)) !== undefined;
  return isMessage
    ? { frame: 'send', kind: 'msg', message: entry.id }
    : { frame: 'session.terminate', kind: 'end', message: undefined };
}

/** The history entry a relay receipt for wire id `wireId` is about, if any. */
export async function messageOfWireId(
  store: ClientStore,
  wireId: string,
): Promise<string | undefined> {
  const raw = await store.getMeta(META_OUTBOX_PREFIX + wireId);
  if (raw === undefined) return wireId;
  try {
    return (JSON.parse(utf8Decode(raw)) as { message: string | null }).message ?? undefined;
  } catch {
    return wireId;
  }
}
