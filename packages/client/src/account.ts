/**
 * The local account: who this device is (name, device id, identity key), which relay it
 * talks to and how it authenticates. Stored in the encrypted profile under meta keys;
 * the identity secret never leaves the store except into this object, which prints
 * only public parts.
 */
import { asEd25519SecretKey, toHex, utf8Decode, utf8Encode, zeroize } from '@parley/crypto';
import type { CryptoProvider, Ed25519KeyPair } from '@parley/crypto';
import { ClientError } from './errors.js';
import { checkUserName } from './names.js';
import type { Identity } from './e2ee.js';
import type { AuthMode } from './trust.js';
import type { ClientStore, StoreWrite } from './store/types.js';

/** Meta keys of the profile. */
export const META_ACCOUNT = 'account';
export const META_IDENTITY_SECRET = 'identity.secret';
/** mtls: the organisation CA (PEM) this profile trusts, and our device certificate (PEM). */
export const META_TLS_CA = 'tls.ca';
export const META_TLS_CERT = 'tls.cert';
/** Next free prekey id (u32, shared by all prekey kinds so ids never collide). */
export const META_NEXT_PREKEY_ID = 'prekeys.next-id';
/** Set once the initial prekey set has been accepted by the relay. */
export const META_PREKEYS_PUBLISHED = 'prekeys.published';
/** JSON list of this device's signed prekeys `[{id, createdAt}]`, newest last. */
export const META_SIGNED_PREKEYS = 'prekeys.signed';

export interface AccountInfo {
  readonly name: string;
  readonly deviceId: number;
  /** wss:// URL of the relay. */
  readonly server: string;
  readonly mode: AuthMode;
  /** Open mode: set once the relay accepted our `register`. */
  readonly registered: boolean;
  readonly createdAt: number;
}

export class Account implements Identity {
  private constructor(
    readonly info: AccountInfo,
    readonly keyPair: Ed25519KeyPair,
  ) {}

  get name(): string {
    return this.info.name;
  }
  get deviceId(): number {
    return this.info.deviceId;
  }

  /** Writes that create an account from an identity seed (32-byte Ed25519 secret). */
  static creationWrites(info: AccountInfo, identitySeed: Uint8Array): StoreWrite[] {
    checkUserName(info.name);
    asEd25519SecretKey(identitySeed, 'identitySeed');
    return [
      { op: 'meta.put', key: META_ACCOUNT, value: utf8Encode(JSON.stringify(info)) },
      { op: 'meta.put', key: META_IDENTITY_SECRET, value: identitySeed },
    ];
  }

  static async load(store: ClientStore, crypto: CryptoProvider): Promise<Account> {
    const raw = await store.getMeta(META_ACCOUNT);
    const secret = await store.getMeta(META_IDENTITY_SECRET);
    if (!raw || !secret)
      throw new ClientError('PROFILE_CORRUPT', 'profile has no account (re-run parley init)');
    let info: AccountInfo;
    try {
      info = JSON.parse(utf8Decode(raw)) as AccountInfo;
      checkUserName(info.name);
    } catch (err) {
      throw new ClientError('PROFILE_CORRUPT', 'account record is damaged', { cause: err });
    }
    const keyPair = crypto.ed25519.keyPairFromSecret(asEd25519SecretKey(secret));
    return new Account(info, keyPair);
  }

  withInfo(update: Partial<AccountInfo>): { account: Account; write: StoreWrite } {
    const info = { ...this.info, ...update };
    return {
      account: new Account(info, this.keyPair),
      write: { op: 'meta.put', key: META_ACCOUNT, value: utf8Encode(JSON.stringify(info)) },
    };
  }

  /** Wipes the in-memory identity secret (the store keeps its own copy). */
  dispose(): void {
    zeroize(this.keyPair.secretKey);
  }

  /** Public parts only: the secret key must never reach a log. */
  toString(): string {
    return `Account(${this.info.name}#${this.info.deviceId}, ${this.info.mode}, key ${toHex(this.keyPair.publicKey).slice(0, 16)}…)`;
  }
  toJSON(): object {
    return { ...this.info, identityKey: toHex(this.keyPair.publicKey) };
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}
