/**
 * Disappearing messages (docs/client.md, "Disappearing messages"): a per-conversation
 * timer either side sets with a `timer` envelope. Every `msg` carries the timer that was
 * in force when it was written (`ttl`), so a change that crosses a message in flight
 * never re-times it. The sender deletes its copy `ttl` after writing it, the recipient
 * `ttl` after receiving it (not after reading: a message nobody opens must not outlive
 * the timer on a device that was lost). Deletion is the store's `message.delete`.
 *
 * Owns: the conversation timer (meta `timer:<peer>` = UTF-8 decimal ms, absent = off)
 * and the one sweep timer, armed for the earliest expiry. A sweep also runs when the
 * client starts, so what expired while it was closed goes first.
 */
import { utf8Decode, utf8Encode } from '@parley/crypto';
import type { CoreContext } from './context.js';
import { outgoingEnvelope } from './envelope.js';
import type { Envelope } from './envelope.js';
import type { ClientStore, StoreWrite, StoredMessage } from './store/types.js';
import type { TimerHandle } from './timers.js';

const META_TIMER_PREFIX = 'timer:';
/**
 * Longest single wait of the sweep timer: far below the host's 2^31 ms timer bound, and
 * short enough that a clock moved forward (suspend, manual change) is noticed soon.
 */
export const EXPIRY_SWEEP_MAX_WAIT_MS = 60 * 60_000;

/** The conversation's disappearing-message timer in ms; 0 = off. */
export async function readTimer(store: ClientStore, peer: string): Promise<number> {
  const raw = await store.getMeta(META_TIMER_PREFIX + peer);
  return raw === undefined ? 0 : Number(utf8Decode(raw));
}

export function timerWrite(peer: string, ms: number): StoreWrite {
  const key = META_TIMER_PREFIX + peer;
  return ms === 0
    ? { op: 'meta.delete', key }
    : { op: 'meta.put', key, value: utf8Encode(String(ms)) };
}

/** The envelope that carries an outgoing history entry (a message or a timer change). */
export function envelopeOf(m: StoredMessage): Envelope {
  if (m.timerMs !== undefined)
    return { kind: 'timer', id: m.id, sentAt: m.sentAt, ttlMs: m.timerMs };
  const ttlMs = m.expiresAt === undefined ? undefined : m.expiresAt - m.sentAt;
  const e = outgoingEnvelope(m.id, m.sentAt, m.text);
  return ttlMs && (e.kind === 'msg' || e.kind === 'file') ? { ...e, ttlMs } : e;
}

export interface DisappearingContext extends CoreContext {
  isClosed(): boolean;
  reportError(err: unknown, what: string): void;
}

export class Disappearing {
  private timer: TimerHandle | undefined;
  private timerAt = Number.POSITIVE_INFINITY;

  constructor(private readonly ctx: DisappearingContext) {}

  /** A message that expires at `at` was committed: make sure a sweep runs by then. */
  arm(at: number | undefined): void {
    const { ctx } = this;
    if (at === undefined || ctx.isClosed() || at >= this.timerAt) return;
    if (this.timer !== undefined) ctx.timers.clear(this.timer);
    this.timerAt = at;
    const wait = Math.min(Math.max(at - ctx.clock(), 0), EXPIRY_SWEEP_MAX_WAIT_MS);
    this.timer = ctx.timers.set(() => {
      this.timer = undefined;
      this.timerAt = Number.POSITIVE_INFINITY;
      void this.sweep().catch((err: unknown) => ctx.reportError(err, 'expiring messages failed'));
    }, wait);
  }

  /**
   * Deletes every message whose time is up, each conversation in its peer's queue (so a
   * status write never races the delete), then arms the timer for the next one.
   */
  async sweep(): Promise<void> {
    const { ctx } = this;
    if (ctx.isClosed()) return;
    const now = ctx.clock();
    const due = new Map<string, StoredMessage[]>();
    let next: number | undefined;
    for (const m of await ctx.store.listMessages()) {
      if (m.expiresAt === undefined) continue;
      if (m.expiresAt > now) {
        next = next === undefined ? m.expiresAt : Math.min(next, m.expiresAt);
        continue;
      }
      due.set(m.peer, [...(due.get(m.peer) ?? []), m]);
    }
    for (const [peer, list] of due) {
      await ctx.queue.run(peer, async () => {
        await ctx.store.commit(
          list.map((m) => ({ op: 'message.delete', peer, direction: m.direction, id: m.id })),
        );
      });
      ctx.emit({ type: 'expired', peer, ids: list.map((m) => m.id) });
    }
    this.arm(next);
  }

  close(): void {
    if (this.timer !== undefined) this.ctx.timers.clear(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
  }
}
