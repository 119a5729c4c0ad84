/**
 * What the group parts are given by the facade: the core context plus the two ways out
 * they need (a pairwise control envelope, a group upload) and the member-key lookup.
 */
import type { CoreContext } from '../context.js';
import type { Envelope } from '../envelope.js';
import { ClientError } from '../errors.js';
import type { OutboxCiphertext } from '../outbox-records.js';

export interface GroupsContext extends CoreContext {
  /**
   * Sends a group envelope to `peer` over the pairwise session (in the peer's queue;
   * resolves once it is in the outbox). Never awaited from inside a group's queue: a
   * peer job may be waiting on that group queue (lock order peer → group → index).
   */
  sendControl(peer: string, envelope: Envelope): Promise<void>;
  /** Hands a committed group upload to the relay now if connected. */
  sendEntry(entry: OutboxCiphertext): void;
  /** The identity key of user `name` (fetched and trust-checked in its peer queue). */
  memberKey(name: string): Promise<Uint8Array>;
  isClosed(): boolean;
  reportError(err: unknown, what: string): void;
}

/** Ran on a control envelope's failure to send: transient ones are retried by the resync. */
export function sendQuietly(ctx: GroupsContext, peer: string, envelope: Envelope): void {
  void ctx.sendControl(peer, envelope).catch((err: unknown) => {
    const transient =
      err instanceof ClientError && (err.code === 'TRANSPORT' || err.code === 'TIMEOUT');
    if (!ctx.isClosed() && !transient) ctx.reportError(err, `group message to ${peer} not sent`);
  });
}
