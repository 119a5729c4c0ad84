/**
 * Group messages under sender keys (§18.4-17.5): one AES-256-GCM key per message from
 * the sender's chain, the body padded like a pairwise envelope, and an Ed25519
 * signature by the chain's signing key over the whole message, because every member
 * holds the chain key and could otherwise forge messages in another's name.
 *
 * Decryption runs on a copy: it builds a new `IncomingSenderChains` and returns it only
 * after the signature, the AEAD tag and the padding have checked; on any error the
 * caller's state is unchanged and still usable.
 *
 * Owns: the group message layout. Knows nothing of membership or transport.
 */
import {
  AEAD_TAG_BYTES,
  ED25519_SIGNATURE_BYTES,
  asAeadKey,
  asEd25519Signature,
  concatBytes,
  utf8Encode,
  zeroize,
  type CryptoProvider,
} from '@parley/crypto';
import { NONCE_BYTES } from '../constants.js';
import { ByteReader, ByteWriter, checkAddress, sameAddress, type Address } from '../encoding.js';
import { invalidMessage, ProtocolError } from '../errors.js';
import { kdfChain } from '../kdf.js';
import {
  BODY_HEADER_BYTES,
  decodeBody,
  encodeBody,
  padBody,
  paddedEnvelopeBytes,
} from '../padding.js';
import {
  GROUP_ID_BYTES,
  GROUP_LABEL,
  GROUP_TYPE_MESSAGE,
  GROUP_VERSION,
  MAX_GROUP_SKIP,
  MAX_GROUP_SKIPPED_KEYS,
} from './constants.js';
import {
  IncomingSenderChains,
  MAX_ITERATION,
  OutgoingSenderChain,
  sameBytes,
  type ReceiverChain,
} from './sender-chain.js';

const SIGNATURE_LABEL = utf8Encode(GROUP_LABEL.messageSignature);
/** type ‖ version ‖ groupId ‖ chainId ‖ iteration ‖ nonce. */
export const GROUP_HEADER_BYTES = 2 + GROUP_ID_BYTES + 4 + 4 + NONCE_BYTES;
/** Everything in a group message but the framed body. */
export const GROUP_OVERHEAD_BYTES = GROUP_HEADER_BYTES + AEAD_TAG_BYTES + ED25519_SIGNATURE_BYTES;

/** Routing fields of a group message, readable without any key. */
export interface GroupMessageInfo {
  readonly groupId: Uint8Array;
  readonly chainId: number;
  readonly iteration: number;
}

/** Size of the group message `groupEncrypt` makes for a plaintext of `length` bytes (no compression). */
export function groupMessageBytes(length: number): number {
  return paddedEnvelopeBytes(GROUP_OVERHEAD_BYTES, BODY_HEADER_BYTES + length);
}

function addressBytes(a: Address): Uint8Array {
  const id = checkAddress('sender', a);
  const w = new ByteWriter(5 + id.length);
  w.u8(id.length).bytes(id).u32(a.deviceId);
  return w.finish();
}

/**
 * Encrypts one group message from `sender` (the caller's own address, which receivers
 * pass as the message's sender). Returns the advanced chain: store it before sending,
 * so an iteration is never used twice.
 */
export function groupEncrypt(
  crypto: CryptoProvider,
  chain: OutgoingSenderChain,
  sender: Address,
  plaintext: Uint8Array,
): { chain: OutgoingSenderChain; message: Uint8Array } {
  if (!(chain instanceof OutgoingSenderChain)) {
    throw new ProtocolError('INVALID_ARGUMENT', 'chain: expected an OutgoingSenderChain');
  }
  if (chain.iteration >= MAX_ITERATION) {
    throw new ProtocolError('INVALID_ARGUMENT', 'chain: exhausted, rotate it');
  }
  const addr = addressBytes(sender);
  const framed = encodeBody(plaintext);
  const total = paddedEnvelopeBytes(GROUP_OVERHEAD_BYTES, framed.length);
  const padded = padBody(framed, total - GROUP_OVERHEAD_BYTES);
  // One chain step (§18.2) is the pairwise ratchet's KDF_CK.
  const step = kdfChain(crypto, chain.chainKey);
  // A random nonce although the key is used once: a sender restored from an old backup
  // reuses an iteration's key, and must still never reuse a (key, nonce) pair.
  const nonce = crypto.randomBytes(NONCE_BYTES);
  const out = new Uint8Array(total);
  const w = new ByteWriter(GROUP_HEADER_BYTES);
  w.u8(GROUP_TYPE_MESSAGE)
    .u8(GROUP_VERSION)
    .bytes(chain.groupId)
    .u32(chain.chainId)
    .u32(chain.iteration)
    .bytes(nonce);
  const header = w.finish();
  out.set(header);
  const sealed = crypto.aes256gcm.encrypt(
    asAeadKey(step.messageKey),
    nonce,
    padded,
    concatBytes(header, addr),
  );
  out.set(sealed, GROUP_HEADER_BYTES);
  // Used once and ours alone: the message key and the plaintext copies go now.
  zeroize(step.messageKey, padded, framed);
  const signedEnd = GROUP_HEADER_BYTES + sealed.length;
  const signature = crypto.ed25519.sign(
    chain.signingSecret,
    concatBytes(SIGNATURE_LABEL, addr, out.subarray(0, signedEnd)),
  );
  out.set(signature, signedEnd);
  const next = new OutgoingSenderChain(
    chain.groupId,
    chain.chainId,
    chain.iteration + 1,
    step.chainKey,
    chain.signingSecret,
    chain.signingKey,
    chain.createdAtMs,
    chain.createdAtEpoch,
  );
  return { chain: next, message: out };
}

/** Reads the routing fields; malformed input is `INVALID_MESSAGE`. */
export function groupMessageInfo(message: Uint8Array): GroupMessageInfo {
  if (message.length < GROUP_OVERHEAD_BYTES + BODY_HEADER_BYTES) throw invalidMessage();
  const r = new ByteReader(message);
  if (r.u8() !== GROUP_TYPE_MESSAGE) throw invalidMessage();
  if (r.u8() !== GROUP_VERSION) {
    throw new ProtocolError('UNSUPPORTED_VERSION', 'group message: unsupported version');
  }
  return { groupId: r.bytes(GROUP_ID_BYTES), chainId: r.u32(), iteration: r.u32() };
}

/**
 * Decrypts a group message that the relay says `sender` sent, with what we hold for
 * that sender. Errors: `UNKNOWN_SENDER_CHAIN` (we lack the chain: ask the sender for
 * its distribution; the message may be kept and retried), `DUPLICATE_MESSAGE` (already
 * read, or its key was dropped), `TOO_MANY_SKIPPED`, `INVALID_MESSAGE` (forged, altered,
 * or of another group), `UNSUPPORTED_VERSION`. On an error `held` is unchanged; on
 * success the one message key it held for this message, if any, is wiped (the
 * returned state no longer holds it), so store the returned state.
 */
export function groupDecrypt(
  crypto: CryptoProvider,
  held: IncomingSenderChains,
  sender: Address,
  message: Uint8Array,
): { state: IncomingSenderChains; plaintext: Uint8Array } {
  if (!(held instanceof IncomingSenderChains)) {
    throw new ProtocolError('INVALID_ARGUMENT', 'held: expected IncomingSenderChains');
  }
  if (!sameAddress(held.sender, sender)) {
    throw new ProtocolError('INVALID_ARGUMENT', 'held: state of another sender');
  }
  const addr = addressBytes(sender);
  const info = groupMessageInfo(message);
  if (!sameBytes(info.groupId, held.groupId) || info.iteration >= MAX_ITERATION) {
    throw invalidMessage();
  }
  const index = held.chains.findIndex((c) => c.chainId === info.chainId);
  const chain = held.chains[index];
  if (!chain) {
    throw new ProtocolError('UNKNOWN_SENDER_CHAIN', 'group message: sender chain not held');
  }
  const signedEnd = message.length - ED25519_SIGNATURE_BYTES;
  const signature = message.subarray(signedEnd);
  if (
    !crypto.ed25519.verify(
      chain.signingKey,
      concatBytes(SIGNATURE_LABEL, addr, message.subarray(0, signedEnd)),
      asEd25519Signature(signature),
    )
  ) {
    throw invalidMessage();
  }
  const { key, fresh, next } = keyFor(crypto, chain, info.iteration);
  let plaintext: Uint8Array;
  try {
    const padded = crypto.aes256gcm.decrypt(
      asAeadKey(key),
      message.subarray(GROUP_HEADER_BYTES - NONCE_BYTES, GROUP_HEADER_BYTES),
      message.subarray(GROUP_HEADER_BYTES, signedEnd),
      concatBytes(message.subarray(0, GROUP_HEADER_BYTES), addr),
    );
    try {
      plaintext = decodeBody(padded);
    } finally {
      zeroize(padded);
    }
  } catch {
    // Nothing derived here survives a refusal; a held skipped key stays, as `held` does.
    zeroize(...fresh);
    if (info.iteration >= chain.iteration) zeroize(key);
    throw invalidMessage();
  }
  // Read: its key (derived, or the skipped one the new state no longer holds) goes.
  zeroize(key);
  const chains = held.chains.slice();
  chains[index] = next;
  return { state: new IncomingSenderChains(held.groupId, held.sender, chains), plaintext };
}

/**
 * The message key of `iteration` and the chain as it is once that message is read (a
 * new object). `fresh` lists the buffers derived here that `next` keeps (new chain and
 * skipped keys), so a caller that refuses the message can wipe them; intermediate chain
 * keys and skipped keys dropped at once are wiped here.
 */
function keyFor(
  crypto: CryptoProvider,
  chain: ReceiverChain,
  iteration: number,
): { key: Uint8Array; fresh: Uint8Array[]; next: ReceiverChain } {
  if (iteration < chain.iteration) {
    const key = chain.skipped.get(iteration);
    if (!key) throw new ProtocolError('DUPLICATE_MESSAGE', 'group message: already read');
    const skipped = new Map(chain.skipped);
    skipped.delete(iteration);
    return { key, fresh: [], next: { ...chain, skipped } };
  }
  if (iteration - chain.iteration > MAX_GROUP_SKIP) {
    throw new ProtocolError(
      'TOO_MANY_SKIPPED',
      `group message: more than ${MAX_GROUP_SKIP} skipped`,
    );
  }
  const fresh: Uint8Array[] = [];
  let chainKey = chain.chainKey;
  let skipped = chain.skipped;
  if (iteration > chain.iteration) {
    const grown = new Map(chain.skipped);
    for (let n = chain.iteration; n < iteration; n++) {
      const s = kdfChain(crypto, chainKey);
      if (chainKey !== chain.chainKey) zeroize(chainKey);
      grown.set(n, s.messageKey);
      fresh.push(s.messageKey);
      chainKey = s.chainKey;
    }
    // Oldest first: a Map iterates in insertion order.
    for (const [n, k] of grown) {
      if (grown.size <= MAX_GROUP_SKIPPED_KEYS) break;
      grown.delete(n);
      // Held keys belong to the caller's state; one derived in this loop is ours.
      if (n >= chain.iteration) zeroize(k);
    }
    skipped = grown;
  }
  const s = kdfChain(crypto, chainKey);
  if (chainKey !== chain.chainKey) zeroize(chainKey);
  fresh.push(s.chainKey);
  return {
    key: s.messageKey,
    fresh,
    next: { ...chain, iteration: iteration + 1, chainKey: s.chainKey, skipped },
  };
}
