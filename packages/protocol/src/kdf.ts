/**
 * The ratchet's key derivation functions (Signal Double Ratchet §5.2 with header
 * encryption, §4.2): root KDF and chain KDF. Labels are in constants.ts.
 *
 * Owns: how keys are derived from keys. Knows nothing of headers or state.
 */
import { concatBytes, utf8Encode, zeroize, type CryptoProvider } from '@parley/crypto';
import { LABEL } from './constants.js';

const INFO_RATCHET = utf8Encode(LABEL.ratchet);
const INFO_RATCHET_KEM = utf8Encode(LABEL.ratchetKem);
const MESSAGE_KEY_INPUT = Uint8Array.of(0x01);
const CHAIN_KEY_INPUT = Uint8Array.of(0x02);

/** Output of the root KDF: next root key, a chain key and the next header key. */
export interface RootStep {
  readonly rootKey: Uint8Array;
  readonly chainKey: Uint8Array;
  readonly nextHeaderKey: Uint8Array;
}

/**
 * KDF_RK_HE: HKDF-SHA256(salt = root key, ikm = DH output [‖ KEM shared secret],
 * info = "Parley v1 ratchet" or "Parley v1 ratchet+kem", 96 bytes) split 32/32/32.
 * The KEM secret, when present, is the post-quantum ratchet's contribution: the new
 * root key is unpredictable to anyone who lacks either the DH or the KEM secret.
 * Wipes `dhOut` and `kemSecret`.
 */
export function kdfRoot(
  crypto: CryptoProvider,
  rootKey: Uint8Array,
  dhOut: Uint8Array,
  kemSecret?: Uint8Array,
): RootStep {
  const ikm = kemSecret ? concatBytes(dhOut, kemSecret) : dhOut;
  const out = crypto.hkdfSha256(ikm, rootKey, kemSecret ? INFO_RATCHET_KEM : INFO_RATCHET, 96);
  zeroize(ikm, dhOut, kemSecret);
  const step = {
    rootKey: out.slice(0, 32),
    chainKey: out.slice(32, 64),
    nextHeaderKey: out.slice(64, 96),
  };
  zeroize(out);
  return step;
}

/**
 * KDF_CK: message key = HMAC-SHA256(ck, 0x01), next chain key = HMAC-SHA256(ck, 0x02)
 * (Signal §5.2). The message key is the AES-256-GCM key of exactly one message.
 */
export function kdfChain(
  crypto: CryptoProvider,
  chainKey: Uint8Array,
): { messageKey: Uint8Array; chainKey: Uint8Array } {
  return {
    messageKey: crypto.hmacSha256(chainKey, MESSAGE_KEY_INPUT),
    chainKey: crypto.hmacSha256(chainKey, CHAIN_KEY_INPUT),
  };
}
