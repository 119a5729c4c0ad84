/**
 * Open-mode session tokens (M6): a device that lost its connection may reconnect with
 * the single-use token of its last `welcome` instead of signing a new challenge.
 *
 * Design (docs/operations.md "Open mode"):
 * - Only SHA-256 of each token is held (domain-separated), never the token: a memory
 *   dump or a heap snapshot of the relay yields nothing a client could present.
 * - A token is bound to the device address it was issued to; it is looked up by the
 *   address the client claims and compared in constant time against that device's few
 *   hashes, so a token for another name fails exactly like a wrong one.
 * - Single use: redeeming removes it; the new `welcome` carries a fresh token.
 * - Its expiry is the session's: `sessionTtlMs` after the last *signed* login. A resume
 *   inherits that expiry instead of extending it, so tokens never stretch a session past
 *   its TTL without a signature; then the relay demands a fresh signed challenge.
 * - In memory only and bounded (oldest evicted): a relay restart forgets every token and
 *   clients fall back to signing, which is always possible.
 * - mtls mode issues no tokens: the certificate authenticates every handshake.
 */
import { constantTimeEqual, utf8Encode, zeroize, type CryptoProvider } from '@parley/crypto';

/**
 * Session tokens are 256 random bits: unguessable however many connections try, and
 * well inside the wire's `MAX_SESSION_TOKEN_BYTES`.
 */
export const SESSION_TOKEN_BYTES = 32;

/**
 * Tokens held overall. Each costs about 460 bytes of heap (measured with 100 000 tokens:
 * hash object, handle, device key string, map and set entries), so the bound is about
 * 46 MB. Live tokens are roughly the devices that signed in within one session TTL; ten
 * times the default connection cap (10 000) means eviction only hits under abuse or far
 * more devices than one relay serves, and an evicted device merely signs its next login.
 */
export const MAX_SESSION_TOKENS = 100_000;

/**
 * Tokens held per device. Each connection holds one current token (a re-authentication
 * replaces it), and a device has at most 4 connections by default; 8 leaves room for
 * connections that died without the relay noticing yet. The oldest goes first.
 */
export const MAX_SESSION_TOKENS_PER_DEVICE = 8;

/** Domain separation of the stored hash. */
const TOKEN_HASH_LABEL = utf8Encode('parley/relay/session-token/v1');

/** A device address (name plus device id). */
export interface TokenAddress {
  readonly name: string;
  readonly deviceId: number;
}

/** Handle of an issued token, so a connection can replace its own token. Holds no secret. */
export interface IssuedToken {
  readonly key: string;
  readonly hash: Uint8Array;
  /** ms since the epoch; the end of the signed session the token belongs to. */
  readonly expiresAt: number;
  live: boolean;
}

/** Why a redemption failed (audit only; the client always gets the same `auth_failed`). */
export type RedeemFailure = 'unknown-token' | 'expired-token';

/** Outcome of {@link SessionTokenRegistry.redeem}. */
export type RedeemResult =
  | { readonly ok: true; readonly expiresAt: number }
  | { readonly ok: false; readonly reason: RedeemFailure };

/** Options of {@link SessionTokenRegistry}; clock and randomness are parameters. */
export interface SessionTokenRegistryOptions {
  readonly crypto: CryptoProvider;
  readonly now: () => number;
  readonly maxTokens?: number;
  readonly maxTokensPerDevice?: number;
}

const keyOf = (a: TokenAddress): string => `${a.deviceId}:${a.name}`;

/**
 * The relay's table of live session tokens (hashes only).
 *
 * @example
 * ```ts
 * const tokens = new SessionTokenRegistry({ crypto, now: Date.now });
 * const { token } = tokens.issue({ name: 'alice', deviceId: 1 }, Date.now() + 3_600_000);
 * tokens.redeem({ name: 'alice', deviceId: 1 }, token); // { ok: true, expiresAt }
 * tokens.redeem({ name: 'alice', deviceId: 1 }, token); // { ok: false, reason: 'unknown-token' }
 * ```
 */
export class SessionTokenRegistry {
  readonly #crypto: CryptoProvider;
  readonly #now: () => number;
  readonly #max: number;
  readonly #maxPerDevice: number;
  readonly #byDevice = new Map<string, IssuedToken[]>();
  /** Every live token, oldest issue first (Set keeps insertion order). */
  readonly #order = new Set<IssuedToken>();

  constructor(options: SessionTokenRegistryOptions) {
    this.#crypto = options.crypto;
    this.#now = options.now;
    this.#max = options.maxTokens ?? MAX_SESSION_TOKENS;
    this.#maxPerDevice = options.maxTokensPerDevice ?? MAX_SESSION_TOKENS_PER_DEVICE;
  }

  /** Live tokens held (expired ones count until they are next touched or evicted). */
  get size(): number {
    return this.#order.size;
  }

  /**
   * Issues a fresh token for `address`, valid until `expiresAt`. `replacing` (the
   * connection's previous token, if any) is revoked first. The caller sends the token
   * to the client once and keeps only the handle.
   */
  issue(
    address: TokenAddress,
    expiresAt: number,
    replacing?: IssuedToken,
  ): { readonly token: Uint8Array; readonly handle: IssuedToken } {
    if (replacing) this.revoke(replacing);
    const key = keyOf(address);
    const list = this.#prune(key);
    while (list.length >= this.#maxPerDevice) this.#remove(list[0] as IssuedToken);
    while (this.#order.size >= this.#max) {
      const oldest = this.#order.values().next().value as IssuedToken;
      this.#remove(oldest);
    }
    const token = this.#crypto.randomBytes(SESSION_TOKEN_BYTES);
    const handle: IssuedToken = { key, hash: this.#hash(token), expiresAt, live: true };
    const current = this.#byDevice.get(key);
    if (current) current.push(handle);
    else this.#byDevice.set(key, [handle]);
    this.#order.add(handle);
    return { token, handle };
  }

  /**
   * Redeems `token` presented for `address`: on success the token is gone (single use)
   * and the result carries the expiry of the signed session it belongs to. Every stored
   * hash of the device is compared, in constant time, whether or not one matched.
   */
  redeem(address: TokenAddress, token: Uint8Array): RedeemResult {
    const key = keyOf(address);
    const presented = this.#hash(token);
    const list = this.#byDevice.get(key) ?? [];
    let match: IssuedToken | undefined;
    // A device without tokens still costs one comparison, so the work done does not
    // reveal whether a name has a live session.
    if (list.length === 0) constantTimeEqual(presented, new Uint8Array(presented.length));
    for (const entry of list) {
      if (constantTimeEqual(entry.hash, presented)) match = entry;
    }
    this.#prune(key);
    if (!match) return { ok: false, reason: 'unknown-token' };
    this.#remove(match);
    if (match.expiresAt <= this.#now()) return { ok: false, reason: 'expired-token' };
    return { ok: true, expiresAt: match.expiresAt };
  }

  /** Revokes one token (no-op if already redeemed, evicted or revoked). */
  revoke(handle: IssuedToken): void {
    if (handle.live) this.#remove(handle);
  }

  /** Drops expired tokens of one device; returns its (possibly new) live list. */
  #prune(key: string): IssuedToken[] {
    const list = this.#byDevice.get(key);
    if (!list) return [];
    const now = this.#now();
    for (const entry of [...list]) if (entry.expiresAt <= now) this.#remove(entry);
    return this.#byDevice.get(key) ?? [];
  }

  #remove(handle: IssuedToken): void {
    if (!handle.live) return;
    handle.live = false;
    this.#order.delete(handle);
    const list = this.#byDevice.get(handle.key);
    if (!list) return;
    const i = list.indexOf(handle);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.#byDevice.delete(handle.key);
  }

  #hash(token: Uint8Array): Uint8Array {
    const data = new Uint8Array(TOKEN_HASH_LABEL.length + token.length);
    data.set(TOKEN_HASH_LABEL);
    data.set(token, TOKEN_HASH_LABEL.length);
    const hash = this.#crypto.sha256(data);
    zeroize(data);
    return hash;
  }
}
