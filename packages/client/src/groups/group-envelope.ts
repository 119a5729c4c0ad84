/**
 * The pairwise envelope kinds that carry groups (docs/client.md, "Groups"): they travel
 * inside the pairwise session of the two members, so the relay never sees membership,
 * sender keys or receipts of a group. Layouts (UTF-8 JSON like every envelope; `g` is
 * the 16-byte group id as 32 lowercase hex digits, byte strings are lowercase hex):
 *   `{"v":1,"t":"gsync","id":hex32,"at":ms,"g":hex32,"log":[hex, …],"dist":hex|null}`
 *       membership changes (§18.7 change bytes, consecutive epochs, oldest first) and
 *       the sender's current distribution (§18.3, 90 bytes) or null
 *   `{"v":1,"t":"gack","id":hex32,"at":ms,"g":hex32,"epoch":u32,"chain":u32|null}`
 *       the epoch the acknowledging member reached and the sender chain id it now holds
 *   `{"v":1,"t":"greq","id":hex32,"at":ms,"g":hex32,"chain":u32}`
 *       "I hold a message of your chain `chain` and not its key: send your gsync again"
 *   `{"v":1,"t":"grcpt","id":hex32,"at":ms,"g":hex32,"ids":[hex32, …]}`
 *       end-to-end receipt: the sender of the receipt committed these group messages
 *   `{"v":1,"t":"gjoin","id":hex32,"at":ms,"room":name}`
 *       "add me to your shared room `room`" (sent to the room's admin)
 */
import { ClientError } from '../errors.js';

/** At most this many ids per group receipt, as for a pairwise `rcpt`. */
export const MAX_GROUP_RECEIPT_IDS = 64;
/**
 * Longest change log one gsync carries, in changes: with a few hundred bytes per change
 * (as hex) a log this long stays well inside one pairwise payload; a group with a
 * longer history cannot take in new members (a known limit, docs/client.md).
 */
export const MAX_GROUP_SYNC_LOG = 64;

const HEX_ID = /^[0-9a-f]{32}$/;
const HEX = /^(?:[0-9a-f]{2})+$/;
const ROOM = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const U32 = (v: unknown): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff;

interface Base {
  readonly id: string;
  readonly sentAt: number;
}
export interface GroupSyncEnvelope extends Base {
  readonly kind: 'gsync';
  readonly group: string;
  readonly log: readonly string[];
  readonly dist: string | null;
}
export interface GroupAckEnvelope extends Base {
  readonly kind: 'gack';
  readonly group: string;
  readonly epoch: number;
  readonly chain: number | null;
}
export interface GroupRequestEnvelope extends Base {
  readonly kind: 'greq';
  readonly group: string;
  readonly chain: number;
}
export interface GroupReceiptEnvelope extends Base {
  readonly kind: 'grcpt';
  readonly group: string;
  readonly ids: readonly string[];
}
export interface GroupJoinEnvelope extends Base {
  readonly kind: 'gjoin';
  readonly room: string;
}
export type GroupEnvelope =
  | GroupSyncEnvelope
  | GroupAckEnvelope
  | GroupRequestEnvelope
  | GroupReceiptEnvelope
  | GroupJoinEnvelope;
export type GroupEnvelopeKind = GroupEnvelope['kind'];
export const GROUP_ENVELOPE_KINDS: readonly string[] = ['gsync', 'gack', 'greq', 'grcpt', 'gjoin'];

const invalid = (what: string): never => {
  throw new ClientError('INVALID_ARGUMENT', `group envelope: ${what}`);
};

/** The JSON fields after `v`, `t`, `id` and `at` (checked as the decoder checks them). */
export function groupEnvelopeFields(e: GroupEnvelope): Record<string, unknown> {
  if (e.kind !== 'gjoin' && !HEX_ID.test(e.group)) invalid('group id');
  switch (e.kind) {
    case 'gsync':
      if (e.log.length > MAX_GROUP_SYNC_LOG || !e.log.every((c) => HEX.test(c))) invalid('log');
      if (e.dist !== null && !HEX.test(e.dist)) invalid('dist');
      return { g: e.group, log: e.log, dist: e.dist };
    case 'gack':
      if (!U32(e.epoch) || (e.chain !== null && !U32(e.chain))) invalid('ack');
      return { g: e.group, epoch: e.epoch, chain: e.chain };
    case 'greq':
      if (!U32(e.chain)) invalid('chain');
      return { g: e.group, chain: e.chain };
    case 'grcpt':
      if (e.ids.length < 1 || e.ids.length > MAX_GROUP_RECEIPT_IDS) invalid('ids');
      if (!e.ids.every((i) => HEX_ID.test(i))) invalid('ids');
      return { g: e.group, ids: e.ids };
    case 'gjoin':
      if (!ROOM.test(e.room)) invalid('room');
      return { room: e.room };
  }
}

/** Reads a group kind from parsed JSON `r`; undefined when malformed (the caller refuses it). */
export function decodeGroupEnvelope(
  t: GroupEnvelopeKind,
  r: Record<string, unknown>,
  base: Base,
): GroupEnvelope | undefined {
  const g = r['g'];
  const group = typeof g === 'string' && HEX_ID.test(g) ? g : undefined;
  switch (t) {
    case 'gsync': {
      const log = r['log'];
      const dist = r['dist'];
      if (group === undefined || !Array.isArray(log) || log.length > MAX_GROUP_SYNC_LOG)
        return undefined;
      if (!log.every((c) => typeof c === 'string' && HEX.test(c))) return undefined;
      if (dist !== null && !(typeof dist === 'string' && HEX.test(dist))) return undefined;
      return { kind: t, ...base, group, log: log as string[], dist };
    }
    case 'gack': {
      const { epoch, chain } = r;
      if (group === undefined || !U32(epoch) || (chain !== null && !U32(chain))) return undefined;
      return { kind: t, ...base, group, epoch, chain };
    }
    case 'greq': {
      const { chain } = r;
      if (group === undefined || !U32(chain)) return undefined;
      return { kind: t, ...base, group, chain };
    }
    case 'grcpt': {
      const ids = r['ids'];
      if (group === undefined || !Array.isArray(ids)) return undefined;
      if (ids.length < 1 || ids.length > MAX_GROUP_RECEIPT_IDS) return undefined;
      if (!ids.every((i) => typeof i === 'string' && HEX_ID.test(i))) return undefined;
      return { kind: t, ...base, group, ids: ids as string[] };
    }
    case 'gjoin': {
      const room = r['room'];
      if (typeof room !== 'string' || !ROOM.test(room)) return undefined;
      return { kind: t, ...base, room };
    }
  }
}
