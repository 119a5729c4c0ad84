/**
 * The one small context every part of the client core is given by the facade
 * (`ParleyClient`): where state lives, how a frame leaves, how an event is reported,
 * what time it is, and the per-key serial queue. A part owns its own fields and reaches
 * the others only through what the facade passes it, so the parts never import each
 * other in a circle.
 */
import type { CryptoProvider } from '@parley/crypto';
import type { ClientFrame } from '@parley/wire';
import type { Account } from './account.js';
import type { E2ee } from './e2ee.js';
import type { ClientEvent } from './events.js';
import type { KeyedQueue } from './queue.js';
import type { ClientStore } from './store/types.js';
import type { Clock, Timers } from './timers.js';

export interface CoreContext {
  readonly store: ClientStore;
  readonly crypto: CryptoProvider;
  readonly e2ee: E2ee;
  readonly clock: Clock;
  readonly timers: Timers;
  /** Serialises all work on one key (a peer's name, or an internal key). */
  readonly queue: KeyedQueue;
  /** The account as of now (registration replaces it). */
  account(): Account;
  /** Authenticated with the relay on the current connection. */
  isReady(): boolean;
  /** Queues one frame for the relay; false if there is no connection. */
  send(frame: ClientFrame): boolean;
  emit(event: ClientEvent): void;
}
