/**
 * Delivery status rules and end-to-end receipts.
 *
 * Two sources speak about an outgoing message, and only one of them can promise that
 * the recipient can read it:
 * - the relay's receipts (`queued`: it stored the block; its `delivered`: a device of
 *   the recipient acknowledged the block) give `queued` and `on-device`. The relay can
 *   forge or withhold them, and a device acknowledges blocks it could not decrypt.
 * - the recipient's client sends an end-to-end receipt (`rcpt` envelope, envelope.ts)
 *   inside the pairwise session, only after it decrypted the messages and committed
 *   them. It is authenticated by the ratchet, so nobody else can make one; it alone
 *   gives `delivered`.
 *
 * A receipt is never answered by a receipt (no loops). Received message ids wait in the
 * meta key `receipts-due:<peer>` (a JSON list, written in the same batch as the
 * message), so a crash between the commit and the receipt leaves them due, not lost.
 */
import { utf8Decode, utf8Encode } from '@parley/crypto';
import { MAX_RECEIPT_IDS } from './envelope.js';
import type { MessageStatus, StoreWrite } from './store/types.js';
import type { ClientStore } from './store/types.js';

const META_RECEIPTS_DUE_PREFIX = 'receipts-due:';
/**
 * Ids kept due per peer at most (oldest dropped): bounds the record a flood of tiny
 * messages could grow while the peer's session is unusable; the peer re-sends anything
 * unreceipted after the next repair anyway.
 */
export const MAX_RECEIPTS_DUE = 4096;

/** What the relay's receipt status means for the sender's history. */
export function relayReceiptStatus(wire: 'queued' | 'delivered'): MessageStatus {
  return wire === 'queued' ? 'queued' : 'on-device';
}

const RANK: Record<MessageStatus, number> = {
  sending: 0,
  queued: 1,
  'on-device': 2,
  delivered: 3,
  received: 3,
  failed: 0,
};

/** Order of outgoing statuses, for waiting on "this status or a later one". */
export function statusRank(s: MessageStatus): number {
  return RANK[s];
}

/**
 * The status an outgoing message takes when `incoming` is reported, or undefined if it
 * keeps its own. A relay receipt never lowers a status and never touches `delivered` or
 * `failed`; an end-to-end receipt makes any outgoing message `delivered` (it is the
 * recipient's word that it has it, which outranks an earlier give-up).
 */
export function nextStatus(
  current: MessageStatus,
  incoming: MessageStatus,
): MessageStatus | undefined {
  if (current === incoming || current === 'received') return undefined;
  if (incoming === 'delivered') return 'delivered';
  if (current === 'delivered' || current === 'failed') return undefined;
  return RANK[incoming] > RANK[current] ? incoming : undefined;
}

export async function receiptsDue(store: ClientStore, peer: string): Promise<string[]> {
  const raw = await store.getMeta(META_RECEIPTS_DUE_PREFIX + peer);
  if (raw === undefined) return [];
  try {
    const ids = JSON.parse(utf8Decode(raw)) as unknown;
    return Array.isArray(ids) ? ids.filter((i): i is string => typeof i === 'string') : [];
  } catch {
    return [];
  }
}

/** The write that makes `ids` the due list of `peer` (deleted when empty). */
export function receiptsDueWrite(peer: string, ids: readonly string[]): StoreWrite {
  const key = META_RECEIPTS_DUE_PREFIX + peer;
  if (ids.length === 0) return { op: 'meta.delete', key };
  const kept = ids.length > MAX_RECEIPTS_DUE ? ids.slice(ids.length - MAX_RECEIPTS_DUE) : ids;
  return { op: 'meta.put', key, value: utf8Encode(JSON.stringify(kept)) };
}

/** Adds `id` to a due list (once). */
export function withDue(due: readonly string[], id: string): string[] {
  return due.includes(id) ? [...due] : [...due, id];
}

/** Splits due ids into receipts of at most `MAX_RECEIPT_IDS`. */
export function receiptBatches(ids: readonly string[]): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < ids.length; i += MAX_RECEIPT_IDS) out.push(ids.slice(i, i + MAX_RECEIPT_IDS));
  return out;
}
