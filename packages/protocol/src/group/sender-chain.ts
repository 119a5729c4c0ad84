/**
 * Sender-key chains: the state a group member keeps to send (one outgoing chain per
 * group) and to receive (the chains each other member distributed to it), the chain
 * KDF, and the sender-key distribution that carries a chain to the other members.
 *
 * Outgoing and incoming state are different classes with different fields, so one can
 * never be passed where the other belongs. Both are immutable: every step returns a
 * new object. Both hold secrets and print only public parts.
 *
 * Owns: chain state, its KDF and its bytes. Knows nothing of message layout
 * (group-cipher.ts) or membership (membership.ts).
 */
import {
  asEd25519PublicKey,
  asEd25519SecretKey,
  toHex,
  zeroize,
  type CryptoProvider,
  type Ed25519PublicKey,
  type Ed25519SecretKey,
} from '@parley/crypto';
import {
  ByteReader,
  ByteWriter,
  checkAddress,
  readAddress,
  writeAddress,
  type Address,
} from '../encoding.js';
import { ProtocolError } from '../errors.js';
import {
  GROUP_ID_BYTES,
  GROUP_TYPE_DISTRIBUTION,
  GROUP_VERSION,
  MAX_GROUP_SKIPPED_KEYS,
  MAX_STORED_SENDER_CHAINS,
} from './constants.js';

const INSPECT = Symbol.for('nodejs.util.inspect.custom');

/** Largest iteration a chain may reach; a chain this long must be rotated. */
export const MAX_ITERATION = 0xffff_ffff;
/** Encoded size of a sender-key distribution. */
export const DISTRIBUTION_BYTES = 2 + GROUP_ID_BYTES + 4 + 4 + 32 + 32;

export function checkGroupId(arg: string, groupId: Uint8Array): void {
  if (!(groupId instanceof Uint8Array) || groupId.length !== GROUP_ID_BYTES) {
    throw new ProtocolError('INVALID_ARGUMENT', `${arg}: expected ${GROUP_ID_BYTES} bytes`);
  }
}

/** A member's own sending chain for one group. Never give its secrets to anyone. */
export class OutgoingSenderChain {
  readonly kind = 'outgoing' as const;
  /** @internal */
  constructor(
    readonly groupId: Uint8Array,
    readonly chainId: number,
    /** Iteration of the next message this chain encrypts. */
    readonly iteration: number,
    /** @internal */ readonly chainKey: Uint8Array,
    /** @internal */ readonly signingSecret: Ed25519SecretKey,
    readonly signingKey: Ed25519PublicKey,
    /** The sender's clock when the chain was made (rotation by age). */
    readonly createdAtMs: number,
    /** The membership epoch the chain was made in (rotation on removal). */
    readonly createdAtEpoch: number,
  ) {}

  toString(): string {
    return `OutgoingSenderChain(${toHex(this.groupId)}, ${this.chainId}, ${this.iteration})`;
  }
  toJSON(): { groupId: string; chainId: number; iteration: number } {
    return { groupId: toHex(this.groupId), chainId: this.chainId, iteration: this.iteration };
  }
  [INSPECT](): string {
    return this.toString();
  }
}

/** One sender chain as a receiver holds it. */
export interface ReceiverChain {
  readonly chainId: number;
  /** Iteration of the next message not yet derived. */
  readonly iteration: number;
  readonly chainKey: Uint8Array;
  readonly signingKey: Ed25519PublicKey;
  /** Message keys of skipped iterations, oldest first (insertion order). */
  readonly skipped: ReadonlyMap<number, Uint8Array>;
}

/** What one member holds to read another member's messages in one group. */
export class IncomingSenderChains {
  readonly kind = 'incoming' as const;
  /** @internal */
  constructor(
    readonly groupId: Uint8Array,
    readonly sender: Address,
    /** Newest first, at most `MAX_STORED_SENDER_CHAINS`. */
    /** @internal */ readonly chains: readonly ReceiverChain[],
  ) {}

  /** Chain ids held, newest first. */
  get chainIds(): number[] {
    return this.chains.map((c) => c.chainId);
  }
  toString(): string {
    return `IncomingSenderChains(${toHex(this.groupId)}, ${this.sender.userId}/${this.sender.deviceId}, [${this.chainIds.join(',')}])`;
  }
  toJSON(): { groupId: string; sender: Address; chainIds: number[] } {
    return { groupId: toHex(this.groupId), sender: this.sender, chainIds: this.chainIds };
  }
  [INSPECT](): string {
    return this.toString();
  }
}

/**
 * A new sending chain for `groupId`: draws chain id (4 bytes), chain key (32) and the
 * Ed25519 signing seed (32), in that order.
 */
export function createSenderChain(
  crypto: CryptoProvider,
  groupId: Uint8Array,
  opts: { nowMs: number; epoch: number },
): OutgoingSenderChain {
  checkGroupId('groupId', groupId);
  if (!Number.isSafeInteger(opts.nowMs) || opts.nowMs < 0) {
    throw new ProtocolError('INVALID_ARGUMENT', 'nowMs: expected a non-negative safe integer');
  }
  if (!Number.isInteger(opts.epoch) || opts.epoch < 0 || opts.epoch > 0xffff_ffff) {
    throw new ProtocolError('INVALID_ARGUMENT', 'epoch: expected an integer 0..2^32-1');
  }
  const idBytes = crypto.randomBytes(4);
  const chainId =
    (idBytes[0] as number) * 0x100_0000 +
    (((idBytes[1] as number) << 16) | ((idBytes[2] as number) << 8) | (idBytes[3] as number));
  const chainKey = crypto.randomBytes(32);
  const signing = crypto.ed25519.generateKeyPair();
  return new OutgoingSenderChain(
    groupId.slice(),
    chainId,
    0,
    chainKey,
    signing.secretKey,
    signing.publicKey,
    opts.nowMs,
    opts.epoch,
  );
}

/** The distribution of `chain` at its current iteration (§18.3): give it to each member. */
export function encodeSenderKeyDistribution(chain: OutgoingSenderChain): Uint8Array {
  const w = new ByteWriter(DISTRIBUTION_BYTES);
  w.u8(GROUP_TYPE_DISTRIBUTION).u8(GROUP_VERSION).bytes(chain.groupId);
  w.u32(chain.chainId).u32(chain.iteration).bytes(chain.chainKey).bytes(chain.signingKey);
  return w.finish();
}

/** The parsed fields of a distribution (secret: holds a chain key). */
export interface SenderKeyDistribution {
  readonly groupId: Uint8Array;
  readonly chainId: number;
  readonly iteration: number;
  readonly chainKey: Uint8Array;
  readonly signingKey: Ed25519PublicKey;
}

/** Parses a distribution; malformed bytes are `INVALID_MESSAGE`. */
export function decodeSenderKeyDistribution(bytes: Uint8Array): SenderKeyDistribution {
  const r = new ByteReader(bytes);
  if (r.u8() !== GROUP_TYPE_DISTRIBUTION)
    throw new ProtocolError('INVALID_MESSAGE', 'invalid message');
  if (r.u8() !== GROUP_VERSION) {
    throw new ProtocolError('UNSUPPORTED_VERSION', 'distribution: unsupported version');
  }
  const groupId = r.bytes(GROUP_ID_BYTES);
  const chainId = r.u32();
  const iteration = r.u32();
  const chainKey = r.bytes(32);
  const signingKey = asEd25519PublicKey(r.bytes(32));
  r.end();
  return { groupId, chainId, iteration, chainKey, signingKey };
}

/**
 * Adds a distribution received from `sender` (over the pairwise session with that
 * sender, which authenticates it) to what we hold for that sender and group. `held` is
 * undefined for a sender we hold nothing of yet. A distribution of a chain already held
 * with the same signing key changes nothing (a resend: the held chain is at least as
 * far along, and its skipped keys are kept); one with the same chain id and another
 * signing key is refused (`INVALID_MESSAGE`), leaving `held` as it was.
 */
export function processSenderKeyDistribution(
  held: IncomingSenderChains | undefined,
  sender: Address,
  bytes: Uint8Array,
): IncomingSenderChains {
  checkAddress('sender', sender);
  const d = decodeSenderKeyDistribution(bytes);
  if (held) {
    if (!sameBytes(held.groupId, d.groupId)) {
      throw new ProtocolError(
        'INVALID_ARGUMENT',
        'held: state of another group than the distribution',
      );
    }
    if (held.sender.userId !== sender.userId || held.sender.deviceId !== sender.deviceId) {
      throw new ProtocolError('INVALID_ARGUMENT', 'held: state of another sender');
    }
    const same = held.chains.find((c) => c.chainId === d.chainId);
    if (same) {
      if (!sameBytes(same.signingKey, d.signingKey)) {
        throw new ProtocolError('INVALID_MESSAGE', 'invalid message');
      }
      return held;
    }
  }
  const chain: ReceiverChain = {
    chainId: d.chainId,
    iteration: d.iteration,
    chainKey: d.chainKey,
    signingKey: d.signingKey,
    skipped: new Map(),
  };
  const older = held ? held.chains.slice(0, MAX_STORED_SENDER_CHAINS - 1) : [];
  return new IncomingSenderChains(d.groupId, { userId: sender.userId, deviceId: sender.deviceId }, [
    chain,
    ...older,
  ]);
}

/**
 * Wipes every secret of a sender-chain state (chain keys, skipped message keys, the
 * signing seed) once the caller has replaced or dropped it for good: the object and
 * any state sharing its buffers are unusable afterwards. Saved bytes elsewhere are the
 * caller's to delete.
 */
export function destroySenderChain(state: OutgoingSenderChain | IncomingSenderChains): void {
  if (state instanceof OutgoingSenderChain) {
    zeroize(state.chainKey, state.signingSecret);
    return;
  }
  for (const c of state.chains) {
    zeroize(c.chainKey, ...c.skipped.values());
  }
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const STATE_FORMAT = 1;
const STATE_OUTGOING = 1;
const STATE_INCOMING = 2;

/** Saved-state bytes of an outgoing chain (§18.6). Secret: store encrypted. */
export function serializeOutgoingSenderChain(c: OutgoingSenderChain): Uint8Array {
  const w = new ByteWriter(2 + GROUP_ID_BYTES + 8 + 96 + 12);
  w.u8(STATE_FORMAT).u8(STATE_OUTGOING).bytes(c.groupId).u32(c.chainId).u32(c.iteration);
  w.bytes(c.chainKey).bytes(c.signingSecret).bytes(c.signingKey);
  w.u64(c.createdAtMs).u32(c.createdAtEpoch);
  return w.finish();
}

export function deserializeOutgoingSenderChain(bytes: Uint8Array): OutgoingSenderChain {
  const r = new ByteReader(bytes, 'INVALID_STATE');
  readStateHeader(r, STATE_OUTGOING);
  const c = new OutgoingSenderChain(
    r.bytes(GROUP_ID_BYTES),
    r.u32(),
    r.u32(),
    r.bytes(32),
    asEd25519SecretKey(r.bytes(32)),
    asEd25519PublicKey(r.bytes(32)),
    r.u64(),
    r.u32(),
  );
  r.end();
  return c;
}

/** Saved-state bytes of what we hold for one sender (§18.6). Secret: store encrypted. */
export function serializeIncomingSenderChains(s: IncomingSenderChains): Uint8Array {
  const w = new ByteWriter();
  w.u8(STATE_FORMAT).u8(STATE_INCOMING).bytes(s.groupId);
  writeAddress(w, s.sender);
  w.u8(s.chains.length);
  for (const c of s.chains) {
    w.u32(c.chainId).u32(c.iteration).bytes(c.chainKey).bytes(c.signingKey).u32(c.skipped.size);
    for (const [n, seed] of c.skipped) w.u32(n).bytes(seed);
  }
  return w.finish();
}

export function deserializeIncomingSenderChains(bytes: Uint8Array): IncomingSenderChains {
  const r = new ByteReader(bytes, 'INVALID_STATE');
  readStateHeader(r, STATE_INCOMING);
  const groupId = r.bytes(GROUP_ID_BYTES);
  const sender = readAddress(r);
  const count = r.u8();
  if (count < 1 || count > MAX_STORED_SENDER_CHAINS) invalidState();
  const chains: ReceiverChain[] = [];
  for (let i = 0; i < count; i++) {
    const chainId = r.u32();
    const iteration = r.u32();
    const chainKey = r.bytes(32);
    const signingKey = asEd25519PublicKey(r.bytes(32));
    const n = r.u32();
    if (n > MAX_GROUP_SKIPPED_KEYS) invalidState();
    const skipped = new Map<number, Uint8Array>();
    for (let k = 0; k < n; k++) skipped.set(r.u32(), r.bytes(32));
    chains.push({ chainId, iteration, chainKey, signingKey, skipped });
  }
  r.end();
  return new IncomingSenderChains(groupId, sender, chains);
}

function readStateHeader(r: ByteReader, kind: number): void {
  const format = r.u8();
  if (format !== STATE_FORMAT) {
    throw new ProtocolError('UNSUPPORTED_VERSION', 'group state: unsupported format version');
  }
  if (r.u8() !== kind) invalidState();
}

function invalidState(): never {
  throw new ProtocolError('INVALID_STATE', 'group state: malformed');
}
