/**
 * The bytes a device signs to answer a server challenge (open mode, M6). Both the
 * client (signer) and the relay (verifier) build them here, so they cannot drift.
 *
 *   "parley/wire/auth/v1" (19 ASCII bytes, domain separation)
 *   u8   purpose            1 = register, 2 = login
 *   [32] nonce              from the challenge (one-time)
 *   u64  challengeTimestamp from the challenge
 *   u8+  serverId           from the challenge (binds the answer to this server)
 *   u8+  name
 *   u32  deviceId
 *   u64  timestamp          the register/login frame's own timestamp
 *   u8   1 + [32] identityKey for register, u8 0 for login
 *
 * Binding nonce, server id, purpose and identity key means a signature cannot be
 * replayed to another server, another challenge, or turned from login into register.
 */
import { WireError } from './errors.js';
import { CHALLENGE_NONCE_BYTES, IDENTITY_KEY_BYTES, MAX_SERVER_ID_BYTES } from './limits.js';
import { ByteWriter, t, writeStruct } from './schema.js';

const AUTH_LABEL = new TextEncoder().encode('parley/wire/auth/v1');

const authShape = {
  nonce: t.bytes(CHALLENGE_NONCE_BYTES),
  challengeTimestamp: t.u64(),
  serverId: t.utf8(MAX_SERVER_ID_BYTES),
  name: t.name(),
  deviceId: t.u32(),
  timestamp: t.u64(),
  identityKey: t.optional(t.bytes(IDENTITY_KEY_BYTES)),
} as const;

/** Inputs of `authSignedData`. */
export interface AuthSignedDataInput {
  readonly purpose: 'register' | 'login';
  /** The challenge frame's fields. */
  readonly challenge: {
    readonly nonce: Uint8Array;
    readonly timestamp: number;
    readonly serverId: string;
  };
  readonly name: string;
  readonly deviceId: number;
  /** The register/login frame's timestamp. */
  readonly timestamp: number;
  /** Required for register (the key being registered), absent for login. */
  readonly identityKey?: Uint8Array;
}

/**
 * The message to sign with the device's Ed25519 identity key.
 *
 * @throws WireError `INVALID_ARGUMENT` for a malformed input (names the field).
 * @example
 * ```ts
 * const msg = authSignedData({ purpose: 'login', challenge, name: 'alice', deviceId: 1, timestamp: now });
 * const signature = crypto.ed25519.sign(identitySecret, msg);
 * ```
 */
export function authSignedData(input: AuthSignedDataInput): Uint8Array {
  if (input.purpose !== 'register' && input.purpose !== 'login') {
    throw new WireError('INVALID_ARGUMENT', 'purpose: expected register or login');
  }
  if ((input.purpose === 'register') !== (input.identityKey !== undefined)) {
    throw new WireError('INVALID_ARGUMENT', 'identityKey: required for register, absent for login');
  }
  const w = new ByteWriter('auth');
  w.raw(AUTH_LABEL);
  w.u8(input.purpose === 'register' ? 1 : 2);
  writeStruct(w, authShape, {
    nonce: input.challenge.nonce,
    challengeTimestamp: input.challenge.timestamp,
    serverId: input.challenge.serverId,
    name: input.name,
    deviceId: input.deviceId,
    timestamp: input.timestamp,
    identityKey: input.identityKey,
  });
  return w.finish();
}
