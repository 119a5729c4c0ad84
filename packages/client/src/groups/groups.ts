/**
 * Group membership and sender-key distribution (docs/client.md, "Groups"): signed,
 * chained membership changes (the protocol's `applyGroupChange`) and each member's
 * sender chain, both carried to the members in `gsync` envelopes over pairwise
 * sessions, acknowledged by `gack` and sent again until acknowledged.
 *
 * Rules: a member starts a new sender chain in every new epoch (any change: a removed
 * member must not read on, and an added one may be given the chain from its start
 * without reading anything sent before it joined) and by the protocol's rotation rule;
 * a chain goes only to the members of the state it was made in. Admins push the change
 * log to every member until each acknowledges the epoch; every member sends its chain
 * (with the log since what the receiver acknowledged, so order does not matter).
 *
 * Owns: group records and chains (group-records.ts), the resync timer. Every change to
 * one group runs in that group's queue (its conversation id).
 */
import { constantTimeEqual, fromHex, toHex } from '@parley/crypto';
import {
  addGroupMembers,
  applyGroupChange,
  createGroup,
  createSenderChain,
  decodeGroupChange,
  decodeSenderKeyDistribution,
  encodeSenderKeyDistribution,
  IdentityKeyPair,
  isGroupMember,
  leaveGroup,
  processSenderKeyDistribution,
  removeGroupMembers,
  senderChainRotationDue,
  type GroupChange,
  type GroupMember,
  type GroupMembership,
  type OutgoingSenderChain,
} from '@parley/protocol';
import type {
  GroupAckEnvelope,
  GroupRequestEnvelope,
  GroupSyncEnvelope,
} from './group-envelope.js';
import { MAX_GROUP_SYNC_LOG } from './group-envelope.js';
import { sendQuietly, type GroupsContext } from './group-context.js';
import {
  emptyRecord,
  GROUP_INDEX_QUEUE,
  groupConversationId,
  groupIndexWrite,
  groupRecordWrite,
  incomingChainsWrite,
  membershipOf,
  outgoingChainWrite,
  readGroupIndex,
  orphansWrite,
  readGroupRecord,
  readIncomingChains,
  readOrphans,
  readOutgoingChain,
  stateHex,
  type GroupRecord,
} from './group-records.js';
import { ClientError } from '../errors.js';
import { checkUserName, DEFAULT_DEVICE_ID } from '../names.js';
import type { StoreWrite } from '../store/types.js';
import type { TimerHandle } from '../timers.js';

/**
 * A member that has not acknowledged our gsync after this long is sent it again. The
 * relay keeps what it took, so this only repairs a loss (a dropped session, a repair
 * that discarded the outbox); long enough that a member online answers first.
 */
export const GROUP_RESYNC_AFTER_MS = 30_000;
/**
 * How long a removed member is told of its removal again (every `GROUP_RESYNC_AFTER_MS`)
 * until it acknowledges: as long as a group message may wait for its key, so a member
 * back from a long absence still learns it; one whose account is gone stops costing.
 */
export const GROUP_REMOVAL_NOTICE_MAX_MS = 7 * 24 * 60 * 60 * 1000;

/** Who is in a group, as the CLI and UI show it. */
export interface GroupInfo {
  readonly name: string;
  readonly id: string;
  readonly conversation: string;
  readonly status: GroupRecord['status'];
  readonly room: boolean;
  readonly epoch: number;
  readonly members: readonly { readonly name: string; readonly role: 'admin' | 'member' }[];
}

/** Membership events the UI shows in a group's conversation. */
export interface GroupEvent {
  readonly type: 'group';
  readonly group: string;
  readonly change: GroupChange['kind'] | 'removed-me';
  readonly by: string;
  readonly members: readonly string[];
}

const addressOf = (name: string) => ({ userId: name, deviceId: DEFAULT_DEVICE_ID });

export class Groups {
  private retryTimer: TimerHandle | undefined;
  private signerCache: { seed: Uint8Array; pair: IdentityKeyPair } | undefined;
  /** Run after a gsync or ack changed what we hold: retry the group's waiting messages. */
  onKeys: (groupId: string) => void = () => undefined;

  constructor(private readonly ctx: GroupsContext) {}

  private me(): string {
    return this.ctx.account().name;
  }

  private signer(): { identity: IdentityKeyPair; address: { userId: string; deviceId: number } } {
    const account = this.ctx.account();
    const seed = account.keyPair.secretKey;
    if (this.signerCache?.seed !== seed)
      this.signerCache = { seed, pair: IdentityKeyPair.fromSeed(this.ctx.crypto, seed) };
    return { identity: this.signerCache.pair, address: addressOf(account.name) };
  }

  /* ---------------- lookups ---------------- */

  async list(): Promise<GroupInfo[]> {
    const out: GroupInfo[] = [];
    for (const id of await readGroupIndex(this.ctx.store)) {
      const r = await readGroupRecord(this.ctx.store, id);
      if (r) out.push(this.info(id, r));
    }
    return out;
  }

  private info(id: string, r: GroupRecord): GroupInfo {
    const s = membershipOf(this.ctx.crypto, r);
    return {
      name: r.name,
      id,
      conversation: groupConversationId(id),
      status: r.status,
      room: r.room,
      epoch: s.epoch,
      members: s.members.map((m) => ({ name: m.address.userId, role: m.role })),
    };
  }

  /** The id of the group `name` (its local handle); `NOT_FOUND` if there is none. */
  async idOf(name: string): Promise<string> {
    const g = (await this.list()).find((i) => i.name === name);
    if (!g) throw new ClientError('NOT_FOUND', `unknown group ${name}`);
    return g.id;
  }

  /** Marks a group we joined as a shared room (so we answer its join requests as admin). */
  markRoom(id: string): Promise<GroupInfo> {
    return this.ctx.queue.run(groupConversationId(id), async () => {
      const r = await readGroupRecord(this.ctx.store, id);
      if (!r) throw new ClientError('NOT_FOUND', 'unknown group');
      const next = { ...r, room: true };
      if (!r.room) await this.ctx.store.commit([groupRecordWrite(id, next)]);
      return this.info(id, next);
    });
  }

  /* ---------------- changes we make ---------------- */

  async create(name: string, members: readonly string[], room = false): Promise<GroupInfo> {
    checkUserName(name, 'group');
    if ((await this.list()).some((g) => g.name === name))
      throw new ClientError('INVALID_ARGUMENT', `group ${name} already exists`);
    const listed = await this.memberEntries(members.filter((m) => m !== this.me()));
    const signed = createGroup(this.ctx.crypto, this.signer(), { name, members: listed });
    const id = toHex(signed.state.groupId);
    const record = { ...emptyRecord(name, [toHex(signed.change)], stateHex(signed.state)), room };
    await this.ctx.queue.run(groupConversationId(id), async () => {
      await this.commitWithIndex(id, [groupRecordWrite(id, record)]);
      await this.syncNow(id);
    });
    return this.info(id, record);
  }

  async add(name: string, members: readonly string[]): Promise<GroupInfo> {
    const id = await this.idOf(name);
    const listed = await this.memberEntries(members);
    return this.change(id, (s) => addGroupMembers(this.ctx.crypto, this.signer(), s, listed));
  }

  async remove(name: string, members: readonly string[]): Promise<GroupInfo> {
    const id = await this.idOf(name);
    members.forEach((m) => checkUserName(m, 'member'));
    return this.change(
      id,
      (s) => {
        for (const m of members)
          if (!isGroupMember(s, addressOf(m)))
            throw new ClientError('NOT_FOUND', `${m} is not a member of ${name}`);
        return removeGroupMembers(this.ctx.crypto, this.signer(), s, members.map(addressOf));
      },
      members,
    );
  }

  async leave(name: string): Promise<GroupInfo> {
    const id = await this.idOf(name);
    return this.change(id, (s) => leaveGroup(this.ctx.crypto, this.signer(), s));
  }

  private async memberEntries(names: readonly string[]): Promise<GroupMember[]> {
    const out: GroupMember[] = [];
    for (const n of names) {
      checkUserName(n, 'member');
      let key: Uint8Array;
      try {
        key = await this.ctx.memberKey(n);
      } catch (err) {
        if (err instanceof ClientError && err.code === 'NOT_FOUND')
          throw new ClientError('NOT_FOUND', `unknown member ${n}`, { cause: err });
        throw err;
      }
      out.push({
        address: addressOf(n),
        identityKey: key as GroupMember['identityKey'],
        role: 'member',
      });
    }
    return out;
  }

  /** Makes a signed change in the group's queue, commits it, and sends it on. */
  private change(
    id: string,
    make: (s: GroupMembership) => { change: Uint8Array; state: GroupMembership },
    removed: readonly string[] = [],
  ): Promise<GroupInfo> {
    return this.ctx.queue.run(groupConversationId(id), async () => {
      const r = await readGroupRecord(this.ctx.store, id);
      if (!r) throw new ClientError('NOT_FOUND', 'unknown group');
      if (r.status !== 'active')
        throw new ClientError('INVALID_ARGUMENT', `not a member of ${r.name}`);
      const before = membershipOf(this.ctx.crypto, r);
      const meInfo = before.members.find((m) => m.address.userId === this.me());
      let signed;
      try {
        signed = make(before);
      } catch (err) {
        if (err instanceof ClientError) throw err;
        const code = (err as { code?: string }).code;
        if (code === 'NOT_AUTHORIZED' || (meInfo?.role !== 'admin' && code !== undefined))
          throw new ClientError('NOT_AUTHORIZED', `not an admin of ${r.name}`, { cause: err });
        throw new ClientError('INVALID_ARGUMENT', (err as Error).message, { cause: err });
      }
      const left = !isGroupMember(signed.state, addressOf(this.me()));
      let next: GroupRecord = {
        ...r,
        log: [...r.log, toHex(signed.change)],
        state: stateHex(signed.state),
        status: left ? 'left' : 'active',
        ...(left ? { pending: [], dueReceipts: {}, dist0: null } : {}),
      };
      if (!left && removed.length > 0) {
        const now = this.ctx.clock();
        const owed = { ...(next.removedOwed ?? {}) };
        const sent = { ...next.sent };
        for (const n of removed) {
          owed[n] = { epoch: signed.state.epoch, since: now };
          sent[n] = { epoch: signed.state.epoch, chain: null, at: now };
        }
        next = { ...next, removedOwed: owed, sent };
      }
      const writes: StoreWrite[] = [groupRecordWrite(id, next)];
      writes.push(...this.dropChains(id, before, signed.state, left));
      await this.ctx.store.commit(writes);
      // Those who are no longer members are told (they get no new key either way); a
      // member we removed is told again by `syncNow` until it acknowledges.
      const gone = left
        ? before.members.map((m) => m.address.userId).filter((n) => n !== this.me())
        : removed;
      for (const n of gone) sendQuietly(this.ctx, n, this.syncEnvelope(id, next, n, null));
      if (!left) await this.syncNow(id);
      return this.info(id, next);
    });
  }

  /** Deletes the chains of members no longer in `after` (all of them, and ours, if we left). */
  private dropChains(
    id: string,
    before: GroupMembership,
    after: GroupMembership,
    all: boolean,
  ): StoreWrite[] {
    const writes: StoreWrite[] = [];
    for (const m of before.members) {
      const n = m.address.userId;
      if (n === this.me()) continue;
      if (all || !isGroupMember(after, m.address))
        writes.push(incomingChainsWrite(id, n, undefined));
    }
    if (all) writes.push(outgoingChainWrite(id, undefined));
    return writes;
  }

  /** Inside the group's queue: commit `writes` and, if the group is new, the index. */
  private async commitWithIndex(id: string, writes: StoreWrite[]): Promise<void> {
    await this.ctx.queue.run(GROUP_INDEX_QUEUE, async () => {
      const ids = await readGroupIndex(this.ctx.store);
      await this.ctx.store.commit(
        ids.includes(id) ? writes : [...writes, groupIndexWrite([...ids, id])],
      );
    });
  }

  /* ---------------- distribution ---------------- */

  /** Our chain, new if the epoch moved on or the rotation rule says so (the caller commits). */
  async currentChain(
    id: string,
    r: GroupRecord,
    s: GroupMembership,
    writes: StoreWrite[],
  ): Promise<{ chain: OutgoingSenderChain; record: GroupRecord }> {
    const now = this.ctx.clock();
    const held = await readOutgoingChain(this.ctx.store, id);
    if (
      held &&
      held.createdAtEpoch >= s.epoch &&
      senderChainRotationDue(held, s, now) === undefined
    )
      return { chain: held, record: r };
    const chain = createSenderChain(this.ctx.crypto, s.groupId, { nowMs: now, epoch: s.epoch });
    writes.push(outgoingChainWrite(id, chain));
    return { chain, record: { ...r, dist0: toHex(encodeSenderKeyDistribution(chain)), sent: {} } };
  }

  private syncEnvelope(
    id: string,
    r: GroupRecord,
    member: string,
    dist: string | null,
  ): GroupSyncEnvelope {
    const acked = r.acked[member];
    const from = acked ? acked.epoch + 1 : 0;
    return {
      kind: 'gsync',
      id: this.newId(),
      sentAt: this.ctx.clock(),
      group: id,
      log: r.log.slice(from).slice(-MAX_GROUP_SYNC_LOG),
      dist,
    };
  }

  private newId(): string {
    return toHex(this.ctx.crypto.randomBytes(16));
  }

  /** Inside the group's queue: rotates if due and sends each member what it lacks. */
  async syncNow(id: string): Promise<void> {
    const { ctx } = this;
    const r0 = await readGroupRecord(ctx.store, id);
    if (!r0 || r0.status !== 'active') return;
    const s = membershipOf(ctx.crypto, r0);
    const writes: StoreWrite[] = [];
    const { chain, record } = await this.currentChain(id, r0, s, writes);
    const now = ctx.clock();
    const admin = s.members.some((m) => m.address.userId === this.me() && m.role === 'admin');
    const sent = { ...record.sent };
    const out: [string, GroupSyncEnvelope][] = [];
    let waiting = false;
    for (const m of s.members) {
      const n = m.address.userId;
      if (n === this.me()) continue;
      const a = record.acked[n];
      const need = a === undefined || a.chain !== chain.chainId || (admin && a.epoch < s.epoch);
      if (!need) continue;
      waiting = true;
      const last = sent[n];
      if (
        last &&
        last.chain === chain.chainId &&
        last.epoch === s.epoch &&
        now - last.at < GROUP_RESYNC_AFTER_MS
      )
        continue;
      out.push([n, this.syncEnvelope(id, record, n, record.dist0)]);
      sent[n] = { epoch: s.epoch, chain: chain.chainId, at: now };
    }
    const owed = { ...(record.removedOwed ?? {}) };
    for (const [n, o] of Object.entries(owed)) {
      if ((record.acked[n]?.epoch ?? 0) >= o.epoch || now - o.since > GROUP_REMOVAL_NOTICE_MAX_MS) {
        delete owed[n];
        continue;
      }
      waiting = true;
      const last = sent[n];
      if (last && last.epoch >= o.epoch && now - last.at < GROUP_RESYNC_AFTER_MS) continue;
      out.push([n, this.syncEnvelope(id, record, n, null)]);
      sent[n] = { epoch: s.epoch, chain: last?.chain ?? null, at: now };
    }
    writes.push(groupRecordWrite(id, { ...record, sent, removedOwed: owed }));
    await ctx.store.commit(writes);
    for (const [n, e] of out) sendQuietly(ctx, n, e);
    if (waiting) this.scheduleResync();
  }

  private scheduleResync(): void {
    const { ctx } = this;
    if (this.retryTimer !== undefined || ctx.isClosed()) return;
    this.retryTimer = ctx.timers.set(() => {
      this.retryTimer = undefined;
      if (ctx.isReady()) void this.resyncAll();
    }, GROUP_RESYNC_AFTER_MS);
  }

  /** After (re)connecting and on the resync timer: every group sends what is owed. */
  async resyncAll(): Promise<void> {
    for (const id of await readGroupIndex(this.ctx.store)) {
      void this.ctx.queue
        .run(groupConversationId(id), () => this.syncNow(id))
        .catch((err: unknown) => this.ctx.reportError(err, 'group sync failed'));
      this.onKeys(id);
    }
  }

  close(): void {
    if (this.retryTimer !== undefined) this.ctx.timers.clear(this.retryTimer);
    this.retryTimer = undefined;
  }

  /* ---------------- what members send us ---------------- */

  /**
   * A gsync from `from` (in its peer queue; `writes` hold the pairwise session step):
   * applies the changes that chain onto ours, takes its chain if it is a member, and
   * commits all of it with `writes` in the group's queue.
   */
  async onSync(from: string, e: GroupSyncEnvelope, writes: StoreWrite[]): Promise<void> {
    const { ctx } = this;
    const id = e.group;
    const events: GroupEvent[] = [];
    let ack: GroupAckEnvelope | undefined;
    let changed = false;
    await ctx.queue.run(groupConversationId(id), async () => {
      const r = await readGroupRecord(ctx.store, id);
      if (r && r.status === 'left') return ctx.store.commit(writes);
      let state = r ? membershipOf(ctx.crypto, r) : undefined;
      const before = state;
      const log = [...(r?.log ?? [])];
      for (const hex of e.log) {
        let c: GroupChange;
        let next: GroupMembership;
        try {
          const bytes = fromHex(hex);
          c = decodeGroupChange(bytes);
          if (state && c.epoch <= state.epoch) continue;
          if (!state && !(await this.trustedCreate(c, from))) break;
          next = applyGroupChange(ctx.crypto, state, bytes);
        } catch {
          // A change that does not chain or verify: the rest cannot apply either.
          break;
        }
        events.push(this.eventOf(id, r?.name ?? next.name, c, state, next));
        state = next;
        log.push(hex);
      }
      if (!state) return ctx.store.commit(writes);
      const meIn = isGroupMember(state, addressOf(this.me()));
      if (!r && !meIn) return ctx.store.commit(writes);
      changed = state !== before;
      const removedNow = r?.status === 'active' && !meIn && changed;
      let record: GroupRecord = r
        ? { ...r, log, state: stateHex(state) }
        : emptyRecord(await this.uniqueName(state.name), log, stateHex(state));
      const all = [...writes];
      if (!r) {
        // What arrived before we knew the group now waits for its keys like any message.
        record = { ...record, pending: await readOrphans(ctx.store, id) };
        all.push(orphansWrite(id, []));
      }
      if (before && changed) all.push(...this.dropChains(id, before, state, removedNow));
      if (removedNow) {
        record = { ...record, status: 'removed', pending: [], dueReceipts: {}, dist0: null };
        events.push({
          type: 'group',
          group: record.name,
          change: 'removed-me',
          by: from,
          members: [],
        });
      }
      let chain: number | null = null;
      if (e.dist !== null && record.status === 'active' && isGroupMember(state, addressOf(from))) {
        try {
          const bytes = fromHex(e.dist);
          const held = await readIncomingChains(ctx.store, id, from);
          const next = processSenderKeyDistribution(held, addressOf(from), bytes);
          chain = decodeSenderKeyDistribution(bytes).chainId;
          all.push(incomingChainsWrite(id, from, next));
        } catch {
          // Not a distribution of this group and sender: nothing of it is kept.
        }
      }
      all.push(groupRecordWrite(id, record));
      await this.commitWithIndex(id, all);
      // A removed member acknowledges too, so the admin stops telling it.
      if (record.status === 'active' || record.status === 'removed')
        ack = {
          kind: 'gack',
          id: this.newId(),
          sentAt: ctx.clock(),
          group: id,
          epoch: state.epoch,
          chain,
        };
    });
    for (const ev of events) ctx.emit(ev);
    if (ack) sendQuietly(ctx, from, ack);
    this.onKeys(id);
    if (changed) this.syncLater(id);
  }

  private syncLater(id: string): void {
    void this.ctx.queue
      .run(groupConversationId(id), () => this.syncNow(id))
      .catch((err: unknown) => this.ctx.reportError(err, 'group sync failed'));
  }

  /**
   * A create we hold no state for is taken from its signer's own session, or from
   * another member's if the creator's key in it is the one we already hold for them.
   */
  private async trustedCreate(c: GroupChange, from: string): Promise<boolean> {
    if (c.kind !== 'create') return false;
    if (c.signer.userId === from) return true;
    const creator = c.members?.find((m) => m.address.userId === c.signer.userId);
    const known = await this.ctx.store.getContact(c.signer.userId);
    return (
      creator !== undefined &&
      known !== undefined &&
      constantTimeEqual(known.identityKey, creator.identityKey)
    );
  }

  private eventOf(
    id: string,
    group: string,
    c: GroupChange,
    before: GroupMembership | undefined,
    after: GroupMembership,
  ): GroupEvent {
    const names = (s: GroupMembership | undefined) =>
      new Set(s?.members.map((m) => m.address.userId) ?? []);
    const b = names(before);
    const a = names(after);
    const members =
      c.kind === 'remove' || c.kind === 'leave'
        ? [...b].filter((n) => !a.has(n))
        : [...a].filter((n) => !b.has(n));
    void id;
    return { type: 'group', group, change: c.kind, by: c.signer.userId, members };
  }

  private async uniqueName(name: string): Promise<string> {
    const base = /^[a-z0-9][a-z0-9._-]{0,63}$/.test(name) ? name : 'group';
    const taken = new Set((await this.list()).map((g) => g.name));
    if (!taken.has(base)) return base;
    for (let i = 2; ; i++)
      if (!taken.has(`${base.slice(0, 60)}-${i}`)) return `${base.slice(0, 60)}-${i}`;
  }

  /** A member says what it holds of ours (commits `writes` with it). */
  async onAck(from: string, e: GroupAckEnvelope, writes: StoreWrite[]): Promise<void> {
    const { ctx } = this;
    await ctx.queue.run(groupConversationId(e.group), async () => {
      const r = await readGroupRecord(ctx.store, e.group);
      if (!r || r.status !== 'active') return ctx.store.commit(writes);
      const s = membershipOf(ctx.crypto, r);
      const owedRemoval = r.removedOwed?.[from] !== undefined;
      if ((!isGroupMember(s, addressOf(from)) && !owedRemoval) || e.epoch > s.epoch)
        return ctx.store.commit(writes);
      const mine = await readOutgoingChain(ctx.store, e.group);
      const prev = r.acked[from];
      const chain = e.chain !== null && e.chain === mine?.chainId ? e.chain : (prev?.chain ?? null);
      const acked = { ...r.acked, [from]: { epoch: Math.max(prev?.epoch ?? 0, e.epoch), chain } };
      await ctx.store.commit([...writes, groupRecordWrite(e.group, { ...r, acked })]);
    });
  }

  /** A member lacks our chain (it holds a message of it): send our gsync again now. */
  async onRequest(from: string, e: GroupRequestEnvelope, writes: StoreWrite[]): Promise<void> {
    const { ctx } = this;
    await ctx.queue.run(groupConversationId(e.group), async () => {
      const r = await readGroupRecord(ctx.store, e.group);
      if (
        !r ||
        r.status !== 'active' ||
        !isGroupMember(membershipOf(ctx.crypto, r), addressOf(from))
      )
        return ctx.store.commit(writes);
      const { [from]: _a, ...acked } = r.acked;
      const { [from]: _s, ...sent } = r.sent;
      await ctx.store.commit([...writes, groupRecordWrite(e.group, { ...r, acked, sent })]);
    });
    this.syncLater(e.group);
  }
}
