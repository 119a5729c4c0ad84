/**
 * Automatic session repair after a decryption failure, and the bounds that keep it
 * from looping (docs/client.md, "Repair").
 *
 * A recipient that cannot decrypt a message from a peer starts a new session to the
 * peer (PQXDH from a fresh bundle, without a one-time prekey, so a relay that hands out
 * already used one-time keys cannot make the repair fail again) whose first message is a
 * `reset` envelope. The peer, on reading it, uses the new session and re-sends every
 * message the repairer has not confirmed by an end-to-end receipt; so does the
 * repairer. This module owns the per-peer repair record and the decisions; the client
 * core does the encryption and sending.
 *
 * Record: meta `repair:<peer>` = UTF-8 JSON
 * `{"started":[ms,…],"pendingSince":ms|null,"resends":{"<message id>":["<wire id>",…],…}}`:
 * when we started repairs (within the window), whether one of ours awaits its answer,
 * and the wire ids under which each of our messages to the peer was re-sent after a
 * repair (their number is the resend count; the last is the one the relay's receipts
 * for the message must name).
 */
import { utf8Decode, utf8Encode } from '@parley/crypto';
import type { RepairReason } from './envelope.js';
import { ClientError } from './errors.js';
import type { ClientStore, StoreWrite } from './store/types.js';

const META_REPAIR_PREFIX = 'repair:';

/**
 * Repairs we start towards one peer per window at most: a peer (or relay) that makes
 * every message undecryptable costs us three handshakes an hour, not a loop.
 */
export const MAX_REPAIRS_PER_PEER = 3;
/** The window of `MAX_REPAIRS_PER_PEER`. */
export const REPAIR_WINDOW_MS = 60 * 60 * 1000;
/**
 * While our repair awaits its answer (any message from the peer that decrypts), later
 * failures from the same peer start no new one: a backlog sent under the broken session
 * fails message after message, and one repair covers all of it. After this long the
 * answer is presumed lost (relay dropped it, the peer could not read it) and the next
 * failure may start another.
 */
export const REPAIR_RETRY_AFTER_MS = 60_000;
/**
 * Times one message is re-sent after repairs. At the next repair it is marked `failed`:
 * a peer that never decrypts what we send cannot make us re-send forever.
 */
export const MAX_RESENDS_PER_MESSAGE = 2;

export interface RepairPolicy {
  readonly maxRepairsPerPeer: number;
  readonly windowMs: number;
  readonly retryAfterMs: number;
  readonly maxResendsPerMessage: number;
}

export const DEFAULT_REPAIR_POLICY: RepairPolicy = {
  maxRepairsPerPeer: MAX_REPAIRS_PER_PEER,
  windowMs: REPAIR_WINDOW_MS,
  retryAfterMs: REPAIR_RETRY_AFTER_MS,
  maxResendsPerMessage: MAX_RESENDS_PER_MESSAGE,
};

export interface RepairRecord {
  readonly started: readonly number[];
  readonly pendingSince: number | undefined;
  readonly resends: Readonly<Record<string, readonly string[]>>;
}

const EMPTY: RepairRecord = { started: [], pendingSince: undefined, resends: {} };

export async function readRepair(store: ClientStore, peer: string): Promise<RepairRecord> {
  const raw = await store.getMeta(META_REPAIR_PREFIX + peer);
  if (raw === undefined) return EMPTY;
  try {
    const o = JSON.parse(utf8Decode(raw)) as {
      started?: number[];
      pendingSince?: number | null;
      resends?: Record<string, string[]>;
    };
    return {
      started: Array.isArray(o.started) ? o.started.filter((t) => typeof t === 'number') : [],
      pendingSince: typeof o.pendingSince === 'number' ? o.pendingSince : undefined,
      resends: typeof o.resends === 'object' && o.resends !== null ? o.resends : {},
    };
  } catch {
    return EMPTY;
  }
}

export function repairWrite(peer: string, r: RepairRecord): StoreWrite {
  return {
    op: 'meta.put',
    key: META_REPAIR_PREFIX + peer,
    value: utf8Encode(
      JSON.stringify({
        started: r.started,
        pendingSince: r.pendingSince ?? null,
        resends: r.resends,
      }),
    ),
  };
}

export type RepairDecision =
  /** Start a repair now. */
  | 'start'
  /** Ours is still awaiting its answer: this failure is covered by it. */
  | 'pending'
  /** The bound is reached: give up on this failure (reported, not repaired). */
  | 'limit';

export function decideRepair(r: RepairRecord, now: number, p: RepairPolicy): RepairDecision {
  if (r.pendingSince !== undefined && now - r.pendingSince < p.retryAfterMs) return 'pending';
  const recent = r.started.filter((t) => now - t < p.windowMs);
  return recent.length >= p.maxRepairsPerPeer ? 'limit' : 'start';
}

export function repairStarted(r: RepairRecord, now: number, p: RepairPolicy): RepairRecord {
  return {
    ...r,
    started: [...r.started.filter((t) => now - t < p.windowMs), now],
    pendingSince: now,
  };
}

/** Whether a peer's message that decrypted answers a repair of ours. */
export function isAwaitingAnswer(r: RepairRecord): boolean {
  return r.pendingSince !== undefined;
}

/** The wire id whose relay receipts speak for message `id` now (its last re-send, or itself). */
export function currentWireId(r: RepairRecord, id: string): string {
  return r.resends[id]?.at(-1) ?? id;
}

export function answered(r: RepairRecord): RepairRecord {
  return { ...r, pendingSince: undefined };
}

/**
 * Which failures to repair: everything that says "this session cannot read what the
 * peer sent". A plain replay (`DUPLICATE` of bytes we already read) is not one, and
 * neither is a trust verdict (a key our CA does not certify is refused, not repaired).
 */
export function repairReasonOf(err: unknown): RepairReason | undefined {
  if (!(err instanceof ClientError)) return undefined;
  switch (err.code) {
    case 'NO_SESSION':
      return 'no-session';
    case 'UNKNOWN_PREKEY':
      return 'unknown-prekey';
    case 'PROTOCOL':
      return 'invalid-message';
    default:
      return undefined;
  }
}
