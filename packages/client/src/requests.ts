/**
 * Correlated requests to the relay (`keys.lookup`, `identity.lookup`, `presence.list`):
 * each gets a fresh u32 request id, and settles with the answer that names it, with the
 * relay's `error` for it, on timeout, or when the connection is lost.
 *
 * Owns: the waiting requests of the current connection and the id counter. Knows
 * nothing of what is asked.
 */
import type { ClientFrame, IdentityResultFrame, KeysBundleFrame } from '@parley/wire';
import type { CoreContext } from './context.js';
import { ClientError } from './errors.js';
import type { TimerHandle } from './timers.js';

/** How long a key lookup, presence query or prekey upload may wait for the relay. */
export const REQUEST_TIMEOUT_MS = 15_000;
/** Request ids are u32 on the wire; 0 is never used. */
const MAX_REQUEST_ID = 0xffffffff;

/** What a correlated request resolves with. */
export type Answer = KeysBundleFrame | IdentityResultFrame | readonly string[];

interface Waiting {
  resolve(value: Answer): void;
  reject(err: Error): void;
  timer: TimerHandle;
}

export class Requests {
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 1;

  constructor(private readonly ctx: Pick<CoreContext, 'isReady' | 'send' | 'timers'>) {}

  /** Sends `frame(id)` and waits for the answer naming `id`. */
  request<T extends Answer>(frame: (id: number) => ClientFrame): Promise<T> {
    const { ctx } = this;
    if (!ctx.isReady())
      return Promise.reject(new ClientError('TRANSPORT', 'not connected to the relay'));
    const id = this.nextId++;
    if (this.nextId > MAX_REQUEST_ID) this.nextId = 1;
    return new Promise<T>((resolve, reject) => {
      const timer = ctx.timers.set(() => {
        this.waiting.delete(id);
        reject(new ClientError('TIMEOUT', 'relay did not answer in time'));
      }, REQUEST_TIMEOUT_MS);
      this.waiting.set(id, { resolve: resolve as (v: Answer) => void, reject, timer });
      if (!ctx.send(frame(id))) {
        ctx.timers.clear(timer);
        this.waiting.delete(id);
        reject(new ClientError('TRANSPORT', 'not connected to the relay'));
      }
    });
  }

  /** An answer arrived; unknown ids (late, or never ours) are ignored. */
  settle(requestId: number, value: Answer): void {
    const w = this.take(requestId);
    w?.resolve(value);
  }

  /** The relay refused request `requestId`; returns whether it was one of ours. */
  refuse(requestId: number, code: string): boolean {
    const w = this.take(requestId);
    w?.reject(new ClientError('RELAY_ERROR', `relay refused the request (${code})`));
    return w !== undefined;
  }

  /** The connection closed: no answer will come. */
  failAll(): void {
    for (const id of [...this.waiting.keys()])
      this.take(id)?.reject(new ClientError('TRANSPORT', 'connection lost'));
  }

  private take(requestId: number): Waiting | undefined {
    const w = this.waiting.get(requestId);
    if (!w) return undefined;
    this.waiting.delete(requestId);
    this.ctx.timers.clear(w.timer);
    return w;
  }
}
