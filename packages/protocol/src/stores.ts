/**
 * Store interfaces the protocol needs from its host, with in-memory reference
 * implementations (the client supplies persistent ones and runs the same contract
 * tests against them). Methods may return promises so that asynchronous backends
 * (IndexedDB) fit; the in-memory versions answer synchronously.
 *
 * Owns: the store contracts and `respondWithStores`, the one place that combines
 * trust, replay and prekey consumption for an incoming initial message.
 */
import { constantTimeEqual, toHex, type Ed25519PublicKey } from '@parley/crypto';
import { sameAddress, type Address, type MessageMeta } from './encoding.js';
import { ProtocolError } from './errors.js';
import type { PreKeyMessageInfo } from './handshake.js';
import type { IdentityKeyPair } from './identity.js';
import type { KemPreKeyRecord, OneTimePreKeyRecord, SignedPreKeyRecord } from './prekeys.js';
import { deserializeSession, serializeSession } from './state-codec.js';
import {
  parsePreKeyMessage,
  respondToPreKeyMessage,
  type ProtocolContext,
  type Session,
} from './session.js';

type MaybePromise<T> = T | Promise<T>;

/** Trusted peer identities (trust on first use, or verified via safety numbers). */
export interface IdentityStore {
  getLocalIdentity(): MaybePromise<IdentityKeyPair>;
  getTrustedIdentity(address: Address): MaybePromise<Ed25519PublicKey | undefined>;
  saveTrustedIdentity(address: Address, key: Ed25519PublicKey): MaybePromise<void>;
}

/** The device's own private prekeys. */
export interface PreKeyStore {
  getSignedPreKey(id: number): MaybePromise<SignedPreKeyRecord | undefined>;
  getKemPreKey(id: number): MaybePromise<KemPreKeyRecord | undefined>;
  getOneTimePreKey(id: number): MaybePromise<OneTimePreKeyRecord | undefined>;
  /** Deletes a used one-time X25519 prekey (and wipes it). */
  removeOneTimePreKey(id: number): MaybePromise<void>;
  /** Deletes a used one-time ML-KEM prekey; last-resort keys are never removed here. */
  removeKemPreKey(id: number): MaybePromise<void>;
}

/** Serialized sessions by peer address. */
export interface SessionStore {
  load(address: Address): MaybePromise<Uint8Array | undefined>;
  save(address: Address, state: Uint8Array): MaybePromise<void>;
  remove(address: Address): MaybePromise<void>;
}

/**
 * Ids of initial messages already answered (base key ‖ initiator identity). A replayed
 * initial message would otherwise start a second session from a last-resort prekey.
 */
export interface SeenStore {
  has(id: string): MaybePromise<boolean>;
  add(id: string, atMs: number): MaybePromise<void>;
}

const addressKey = (a: Address): string => `${a.deviceId}:${a.userId}`;

/** In-memory {@link IdentityStore}. */
export class MemoryIdentityStore implements IdentityStore {
  private readonly trusted = new Map<string, Ed25519PublicKey>();
  constructor(private readonly local: IdentityKeyPair) {}
  getLocalIdentity(): IdentityKeyPair {
    return this.local;
  }
  getTrustedIdentity(address: Address): Ed25519PublicKey | undefined {
    return this.trusted.get(addressKey(address));
  }
  saveTrustedIdentity(address: Address, key: Ed25519PublicKey): void {
    this.trusted.set(addressKey(address), key.slice() as Ed25519PublicKey);
  }
}

/** In-memory {@link PreKeyStore}. */
export class MemoryPreKeyStore implements PreKeyStore {
  readonly signed = new Map<number, SignedPreKeyRecord>();
  readonly kem = new Map<number, KemPreKeyRecord>();
  readonly oneTime = new Map<number, OneTimePreKeyRecord>();
  addSignedPreKey(r: SignedPreKeyRecord): void {
    this.signed.set(r.id, r);
  }
  addKemPreKey(r: KemPreKeyRecord): void {
    this.kem.set(r.id, r);
  }
  addOneTimePreKey(r: OneTimePreKeyRecord): void {
    this.oneTime.set(r.id, r);
  }
  getSignedPreKey(id: number): SignedPreKeyRecord | undefined {
    return this.signed.get(id);
  }
  getKemPreKey(id: number): KemPreKeyRecord | undefined {
    return this.kem.get(id);
  }
  getOneTimePreKey(id: number): OneTimePreKeyRecord | undefined {
    return this.oneTime.get(id);
  }
  removeOneTimePreKey(id: number): void {
    this.oneTime.get(id)?.keyPair.secretKey.fill(0);
    this.oneTime.delete(id);
  }
  removeKemPreKey(id: number): void {
    const r = this.kem.get(id);
    if (!r || r.kind !== 'one-time') return;
    r.keyPair.secretKey.fill(0);
    this.kem.delete(id);
  }
}

/** In-memory {@link SessionStore} (holds serialized bytes, as a persistent one would). */
export class MemorySessionStore implements SessionStore {
  private readonly sessions = new Map<string, Uint8Array>();
  load(address: Address): Uint8Array | undefined {
    return this.sessions.get(addressKey(address))?.slice();
  }
  save(address: Address, state: Uint8Array): void {
    this.sessions.set(addressKey(address), state.slice());
  }
  remove(address: Address): void {
    this.sessions.get(addressKey(address))?.fill(0);
    this.sessions.delete(addressKey(address));
  }
}

/**
 * In-memory {@link SeenStore} bounded to `capacity` ids (oldest forgotten first).
 * Default 100 000 ids ≈ 10 MB: far more initial messages than a device receives
 * while its prekeys live.
 */
export class MemorySeenStore implements SeenStore {
  private readonly seen = new Map<string, number>();
  constructor(private readonly capacity = 100_000) {}
  has(id: string): boolean {
    return this.seen.has(id);
  }
  add(id: string, atMs: number): void {
    this.seen.set(id, atMs);
    while (this.seen.size > this.capacity) {
      const first = this.seen.keys().next();
      if (first.done) break;
      this.seen.delete(first.value);
    }
  }
}

/** Seen-set id of an initial message. */
export function preKeyMessageId(info: PreKeyMessageInfo): string {
  return toHex(info.baseKey) + toHex(info.initiatorIdentity.signingKey);
}

/**
 * Handles an initial message end to end with stores: replay check, trust check (trust
 * on first use; a changed identity is `UNTRUSTED_IDENTITY`), key lookup, handshake and
 * first decryption, then (only on success) consumption of one-time keys, recording in
 * the seen-set and saving the session.
 * @throws ProtocolError `DUPLICATE_MESSAGE`, `UNTRUSTED_IDENTITY`, `UNKNOWN_PREKEY`,
 * `INVALID_SIGNATURE`, `INVALID_MESSAGE`.
 */
export async function respondWithStores(
  ctx: ProtocolContext,
  stores: {
    readonly identity: IdentityStore;
    readonly preKeys: PreKeyStore;
    readonly seen: SeenStore;
    readonly sessions?: SessionStore;
  },
  envelope: Uint8Array,
  meta: MessageMeta,
): Promise<{ session: Session; plaintext: Uint8Array }> {
  const info = parsePreKeyMessage(envelope);
  const id = preKeyMessageId(info);
  if (await stores.seen.has(id)) {
    throw new ProtocolError('DUPLICATE_MESSAGE', 'initial message already received');
  }
  const trusted = await stores.identity.getTrustedIdentity(meta.sender);
  if (trusted && !constantTimeEqual(trusted, info.initiatorIdentity.signingKey)) {
    throw new ProtocolError('UNTRUSTED_IDENTITY', 'sender identity key changed');
  }
  const signedPreKey = await stores.preKeys.getSignedPreKey(info.signedPreKeyId);
  const kemPreKey = await stores.preKeys.getKemPreKey(info.kemPreKeyId);
  const oneTimePreKey =
    info.oneTimePreKeyId === undefined
      ? undefined
      : await stores.preKeys.getOneTimePreKey(info.oneTimePreKeyId);
  if (!signedPreKey || !kemPreKey || (info.oneTimePreKeyId !== undefined && !oneTimePreKey)) {
    throw new ProtocolError('UNKNOWN_PREKEY', 'initial message names a prekey we do not hold');
  }
  const identity = await stores.identity.getLocalIdentity();
  const { session, plaintext } = respondToPreKeyMessage(
    ctx,
    { identity, keys: { signedPreKey, kemPreKey, oneTimePreKey } },
    envelope,
    meta,
  );
  if (info.oneTimePreKeyId !== undefined)
    await stores.preKeys.removeOneTimePreKey(info.oneTimePreKeyId);
  if (kemPreKey.kind === 'one-time') await stores.preKeys.removeKemPreKey(kemPreKey.id);
  await stores.seen.add(id, ctx.now());
  if (!trusted)
    await stores.identity.saveTrustedIdentity(meta.sender, info.initiatorIdentity.signingKey);
  if (stores.sessions && sameAddress(meta.sender, session.remoteAddress)) {
    await stores.sessions.save(meta.sender, serializeSession(session));
  }
  return { session, plaintext };
}

/** Loads a stored session, or undefined. */
export async function loadSession(
  store: SessionStore,
  address: Address,
): Promise<Session | undefined> {
  const bytes = await store.load(address);
  return bytes ? deserializeSession(bytes) : undefined;
}
