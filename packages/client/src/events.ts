/**
 * What the UI and scripts can observe of the client core. One union, emitted through
 * the facade (`ParleyClient.on`); the parts emit through their context.
 */
import type { DeliveryEvent } from './delivery.js';
import type { GroupEvent } from './groups/groups.js';
import type { ClientError } from './errors.js';
import type { Contact, StoredMessage } from './store/types.js';

/** Everything the UI and scripts can observe. */
export type ClientEvent =
  | { readonly type: 'ready' }
  | { readonly type: 'disconnected' }
  | { readonly type: 'mailbox-drained' }
  | { readonly type: 'message'; readonly message: StoredMessage }
  /** `status`, `session-repaired` ("secured again") and delivery `error`s. */
  | DeliveryEvent
  | { readonly type: 'presence'; readonly name: string; readonly online: boolean }
  | { readonly type: 'key-changed'; readonly contact: Contact }
  | { readonly type: 'session-ended'; readonly peer: string }
  /** Disappearing messages `ids` of the conversation with `peer` were deleted. */
  | { readonly type: 'expired'; readonly peer: string; readonly ids: readonly string[] }
  | { readonly type: 'auth-rejected'; readonly reason: string }
  /** A membership change of a group was applied (by us or by an admin). */
  | GroupEvent
  | { readonly type: 'error'; readonly error: ClientError };

export type ClientListener = (event: ClientEvent) => void;
