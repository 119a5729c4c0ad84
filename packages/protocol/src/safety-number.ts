/**
 * Safety numbers (M30), in the manner of Signal's "numeric fingerprint" v1: each side's
 * fingerprint is SHA-512 iterated `SAFETY_NUMBER_ITERATIONS` times over
 * version ‖ identity key ‖ user id (then ‖ identity key each round); its first 30
 * bytes give 30 digits (six 5-byte chunks, each mod 100000). The safety number is the
 * two 30-digit fingerprints in ascending order, so both sides show the same 60 digits.
 * The QR payload carries both fingerprints so a scan can be checked the same way.
 *
 * Owns: fingerprint computation and comparison. Knows nothing of sessions.
 */
import {
  concatBytes,
  constantTimeEqual,
  utf8Encode,
  type CryptoProvider,
  type Ed25519PublicKey,
} from '@parley/crypto';
import { SAFETY_NUMBER_ITERATIONS } from './constants.js';
import { ProtocolError } from './errors.js';

const FINGERPRINT_VERSION = Uint8Array.of(0, 1);
/** Prefix of a QR payload; the rest is the two 30-digit fingerprints, sorted, joined by ':'. */
export const SAFETY_QR_PREFIX = 'parley-safety:1:';

/** A safety number for one pair of devices' identities. */
export interface SafetyNumber {
  /** 60 decimal digits, identical on both sides. */
  readonly digits: string;
  /** The digits in 12 groups of 5, for display. */
  readonly groups: readonly string[];
  /** String to encode as a QR code. */
  readonly qrPayload: string;
}

function fingerprint(crypto: CryptoProvider, key: Ed25519PublicKey, userId: string): string {
  let h = concatBytes(FINGERPRINT_VERSION, key, utf8Encode(userId));
  for (let i = 0; i < SAFETY_NUMBER_ITERATIONS; i++) h = crypto.sha512(concatBytes(h, key));
  let digits = '';
  for (let c = 0; c < 6; c++) {
    let v = 0;
    for (let j = 0; j < 5; j++) v = v * 256 + (h[c * 5 + j] as number);
    digits += String(v % 100000).padStart(5, '0');
  }
  return digits;
}

/**
 * Computes the safety number of two identities; the argument order does not matter.
 * @example
 * ```ts
 * const sn = safetyNumber(crypto, { userId: 'alice', identityKey: a }, { userId: 'bob', identityKey: b });
 * sn.groups.join(' '); // "12345 67890 …" (12 groups)
 * ```
 */
export function safetyNumber(
  crypto: CryptoProvider,
  local: { readonly userId: string; readonly identityKey: Ed25519PublicKey },
  remote: { readonly userId: string; readonly identityKey: Ed25519PublicKey },
): SafetyNumber {
  const a = fingerprint(crypto, local.identityKey, local.userId);
  const b = fingerprint(crypto, remote.identityKey, remote.userId);
  const [first, second] = a < b ? [a, b] : [b, a];
  const digits = first + second;
  const groups: string[] = [];
  for (let i = 0; i < 60; i += 5) groups.push(digits.slice(i, i + 5));
  return { digits, groups, qrPayload: `${SAFETY_QR_PREFIX}${first}:${second}` };
}

/**
 * True when a scanned QR payload shows the same pair of identities as ours.
 * @throws ProtocolError `INVALID_ARGUMENT` for a payload that is not a Parley safety QR.
 */
export function matchesScannedSafetyNumber(ours: SafetyNumber, scanned: string): boolean {
  if (!/^parley-safety:1:\d{30}:\d{30}$/.test(scanned)) {
    throw new ProtocolError('INVALID_ARGUMENT', 'scanned: not a Parley safety number QR payload');
  }
  return constantTimeEqual(utf8Encode(scanned), utf8Encode(ours.qrPayload));
}
