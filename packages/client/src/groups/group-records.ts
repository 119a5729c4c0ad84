/**
 * What a member keeps of each group (docs/client.md, "Groups"), all in store meta (the
 * store encrypts it at rest):
 *   `groups`                 JSON array of group ids (hex) this profile knows
 *   `group:<id>`             the group record below (UTF-8 JSON)
 *   `group-chain:<id>`       our outgoing sender chain (§18.6 saved-state bytes)
 *   `group-in:<id>:<name>`   what we hold of member `name`'s sender chains (§18.6)
 *   `group-orphans:<id>`     JSON array of `PendingGroupMessage`: messages of a group we
 *                            have no record of yet (its gsync is still being read)
 * The record is changed only inside the group's serial queue (key: its conversation id)
 * and the index only inside `GROUP_INDEX_QUEUE`, so no two writers race on either.
 *
 * Owns: the layouts and the conversation id of a group. Knows nothing of the network.
 */
import { fromHex, toHex, utf8Decode, utf8Encode } from '@parley/crypto';
import type { CryptoProvider } from '@parley/crypto';
import {
  decodeGroupState,
  deserializeIncomingSenderChains,
  deserializeOutgoingSenderChain,
  encodeGroupState,
  serializeIncomingSenderChains,
  serializeOutgoingSenderChain,
  type GroupMembership,
  type IncomingSenderChains,
  type OutgoingSenderChain,
} from '@parley/protocol';
import type { ClientStore, StoreWrite } from '../store/types.js';

/** Prefix of a group's conversation id: a user name cannot contain `:`. */
const CONVERSATION_PREFIX = 'group:';
const META_INDEX = 'groups';
const META_RECORD = 'group:';
const META_CHAIN = 'group-chain:';
const META_INCOMING = 'group-in:';
const META_ORPHANS = 'group-orphans:';
/** Queue key of the index of groups (taken inside a group's queue, never the reverse). */
export const GROUP_INDEX_QUEUE = '\u0000groups';

export function groupConversationId(groupId: string): string {
  return CONVERSATION_PREFIX + groupId;
}
/** The group id (hex) of a conversation id, or undefined for a peer's conversation. */
export function groupIdOfConversation(conversation: string): string | undefined {
  return conversation.startsWith(CONVERSATION_PREFIX)
    ? conversation.slice(CONVERSATION_PREFIX.length)
    : undefined;
}

/** A group message held until its sender's key arrives. */
export interface PendingGroupMessage {
  readonly from: string;
  /** The group message as relayed (hex). */
  readonly payload: string;
  /** Local ms when it arrived: it waits at most `GROUP_PENDING_MAX_MS`. */
  readonly at: number;
}

/** What a member has told us it holds: the epoch it reached and our chain it holds. */
export interface MemberAck {
  readonly epoch: number;
  readonly chain: number | null;
}

export interface GroupRecord {
  /** Local handle of the group (its name, made unique on this profile). */
  readonly name: string;
  /** Every membership change from the create on (hex), epoch i at index i. */
  readonly log: readonly string[];
  /** The current checked membership state (§18.7 state bytes, hex). */
  readonly state: string;
  /** `removed`: an admin removed us; `left`: we left. Either way nothing is sent or read. */
  readonly status: 'active' | 'removed' | 'left';
  /** A shared room (seed 003): admins answer join requests for it. */
  readonly room: boolean;
  readonly acked: Readonly<Record<string, MemberAck>>;
  /** What we last sent each member (a gsync), so a retry waits `GROUP_RESYNC_AFTER_MS`. */
  readonly sent: Readonly<Record<string, MemberAck & { readonly at: number }>>;
  /** `<sender>:<chain>` → local ms of our last key request for it. */
  readonly requested: Readonly<Record<string, number>>;
  readonly pending: readonly PendingGroupMessage[];
  /** Receipts still to send: sender → ids of its messages we committed. */
  readonly dueReceipts: Readonly<Record<string, readonly string[]>>;
  /**
   * Our current chain's distribution at its first iteration (hex): what every member
   * of the chain's epoch is given, so one who lost it can read the chain from its
   * start. The chain is new each epoch, so only members of that epoch ever get it.
   */
  readonly dist0: string | null;
  /**
   * Members we removed who have not yet acknowledged it: name → the removal's epoch and
   * when we first told them (local ms). Absent in records from before it existed.
   */
  readonly removedOwed?: Readonly<
    Record<string, { readonly epoch: number; readonly since: number }>
  >;
}

export function emptyRecord(name: string, log: readonly string[], state: string): GroupRecord {
  return {
    name,
    log,
    state,
    status: 'active',
    room: false,
    acked: {},
    sent: {},
    requested: {},
    pending: [],
    dueReceipts: {},
    dist0: null,
  };
}

export async function readGroupIndex(store: ClientStore): Promise<string[]> {
  const raw = await store.getMeta(META_INDEX);
  return raw === undefined ? [] : (JSON.parse(utf8Decode(raw)) as string[]);
}
export function groupIndexWrite(ids: readonly string[]): StoreWrite {
  return { op: 'meta.put', key: META_INDEX, value: utf8Encode(JSON.stringify(ids)) };
}

export async function readGroupRecord(
  store: ClientStore,
  groupId: string,
): Promise<GroupRecord | undefined> {
  const raw = await store.getMeta(META_RECORD + groupId);
  return raw === undefined ? undefined : (JSON.parse(utf8Decode(raw)) as GroupRecord);
}
export function groupRecordWrite(groupId: string, r: GroupRecord): StoreWrite {
  return { op: 'meta.put', key: META_RECORD + groupId, value: utf8Encode(JSON.stringify(r)) };
}

export function membershipOf(crypto: CryptoProvider, r: GroupRecord): GroupMembership {
  return decodeGroupState(crypto, fromHex(r.state));
}
export function stateHex(s: GroupMembership): string {
  return toHex(encodeGroupState(s));
}

export async function readOutgoingChain(
  store: ClientStore,
  groupId: string,
): Promise<OutgoingSenderChain | undefined> {
  const raw = await store.getMeta(META_CHAIN + groupId);
  return raw === undefined ? undefined : deserializeOutgoingSenderChain(raw);
}
export function outgoingChainWrite(
  groupId: string,
  c: OutgoingSenderChain | undefined,
): StoreWrite {
  return c === undefined
    ? { op: 'meta.delete', key: META_CHAIN + groupId }
    : { op: 'meta.put', key: META_CHAIN + groupId, value: serializeOutgoingSenderChain(c) };
}

export async function readIncomingChains(
  store: ClientStore,
  groupId: string,
  sender: string,
): Promise<IncomingSenderChains | undefined> {
  const raw = await store.getMeta(`${META_INCOMING}${groupId}:${sender}`);
  return raw === undefined ? undefined : deserializeIncomingSenderChains(raw);
}
export function incomingChainsWrite(
  groupId: string,
  sender: string,
  c: IncomingSenderChains | undefined,
): StoreWrite {
  const key = `${META_INCOMING}${groupId}:${sender}`;
  return c === undefined
    ? { op: 'meta.delete', key }
    : { op: 'meta.put', key, value: serializeIncomingSenderChains(c) };
}

/** Messages for group `groupId` that arrived before we knew the group. */
export async function readOrphans(
  store: ClientStore,
  groupId: string,
): Promise<PendingGroupMessage[]> {
  const raw = await store.getMeta(META_ORPHANS + groupId);
  return raw === undefined ? [] : (JSON.parse(utf8Decode(raw)) as PendingGroupMessage[]);
}
export function orphansWrite(groupId: string, list: readonly PendingGroupMessage[]): StoreWrite {
  const key = META_ORPHANS + groupId;
  return list.length === 0
    ? { op: 'meta.delete', key }
    : { op: 'meta.put', key, value: utf8Encode(JSON.stringify(list)) };
}
