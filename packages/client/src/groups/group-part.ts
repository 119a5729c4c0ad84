/**
 * The group part as the facade and the inbox see it: membership (groups.ts), messages
 * (group-messages.ts) and the routing of the group envelopes that arrive over pairwise
 * sessions. Rooms (room.ts) sit on top of the same membership.
 */
import type { DeliverFrame } from '@parley/wire';
import type { Envelope } from '../envelope.js';
import type { StoreWrite, StoredMessage } from '../store/types.js';
import type { GroupsContext } from './group-context.js';
import type { GroupEnvelope } from './group-envelope.js';
import { GROUP_ENVELOPE_KINDS } from './group-envelope.js';
import { GroupMessages } from './group-messages.js';
import { Groups, type GroupInfo } from './groups.js';
import { Rooms } from './room.js';

export class GroupPart {
  readonly membership: Groups;
  readonly messages: GroupMessages;
  readonly rooms: Rooms;

  constructor(ctx: GroupsContext) {
    this.membership = new Groups(ctx);
    this.messages = new GroupMessages(ctx, this.membership);
    this.rooms = new Rooms(ctx, this.membership);
    this.membership.onKeys = (id) => this.messages.retryPending(id);
  }

  /** Whether `e` is a group envelope (handled by `onControl`). */
  static isGroupEnvelope(e: Envelope): e is GroupEnvelope {
    return GROUP_ENVELOPE_KINDS.includes(e.kind);
  }

  /** A group envelope decrypted from `from`: committed with `writes` (the session step). */
  onControl(from: string, e: GroupEnvelope, writes: StoreWrite[]): Promise<void> {
    switch (e.kind) {
      case 'gsync':
        return this.membership.onSync(from, e, writes);
      case 'gack':
        return this.membership.onAck(from, e, writes);
      case 'greq':
        return this.membership.onRequest(from, e, writes);
      case 'grcpt':
        return this.messages.onReceipt(from, e, writes);
      case 'gjoin':
        return this.rooms.onJoin(from, e, writes);
    }
  }

  deliver(frame: DeliverFrame): Promise<void> {
    return this.messages.deliver(frame);
  }

  send(group: string, text: string): Promise<StoredMessage> {
    return this.messages.send(group, text);
  }

  list(): Promise<GroupInfo[]> {
    return this.membership.list();
  }

  /** After `welcome`: owed gsyncs, waiting messages and due receipts. */
  async connected(): Promise<void> {
    await this.membership.resyncAll();
    for (const g of await this.membership.list()) this.messages.flushReceiptsLater(g.id);
  }

  close(): void {
    this.membership.close();
  }
}
