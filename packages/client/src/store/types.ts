/**
 * The client's storage contract. Reads are asynchronous so that an IndexedDB backend
 * (web client) can implement the same interface; every write goes through `commit`,
 * which applies a whole batch atomically or nothing at all. That is how a decrypted
 * message and the session state it advanced land together: the client core computes
 * both against a copy of the session, then commits one batch (STYLE.md practice 5).
 *
 * The store holds secrets (identity key, prekeys, sessions) and history; the backend
 * is responsible for encrypting them at rest (SQLCipher in Node, encrypted values in
 * the browser). This module owns the record shapes and must not know about SQL.
 */
import type { SearchOptions } from './search.js';
import type { EnvelopeKind } from '../envelope.js';

/** How much we trust that a contact's identity key really is theirs. */
export type TrustState =
  /** First seen key (open mode, trust on first use); not compared out of band. */
  | 'unverified'
  /** The user compared safety numbers and marked the key verified. */
  | 'verified'
  /** mtls mode: the key is bound to the name by a certificate from our organisation's CA. */
  | 'ca-attested'
  /** The key differs from the one we had: messages to this contact need re-verification. */
  | 'key-changed';

export interface Contact {
  readonly name: string;
  readonly deviceId: number;
  /** Ed25519 identity public key (32 bytes). */
  readonly identityKey: Uint8Array;
  readonly trust: TrustState;
  /** The key before the last change, kept so the warning can show both fingerprints. */
  readonly previousIdentityKey?: Uint8Array;
  /** Milliseconds since the epoch, local clock. */
  readonly addedAt: number;
  readonly updatedAt: number;
}

/**
 * Life of a message: outgoing `sending` (stored; encrypted into the outbox, or waiting
 * for the peer's keys when there is no session yet) -> `queued` (the relay stored it)
 * -> `on-device` (the relay says the recipient's device acknowledged the block: not a
 * promise that it could read it) -> `delivered` (only from the end-to-end receipt the
 * recipient's client sends inside the session after decrypting and committing it);
 * `failed` when it can never be sent (the peer's keys were refused: unknown user,
 * untrusted certificate) or the peer still could not decrypt it after repairs.
 * Incoming messages are `received`.
 */
export type MessageStatus =
  'sending' | 'queued' | 'on-device' | 'delivered' | 'received' | 'failed';

export interface StoredMessage {
  /** Hex of the 16-byte client message id chosen by the sender. */
  readonly id: string;
  /**
   * The conversation: the other party's name, or for a group its conversation id
   * (`groupConversationId`, `group:` + hex group id, which no user name can be).
   */
  readonly peer: string;
  /** Group conversations, incoming: the member who sent it (authenticated by its sender chain). */
  readonly from?: string;
  /**
   * Group conversations, outgoing: how many members it was sent to, and who of them
   * returned the end-to-end receipt ("delivered to k of n"); the status becomes
   * `delivered` only when all n did.
   */
  readonly groupDelivery?: { readonly of: number; readonly by: readonly string[] };
  readonly direction: 'in' | 'out';
  readonly text: string;
  /** Sender's clock when sent (ms since epoch), as claimed inside the encrypted envelope. */
  readonly sentAt: number;
  /** Local clock when this record was committed. */
  readonly storedAt: number;
  readonly status: MessageStatus;
  /** Whether a reader (`parley read`, the chat view) has presented it. */
  readonly shown: boolean;
  /** Assigned by the store on first insert: the order of the conversation. */
  readonly seq?: number;
  /**
   * Disappearing messages (docs/client.md): local ms since the epoch at which the
   * client deletes this message; absent, it is kept.
   */
  readonly expiresAt?: number;
  /**
   * Present only on a timer-change event in the conversation (text empty): the
   * disappearing-message timer set from here on, in ms, 0 = off.
   */
  readonly timerMs?: number;
}

/** The frame that carries an outbox entry's ciphertext to the relay. */
export type OutboxFrame = 'send' | 'session.terminate' | 'group.send';

/**
 * `pending`: waiting for the relay's `queued` (sent again until then). `sent`: the relay
 * stored it; the record stays only so a late receipt still finds what it is about.
 */
export type OutboxState = 'pending' | 'sent';

/**
 * One ciphertext handed to the relay, by its wire id (outbox-records.ts owns the rules):
 * `pending` until the relay's `queued`, then `sent` until its last receipt.
 */
export interface OutboxEntry {
  /** Hex client message id; the relay deduplicates retries by it. */
  readonly id: string;
  readonly peer: string;
  readonly deviceId: number;
  /**
   * The exact payload bytes to send. Encrypted once, when the message was written, so
   * a retry resends the same ciphertext instead of advancing the ratchet again.
   */
  readonly payload: Uint8Array;
  readonly createdAt: number;
  readonly attempts: number;
  /**
   * A group upload (`group.send`): the members it goes to, in one relay upload; `peer`
   * is then the group's conversation id and `deviceId` unused (1).
   */
  readonly recipients?: readonly string[];
  readonly frame: OutboxFrame;
  /** The envelope kind inside the ciphertext (`msg`, `rcpt`, `end`, …). */
  readonly kind: EnvelopeKind;
  /** The outgoing history entry (in conversation `peer`) this ciphertext delivers, if any. */
  readonly message?: string;
  readonly state: OutboxState;
}

export interface ConversationSummary {
  readonly peer: string;
  readonly lastText: string;
  readonly lastAt: number;
  readonly unread: number;
}

/** One write of a batch. A discriminated union so every backend handles every kind. */
export type StoreWrite =
  | { readonly op: 'meta.put'; readonly key: string; readonly value: Uint8Array }
  | { readonly op: 'meta.delete'; readonly key: string }
  | {
      readonly op: 'session.put';
      readonly peer: string;
      readonly deviceId: number;
      readonly state: Uint8Array;
    }
  | { readonly op: 'session.delete'; readonly peer: string; readonly deviceId: number }
  | {
      readonly op: 'secret.put';
      readonly kind: string;
      readonly id: number;
      readonly value: Uint8Array;
    }
  | { readonly op: 'secret.delete'; readonly kind: string; readonly id: number }
  | { readonly op: 'contact.put'; readonly contact: Contact }
  /** Inserts a message, or replaces one with the same (peer, direction, id) keeping its seq. */
  | { readonly op: 'message.put'; readonly message: StoredMessage }
  /** Fails the whole batch with `NOT_FOUND` if the message does not exist. */
  | {
      readonly op: 'message.status';
      readonly peer: string;
      readonly id: string;
      readonly status: MessageStatus;
    }
  /** Marks every incoming message of `peer` up to and including `seq` as shown. */
  | { readonly op: 'message.shown'; readonly peer: string; readonly uptoSeq: number }
  /** Removes one message (and its search index entry); no error if it is absent. */
  | {
      readonly op: 'message.delete';
      readonly peer: string;
      readonly direction: 'in' | 'out';
      readonly id: string;
    }
  /** Removes every message of a conversation (and their index entries). */
  | { readonly op: 'conversation.delete'; readonly peer: string }
  | { readonly op: 'seen.add'; readonly key: string }
  /** Inserts or replaces the record with this id. */
  | { readonly op: 'outbox.put'; readonly entry: OutboxEntry }
  /**
   * A pending record becomes `sent`, its ciphertext dropped (the relay holds it); no
   * error if it is absent or already sent.
   */
  | { readonly op: 'outbox.sent'; readonly id: string }
  /** Removes the record in any state; no error if it is absent. */
  | { readonly op: 'outbox.delete'; readonly id: string };

export interface ListMessagesOptions {
  /** Only messages with seq greater than this. */
  readonly afterSeq?: number;
  /**
   * Only messages with seq less than this: with `limit`, one page of history older than
   * the oldest one shown (scrollback), read without loading the whole conversation.
   */
  readonly beforeSeq?: number;
  /** Only incoming messages not yet shown. */
  readonly unshownOnly?: boolean;
  /** Most recent `limit` messages (still returned oldest first). */
  readonly limit?: number;
}

export interface ClientStore {
  getMeta(key: string): Promise<Uint8Array | undefined>;
  getSession(peer: string, deviceId: number): Promise<Uint8Array | undefined>;
  getSecret(kind: string, id: number): Promise<Uint8Array | undefined>;
  /** Ids of every secret of a kind, ascending. */
  listSecretIds(kind: string): Promise<number[]>;
  getContact(name: string): Promise<Contact | undefined>;
  listContacts(): Promise<Contact[]>;
  getMessage(peer: string, direction: 'in' | 'out', id: string): Promise<StoredMessage | undefined>;
  /** A conversation in order (ascending seq); with no peer, every conversation. */
  listMessages(peer?: string, options?: ListMessagesOptions): Promise<StoredMessage[]>;
  listConversations(): Promise<ConversationSummary[]>;
  /**
   * Messages whose text matches `query` (store/search.ts: words, `word*` prefixes, all
   * must occur), newest first; `INVALID_ARGUMENT` for a query without a word.
   */
  searchMessages(query: string, options?: SearchOptions): Promise<StoredMessage[]>;
  hasSeen(key: string): Promise<boolean>;
  /** Pending sends (state `pending`), oldest first. */
  listOutbox(): Promise<OutboxEntry[]>;
  /** The outbox record with this wire id, in any state. */
  getOutbox(id: string): Promise<OutboxEntry | undefined>;
  /** Applies every write or none; throws `ClientError('STORE' | 'NOT_FOUND')` on rejection. */
  commit(writes: readonly StoreWrite[]): Promise<void>;
  close(): Promise<void>;
}
