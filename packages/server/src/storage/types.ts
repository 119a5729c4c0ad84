/**
 * The relay's storage contract. The relay core talks only to this interface, so the
 * embedded SQLite backend and a future PostgreSQL backend are interchangeable; one
 * contract suite (`test/store-contract.ts`) runs against every backend.
 *
 * Methods are asynchronous because networked backends are. Everything stored is either
 * public (names, public keys) or opaque ciphertext: the relay never stores secrets.
 */

/** A device address: user name plus device id (u32; one device per name today: 1). */
export interface Address {
  readonly name: string;
  readonly deviceId: number;
}

export interface DeviceRecord extends Address {
  /** Ed25519 identity public key (32 bytes). */
  readonly identityKey: Uint8Array;
  /** DER of the device's client certificate (mtls mode), handed out with its bundle. */
  readonly certificate?: Uint8Array;
  readonly registeredAt: number;
}

/** A signed prekey (X25519 signed prekey or ML-KEM prekey). */
export interface SignedPrekey {
  readonly id: number;
  readonly publicKey: Uint8Array;
  readonly signature: Uint8Array;
}

/** A one-time prekey; post-quantum one-time keys are signed too. */
export interface OneTimePrekey {
  readonly id: number;
  readonly publicKey: Uint8Array;
  readonly signature?: Uint8Array;
}

/** The device's X25519 identity DH key, signed by its identity key (never changes). */
export interface IdentityDhKey {
  readonly publicKey: Uint8Array;
  readonly signature: Uint8Array;
}

export interface PrekeyUpload {
  readonly identityDh?: IdentityDhKey;
  readonly signedPrekey?: SignedPrekey;
  readonly pqLastResort?: SignedPrekey;
  readonly oneTime?: readonly OneTimePrekey[];
  readonly oneTimePq?: readonly SignedPrekey[];
}

/** What a lookup returns. One-time keys in it have been consumed from the store. */
export interface PrekeyBundle {
  readonly device: DeviceRecord;
  readonly identityDh: IdentityDhKey;
  readonly signedPrekey: SignedPrekey;
  /** A one-time PQ prekey if any is left, else the last-resort PQ prekey. */
  readonly pqPrekey: SignedPrekey;
  readonly pqPrekeyIsLastResort: boolean;
  readonly oneTimePrekey?: OneTimePrekey;
  /** Stock left after this lookup, so the relay can tell the owner to replenish. */
  readonly remainingOneTime: number;
  readonly remainingOneTimePq: number;
}

/** Kinds of relayed items; all carry opaque payloads. `group`: a copy of a group upload. */
export type MailKind = 'message' | 'session.terminate' | 'group';

export interface NewMail {
  readonly recipient: Address;
  readonly sender: Address;
  /** Sender's 16-byte message id, echoed in receipts. */
  readonly clientMessageId: Uint8Array;
  readonly kind: MailKind;
  readonly payload: Uint8Array;
  readonly storedAt: number;
  readonly expiresAt: number;
}

export interface MailItem extends NewMail {
  /** Server message id: strictly increasing in storage order, per relay. */
  readonly serverMessageId: number;
}

/**
 * One group upload: the same payload for several mailboxes, stored as one copy per
 * recipient (kind `group`), all of them or none.
 */
export interface NewGroupMail {
  readonly sender: Address;
  /** The upload's 16-byte id; a retry with the same id stores nothing new. */
  readonly clientMessageId: Uint8Array;
  /** In the sender's order; a device listed twice gets one copy. */
  readonly recipients: readonly Address[];
  readonly payload: Uint8Array;
  readonly storedAt: number;
  readonly expiresAt: number;
}

/** One stored copy of a group upload. */
export interface GroupCopy {
  readonly recipient: Address;
  readonly serverMessageId: number;
}

/**
 * Decision on a group upload. New: the copies stored, in the sender's order (ids grow
 * along it), and how many listed devices got none because they are not registered or
 * their mailbox is full. Duplicate: the upload (same sender and client message id) was
 * stored before; `serverMessageId` is its first copy's id and nothing new is stored.
 */
export type GroupEnqueueResult =
  | {
      readonly ok: true;
      readonly duplicate: false;
      readonly copies: readonly GroupCopy[];
      readonly unknown: number;
      readonly full: number;
    }
  | { readonly ok: true; readonly duplicate: true; readonly serverMessageId: number }
  /** No listed device could take a copy (unknown or full): nothing stored. */
  | {
      readonly ok: false;
      readonly reason: 'no-recipient';
      readonly unknown: number;
      readonly full: number;
    };

/** Outcome of {@link RelayStore.submitGroup}. */
export interface GroupSubmission {
  readonly decision: GroupEnqueueResult;
  /** Settles once every copy is durable; rejects if the upload could not be stored. */
  readonly committed: Promise<void>;
  /** As {@link Submission.idDurable}, for every copy's id. */
  readonly idDurable: boolean;
}

export interface Receipt {
  readonly clientMessageId: Uint8Array;
  readonly status: 'queued' | 'delivered';
  readonly serverMessageId: number;
  readonly timestamp: number;
}

export interface StoredReceipt extends Receipt {
  /** Storage id of the kept receipt: increasing in storage order (cursor of `pendingReceipts`). */
  readonly receiptId: number;
}

export type EnqueueResult =
  | {
      readonly ok: true;
      readonly serverMessageId: number;
      /** The sender already stored this client message id: nothing new was stored. */
      readonly duplicate: boolean;
    }
  | { readonly ok: false; readonly reason: 'mailbox-full' };

/**
 * How a submitted item left the in-flight state: `stored` (durable; the sender may be
 * told "queued") or `acked` (the recipient acknowledged it while it was held, so it was
 * never written; only "delivered" applies).
 */
export type CommitOutcome = 'stored' | 'acked';

/** Options of {@link RelayStore.submit}. */
export interface SubmitOptions {
  /**
   * The caller is handing the mail to the recipient live: the store may keep it in
   * memory for up to this long and drop it without ever writing it if the recipient's
   * ack arrives first. Backends that do not hold simply store it. Ignored when the id
   * is not yet durably reserved (it would not be shown early anyway).
   */
  readonly holdMs?: number;
}

/** Outcome of {@link RelayStore.submit}. */
export interface Submission {
  readonly decision: EnqueueResult;
  /**
   * Settles once the item is durable (`stored`) or was acknowledged while held
   * (`acked`); rejects if it could not be stored.
   */
  readonly committed: Promise<CommitOutcome>;
  /** Ends a hold early (the live hand-over did not happen after all); no-op otherwise. */
  readonly writeNow?: () => void;
  /**
   * True when the server id is already durably reserved, so showing it to a recipient
   * before `committed` is safe: after a crash the id can never be handed out again
   * (clients drop a repeated server id as already seen).
   */
  readonly idDurable: boolean;
}

/** Storage backend of the relay. */
export interface RelayStore {
  /** Registers a device, or returns the existing record. Never replaces a key silently. */
  registerDevice(device: DeviceRecord): Promise<{ created: boolean; device: DeviceRecord }>;
  /**
   * Sets a device's identity key and certificate unconditionally. Only for mtls mode,
   * where the CA, not first use, decides which key a name has. When the identity key
   * differs from the stored one (the CA certified a new key for the name), every prekey
   * of the device is dropped in the same step: they are signed by the old key, and a
   * bundle mixing them with the new one would not verify. Resolves true in that case.
   */
  upsertDevice(device: DeviceRecord): Promise<boolean>;
  getDevice(address: Address): Promise<DeviceRecord | undefined>;
  /** Devices of a name, in device-id order. */
  listDevices(name: string): Promise<DeviceRecord[]>;

  /**
   * Replaces the identity DH, signed and last-resort keys given; appends one-time keys
   * (ids already present are ignored).
   */
  putPrekeys(address: Address, upload: PrekeyUpload): Promise<void>;
  /**
   * Atomically builds a bundle (undefined until identity DH, signed and last-resort
   * keys have all been uploaded) and consumes the one-time keys it contains, so each
   * one-time key is handed out at most once even under concurrent lookups.
   */
  takePrekeyBundle(address: Address): Promise<PrekeyBundle | undefined>;
  countPrekeys(address: Address): Promise<{ oneTime: number; oneTimePq: number }>;
  /** The device's signed identity DH key, if uploaded. Reads only: consumes nothing. */
  getIdentityDh(address: Address): Promise<IdentityDhKey | undefined>;

  /**
   * Stores a message durably; resolves only once it is on stable storage, which is
   * what lets the relay tell the sender "queued". A retry of a stored message (same
   * sender and client message id, e.g. after a relay crash lost the receipt) stores
   * nothing and returns the original server id, so the recipient gets it once.
   */
  enqueue(mail: NewMail, maxPerRecipient: number): Promise<EnqueueResult>;
  /**
   * `enqueue` in two steps: `decision` (server id assigned, duplicate or full decided,
   * in call order) as soon as it is known, and `committed`, which resolves once the
   * mail is durable (rejects if it could not be stored). Lets the relay hand mail to an
   * online recipient while the commit is still in flight; "queued" still waits for
   * `committed`. `enqueue` is `submit` followed by waiting for `committed`.
   *
   * With `holdMs` the write may wait that long for the recipient's ack, which then
   * cancels it (`committed` resolves `acked`, `ack` returns the item). Commits of one
   * recipient's mail still resolve in server-id order, held or not.
   */
  submit(mail: NewMail, maxPerRecipient: number, opts?: SubmitOptions): Promise<Submission>;
  /**
   * Stores a group upload: one copy (kind `group`) per listed registered device whose
   * mailbox has room, in one transaction, all of them or none; ids are assigned in the
   * listed order and each recipient's copies keep server-id order with its other mail.
   * The upload is remembered (sender, client message id) until its expiry, even after
   * every copy was acked, so a retry stores nothing and returns the first copy's id.
   * Copies are never held for a live ack (`submit`'s `holdMs`): written at once.
   */
  submitGroup(mail: NewGroupMail, maxPerRecipient: number): Promise<GroupSubmission>;
  /** Undelivered mail of a recipient with server id > `afterId`, oldest first. */
  pending(recipient: Address, afterId: number, limit: number): Promise<MailItem[]>;
  /** Deletes one item after the recipient's ack; returns it (for the receipt) or undefined. */
  ack(recipient: Address, serverMessageId: number): Promise<MailItem | undefined>;
  mailboxCount(recipient: Address): Promise<number>;
  /** Deletes mail (and remembered group uploads) whose `expiresAt` <= now; returns how much mail. */
  expire(now: number): Promise<number>;

  /** Keeps a receipt for a sender who is offline; beyond `maxPerSender` the oldest go. */
  addReceipt(sender: Address, receipt: Receipt, maxPerSender: number): Promise<void>;
  /**
   * Kept receipts of a sender with receipt id > `afterReceiptId`, oldest first. Reading
   * does not remove them: they stay until `settleReceipt` (at-least-once delivery).
   */
  pendingReceipts(sender: Address, afterReceiptId: number, limit: number): Promise<StoredReceipt[]>;
  /**
   * Deletes the sender's kept receipts for `serverMessageId` once the sender acknowledged
   * them (server ids are unique relay-wide); returns how many went. Durable on return.
   */
  settleReceipt(sender: Address, serverMessageId: number): Promise<number>;

  close(): Promise<void>;
}
