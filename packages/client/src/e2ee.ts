/**
 * What the client core needs from the end-to-end protocol, as one narrow interface.
 * `protocol-adapter.ts` implements it with `@parley/protocol`; keeping the seam here
 * means the core's outbox/inbox/trust logic does not depend on the protocol's record
 * layouts, and the protocol can evolve behind it.
 *
 * Every method is pure with respect to storage: it returns the new session state and
 * the store writes it implies, and the core commits them together with the message.
 */
import type { Ed25519KeyPair } from '@parley/crypto';
import type { KeysBundleFrame, PrekeysUploadFrame } from '@parley/wire';
import type { ClientStore, StoreWrite } from './store/types.js';

/** Which prekeys to generate in one batch (ids allocated by the caller). */
export interface PrekeyRequest {
  readonly signedPrekeyId?: number;
  readonly lastResortId?: number;
  readonly oneTimeIds: readonly number[];
  readonly oneTimePqIds: readonly number[];
}

export interface PrekeyBatch {
  /** Body of the `prekeys.upload` frame. */
  readonly upload: Omit<PrekeysUploadFrame, 'type'>;
  /** `secret.put` writes for the matching secret keys. */
  readonly writes: readonly StoreWrite[];
}

export interface EncryptResult {
  readonly state: Uint8Array;
  readonly payload: Uint8Array;
}

export interface DecryptResult {
  readonly state: Uint8Array;
  readonly plaintext: Uint8Array;
  /** The sender's identity key as authenticated by the handshake/session. */
  readonly peerIdentityKey: Uint8Array;
  /** Secret deletions (consumed one-time prekeys) to commit with the message. */
  readonly writes: readonly StoreWrite[];
  /** True if this message created a new session (initial/prekey message). */
  readonly newSession: boolean;
}

/** A safety number as digits (to read aloud) and as a QR payload (to scan). */
export interface SafetyNumber {
  /** 60 decimal digits, identical on both sides. */
  readonly digits: string;
  /** The string to render as a QR code. */
  readonly qrPayload: string;
}

/**
 * What both ends know about a payload besides its bytes, bound into its associated
 * data: the relayed frame's kind (a message cannot be replayed as a terminate).
 */
export interface PayloadMeta {
  readonly kind: 'message' | 'session.terminate';
}

export interface Identity {
  readonly name: string;
  readonly deviceId: number;
  readonly keyPair: Ed25519KeyPair;
}

export interface E2ee {
  generatePrekeys(identity: Identity, request: PrekeyRequest): PrekeyBatch;
  /**
   * Starts a session from a fetched bundle and encrypts the first plaintext.
   * `oneTimePrekey: false` ignores the bundle's one-time X25519 prekey (a repair: the
   * relay may hand out keys whose secrets are gone).
   */
  initiate(
    identity: Identity,
    bundle: KeysBundleFrame,
    plaintext: Uint8Array,
    meta: PayloadMeta,
    options?: { readonly oneTimePrekey?: boolean },
  ): EncryptResult;
  encrypt(
    identity: Identity,
    state: Uint8Array,
    plaintext: Uint8Array,
    meta: PayloadMeta,
  ): EncryptResult;
  /**
   * Decrypts on a copy of `state` (or, for an initial message, against our prekeys in
   * `store`); throws on any failure without side effects: `ClientError` `DUPLICATE`
   * (already read), `NO_SESSION` (an ordinary message and no state), `UNKNOWN_PREKEY`
   * (an initial message naming prekeys we do not hold), `PROTOCOL` (anything else).
   */
  decrypt(
    identity: Identity,
    peer: { readonly name: string; readonly deviceId: number },
    state: Uint8Array | undefined,
    payload: Uint8Array,
    meta: PayloadMeta,
    store: ClientStore,
    now: number,
  ): Promise<DecryptResult>;
  safetyNumber(
    ours: { readonly name: string; readonly identityKey: Uint8Array },
    theirs: { readonly name: string; readonly identityKey: Uint8Array },
  ): SafetyNumber;
  /** Wipes whatever secrets the implementation derived from `identity`. */
  dispose?(identity: Identity): void;
}
