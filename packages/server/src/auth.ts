/**
 * Open-mode device authentication (M6): a device proves possession of its Ed25519
 * identity key by signing a fresh server challenge. The signed bytes bind the purpose,
 * the server's one-time nonce, the challenge time, the server identity, the claimed
 * name and device, the key (on registration) and the client's own timestamp, so a
 * signature is useless on another server, for another name, or a second time.
 * Reconnects within a signed session may skip the signature with a single-use session
 * token instead (`session-tokens.ts`).
 */
import { constantTimeEqual, type CryptoProvider } from '@parley/crypto';
import { authSignedData, type ChallengeFrame } from '@parley/wire';

/** A pending challenge of one connection. */
export interface IssuedChallenge {
  readonly frame: ChallengeFrame;
  used: boolean;
}

/** Makes a challenge with a fresh random nonce. */
export function newChallenge(
  crypto: CryptoProvider,
  serverId: string,
  version: number,
  now: number,
): IssuedChallenge {
  return {
    frame: {
      type: 'challenge',
      version,
      nonce: crypto.randomBytes(32),
      timestamp: now,
      serverId,
    },
    used: false,
  };
}

/**
 * Verifies a register/login signature against a challenge. Each challenge answers one
 * attempt only (marked used whatever the outcome), so a failed guess cannot be retried
 * against the same nonce.
 */
export function verifyAuthSignature(
  crypto: CryptoProvider,
  challenge: IssuedChallenge,
  input: {
    readonly purpose: 'register' | 'login';
    readonly name: string;
    readonly deviceId: number;
    readonly identityKey: Uint8Array;
    readonly timestamp: number;
    readonly signature: Uint8Array;
  },
): boolean {
  if (challenge.used) return false;
  challenge.used = true;
  const data = authSignedData({
    purpose: input.purpose,
    challenge: challenge.frame,
    name: input.name,
    deviceId: input.deviceId,
    timestamp: input.timestamp,
    ...(input.purpose === 'register' ? { identityKey: input.identityKey } : {}),
  });
  try {
    return crypto.ed25519.verify(
      input.identityKey as Parameters<CryptoProvider['ed25519']['verify']>[0],
      data,
      input.signature as Parameters<CryptoProvider['ed25519']['verify']>[2],
    );
  } catch {
    return false;
  }
}

/** Compares two identity keys without leaking where they differ. */
export const sameKey = (a: Uint8Array, b: Uint8Array): boolean => constantTimeEqual(a, b);
