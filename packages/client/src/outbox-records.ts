/**
 * The rules of outbox records (store type `OutboxEntry`). A record's id is the wire's
 * client message id (the relay deduplicates retries by it), which is the message id for
 * a message's first encryption but a fresh id for a re-send after a repair (a new
 * ciphertext under a new session is a new relayed item). So each record says which
 * frame carries it and which history entry, if any, it delivers.
 *
 * A record is written `pending` in the batch that encrypts it, becomes `sent` on the
 * relay's `queued`, and is deleted on the relay's last word on that wire id (its device
 * receipt; for a group upload, its `queued`) or the message's end-to-end receipt, so a
 * late relay receipt still finds the message it is about.
 *
 * Before typed records, the same facts were a JSON record under meta `outbox:<wire id>`
 * (`{"frame":…,"kind":…,"message":hex32|null}`) beside an untyped entry; `typedOutbox`
 * converts those (store upgrades, old backups), reading an entry without a record as it
 * was read then: a `send` of the message with the entry's id if it exists, otherwise a
 * `session.terminate`.
 */
import { utf8Decode } from '@parley/crypto';
import type { EnvelopeKind } from './envelope.js';
import type { OutboxEntry, OutboxFrame, StoreWrite } from './store/types.js';

export type { OutboxFrame } from './store/types.js';

/** What a record says beside its ciphertext. */
export interface OutboxRecord {
  readonly frame: OutboxFrame;
  readonly kind: EnvelopeKind;
  /** The outgoing history entry this ciphertext delivers (`msg` only). */
  readonly message: string | undefined;
}

/** A ciphertext about to enter the outbox (the record's fields come from `outboxPut`). */
export type OutboxCiphertext = Omit<OutboxEntry, 'frame' | 'kind' | 'message' | 'state'>;

/** The write that puts a fresh ciphertext in the outbox, pending. */
export function outboxPut(entry: OutboxCiphertext, r: OutboxRecord): StoreWrite {
  return {
    op: 'outbox.put',
    entry: {
      ...entry,
      frame: r.frame,
      kind: r.kind,
      ...(r.message !== undefined ? { message: r.message } : {}),
      state: 'pending',
    },
  };
}

/** The history entry a relay receipt for `wireId` (record `r`, if any) is about. */
export function messageOfRecord(wireId: string, r: OutboxEntry | undefined): string | undefined {
  // No record: a wire id from before records is its message's id.
  return r === undefined ? wireId : r.message;
}

/**
 * The writes for the relay's receipt on a record: the relay's last word on it deletes
 * it, a `queued` otherwise keeps it as `sent`.
 */
export function outboxReceiptWrites(r: OutboxEntry | undefined, last: boolean): StoreWrite[] {
  if (r === undefined) return [];
  if (last) return [{ op: 'outbox.delete', id: r.id }];
  return r.state === 'pending' ? [{ op: 'outbox.sent', id: r.id }] : [];
}

/** The old meta key of an untyped record (`typedOutbox`'s input). */
export const LEGACY_OUTBOX_META_PREFIX = 'outbox:';

/** An outbox row from before typed records. */
export type LegacyOutboxEntry = OutboxCiphertext &
  Partial<Pick<OutboxEntry, 'frame' | 'kind' | 'message' | 'state'>>;

export interface LegacyOutbox {
  readonly entries: readonly LegacyOutboxEntry[];
  /** Old meta records by wire id (the key without its prefix). */
  readonly records: ReadonlyMap<string, Uint8Array>;
  /** The conversation holding outgoing message `id`, if any. */
  readonly outgoingPeer: (id: string) => string | undefined;
}

function parseLegacy(raw: Uint8Array | undefined): OutboxRecord | undefined {
  if (raw === undefined) return undefined;
  try {
    const o = JSON.parse(utf8Decode(raw)) as {
      frame: OutboxFrame;
      kind: EnvelopeKind;
      message: string | null;
    };
    if (typeof o.frame !== 'string' || typeof o.kind !== 'string') return undefined;
    return { frame: o.frame, kind: o.kind, message: o.message ?? undefined };
  } catch {
    // Unreadable record: read as if it were absent.
    return undefined;
  }
}

/**
 * Typed records for an outbox from before them: every entry pending with its record's
 * facts, and every record whose entry already left as `sent`.
 */
export function typedOutbox(old: LegacyOutbox): OutboxEntry[] {
  const out: OutboxEntry[] = [];
  const withEntry = new Set<string>();
  for (const e of old.entries) {
    withEntry.add(e.id);
    if (e.state !== undefined) {
      out.push(e as OutboxEntry);
      continue;
    }
    const { frame: _f, kind: _k, message: _m, state: _s, ...c } = e;
    const r =
      parseLegacy(old.records.get(e.id)) ??
      (e.recipients
        ? { frame: 'group.send' as const, kind: 'msg' as const, message: e.id }
        : old.outgoingPeer(e.id) === e.peer
          ? { frame: 'send' as const, kind: 'msg' as const, message: e.id }
          : { frame: 'session.terminate' as const, kind: 'end' as const, message: undefined });
    out.push((outboxPut(c, r) as { entry: OutboxEntry }).entry);
  }
  for (const [id, raw] of old.records) {
    if (withEntry.has(id)) continue;
    const r = parseLegacy(raw);
    const message = r ? r.message : id;
    const peer = message === undefined ? undefined : old.outgoingPeer(message);
    out.push({
      id,
      // The conversation is looked up by the message on a receipt; '' when none holds it.
      peer: peer ?? '',
      deviceId: 1,
      payload: new Uint8Array(0),
      createdAt: 0,
      attempts: 0,
      frame: r?.frame ?? 'send',
      kind: r?.kind ?? 'msg',
      ...(message !== undefined ? { message } : {}),
      state: 'sent',
    });
  }
  return out;
}

/**
 * A set of writes that rebuilds a whole profile (a backup) with its outbox in the typed
 * shape: old `outbox:` meta records are folded into the records they describe.
 */
export function upgradeOutboxWrites(writes: readonly StoreWrite[]): StoreWrite[] {
  const records = new Map<string, Uint8Array>();
  const entries: LegacyOutboxEntry[] = [];
  const outgoing = new Map<string, string>();
  const rest: StoreWrite[] = [];
  for (const w of writes) {
    if (w.op === 'meta.put' && w.key.startsWith(LEGACY_OUTBOX_META_PREFIX))
      records.set(w.key.slice(LEGACY_OUTBOX_META_PREFIX.length), w.value);
    else if (w.op === 'outbox.put') entries.push(w.entry);
    else {
      if (w.op === 'message.put' && w.message.direction === 'out' && !outgoing.has(w.message.id))
        outgoing.set(w.message.id, w.message.peer);
      rest.push(w);
    }
  }
  if (records.size === 0 && entries.every((e) => e.state !== undefined)) return [...writes];
  const typed = typedOutbox({ entries, records, outgoingPeer: (id) => outgoing.get(id) });
  return [...rest, ...typed.map((entry): StoreWrite => ({ op: 'outbox.put', entry }))];
}
