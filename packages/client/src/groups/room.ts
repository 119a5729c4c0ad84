/**
 * The shared room (docs/client.md, "Shared rooms"): a server-wide group any user can
 * join, end-to-end encrypted like any other. It is an ordinary group marked as a room
 * by the profile that created it; joining asks every user online (over pairwise
 * sessions, `gjoin`) and an admin of a room of that name adds the asker with a signed
 * change. If nobody answers in `ROOM_JOIN_WAIT_MS`, the asker creates the room and is
 * its admin. The relay learns only that pairwise messages went to those online.
 *
 * Limits (stated in the docs): a room is found only while one of its admins is online;
 * two users who create the same room at the same moment make two rooms.
 */
import type { StoreWrite } from '../store/types.js';
import type { GroupsContext } from './group-context.js';
import { sendQuietly } from './group-context.js';
import type { GroupJoinEnvelope } from './group-envelope.js';
import type { GroupInfo, Groups } from './groups.js';
import { toHex } from '@parley/crypto';
import { checkUserName } from '../names.js';

/**
 * How long a join waits for an admin's answer before creating the room: an admin online
 * answers within a round trip or two (its key lookup and signed change included).
 */
export const ROOM_JOIN_WAIT_MS = 5_000;
/** Pause between looks at the store while waiting for the answer. */
const ROOM_POLL_MS = 50;

export class Rooms {
  /** Asks who is online (the facade's presence request). */
  online: () => Promise<readonly string[]> = async () => [];

  constructor(
    private readonly ctx: GroupsContext,
    private readonly groups: Groups,
  ) {}

  private async find(room: string): Promise<GroupInfo | undefined> {
    return (await this.groups.list()).find((g) => g.name === room && g.status === 'active');
  }

  async join(room: string): Promise<GroupInfo> {
    checkUserName(room, 'room');
    const held = await this.find(room);
    if (held) return held;
    const me = this.ctx.account().name;
    for (const name of await this.online()) {
      if (name === me) continue;
      const e: GroupJoinEnvelope = {
        kind: 'gjoin',
        id: toHex(this.ctx.crypto.randomBytes(16)),
        sentAt: this.ctx.clock(),
        room,
      };
      sendQuietly(this.ctx, name, e);
    }
    const deadline = this.ctx.clock() + ROOM_JOIN_WAIT_MS;
    while (this.ctx.clock() < deadline) {
      await new Promise<void>((r) => this.ctx.timers.set(() => r(), ROOM_POLL_MS));
      const got = await this.find(room);
      if (got) return this.groups.markRoom(got.id);
    }
    return this.groups.create(room, [], true);
  }

  /** A join request (in the asker's peer queue): an admin of that room adds the asker. */
  async onJoin(from: string, e: GroupJoinEnvelope, writes: StoreWrite[]): Promise<void> {
    await this.ctx.store.commit(writes);
    const me = this.ctx.account().name;
    const g = await this.find(e.room);
    if (!g?.room || g.members.some((m) => m.name === from)) return;
    if (!g.members.some((m) => m.name === me && m.role === 'admin')) return;
    // Not awaited: adding looks up the asker's key in its peer queue, which we are in.
    void this.groups
      .add(g.name, [from])
      .catch((err: unknown) => this.ctx.reportError(err, `adding ${from} to ${e.room} failed`));
  }
}
