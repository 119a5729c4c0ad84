/**
 * Builds Parley's published known-answer vectors (parley-v1.json): fixed seeds →
 * identities, Bob's bundle, the initial message and the first ratchet messages in
 * both directions, then the scripted conversations of conversations.ts. `generate.ts`
 * writes the file; vectors.test.ts checks that the code still produces exactly these
 * bytes with both crypto providers. Fields are only ever appended: the first ten
 * messages and the saved state stay as first published.
 */
import {
  createSeededRandom,
  fromHex,
  toHex,
  utf8Encode,
  type CryptoProvider,
  type ProviderOptions,
} from '@parley/crypto';
import {
  IdentityKeyPair,
  assemblePreKeyBundle,
  decrypt,
  encodePreKeyBundle,
  encrypt,
  generateKemPreKey,
  generateOneTimePreKeys,
  generateSignedPreKey,
  initiateSession,
  publicKemPreKey,
  publicOneTimePreKey,
  publicSignedPreKey,
  respondToPreKeyMessage,
  safetyNumber,
  serializeSession,
  verifyPreKeyBundle,
  type Address,
  type Session,
} from '../../src/index.js';
import { buildConversations, type Conversation } from './conversations.js';

export interface VectorMessage {
  from: 'alice' | 'bob';
  messageType: number;
  timestampMs: number;
  plaintext: string;
  envelope: string;
}

export interface Vectors {
  description: string;
  protocolVersion: number;
  alice: { address: Address; identitySeed: string; randomSeed: string; publicIdentity: string };
  bob: { address: Address; identitySeed: string; randomSeed: string; publicIdentity: string };
  bobBundle: string;
  safetyNumber: string;
  /** Bob's serialized session after message 5: a saved-state fixture later versions must read. */
  bobStateAfterMessage5: string;
  messages: VectorMessage[];
  /** Scripted conversations beyond the ten in-order messages (conversations.ts). */
  conversations: Conversation[];
}

const ALICE: Address = { userId: 'alice@example.org', deviceId: 1 };
const BOB: Address = { userId: 'bob@example.org', deviceId: 2 };
const ALICE_SEED = '0101010101010101010101010101010101010101010101010101010101010101';
const BOB_SEED = '0202020202020202020202020202020202020202020202020202020202020202';
const ALICE_RANDOM = 'a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1';
const BOB_RANDOM = 'b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2';

/** Who sends each message: alice opens, then a mix of bursts and turns. */
const SCRIPT: ReadonlyArray<'alice' | 'bob'> = [
  'alice',
  'alice',
  'bob',
  'bob',
  'alice',
  'bob',
  'alice',
  'alice',
  'bob',
  'alice',
];

export function buildVectors(make: (options: ProviderOptions) => CryptoProvider): Vectors {
  const ca = make({ random: createSeededRandom(fromHex(ALICE_RANDOM)) });
  const cb = make({ random: createSeededRandom(fromHex(BOB_RANDOM)) });
  const ctxA = { crypto: ca, now: () => 1_760_000_000_000 };
  const ctxB = { crypto: cb, now: () => 1_760_000_000_000 };
  const alice = IdentityKeyPair.fromSeed(ca, fromHex(ALICE_SEED));
  const bob = IdentityKeyPair.fromSeed(cb, fromHex(BOB_SEED));
  const spk = generateSignedPreKey(cb, bob, 1, 0);
  const kem = generateKemPreKey(cb, bob, 7, 'one-time', 0);
  const [otk] = generateOneTimePreKeys(cb, 100, 1);
  if (!otk) throw new Error('vectors: no one-time key');
  const bundle = assemblePreKeyBundle({
    identity: bob.publicIdentity,
    signedPreKey: publicSignedPreKey(spk),
    kemPreKey: publicKemPreKey(kem),
    oneTimePreKey: publicOneTimePreKey(otk),
  });
  const messages: VectorMessage[] = [];
  let bobStateAfterMessage5 = '';
  let a: Session | undefined;
  let b: Session | undefined;
  SCRIPT.forEach((from, i) => {
    const fromAlice = from === 'alice';
    const m = {
      sender: fromAlice ? ALICE : BOB,
      recipient: fromAlice ? BOB : ALICE,
      messageType: 1 + (i % 3),
      timestampMs: 1_760_000_000_000 + i * 1000,
    };
    const plaintext = `message ${i} from ${from}`;
    let envelope: Uint8Array;
    if (!a) {
      const r = initiateSession(
        ctxA,
        { identity: alice, bundle: verifyPreKeyBundle(ca, bundle) },
        utf8Encode(plaintext),
        m,
      );
      a = r.session;
      envelope = r.envelope;
    } else {
      const r = encrypt(
        fromAlice ? ctxA : ctxB,
        (fromAlice ? a : b) as Session,
        utf8Encode(plaintext),
        m,
      );
      if (fromAlice) a = r.session;
      else b = r.session;
      envelope = r.envelope;
    }
    // Deliver in order so the next sender's state includes it.
    if (fromAlice && !b) {
      b = respondToPreKeyMessage(
        ctxB,
        { identity: bob, keys: { signedPreKey: spk, kemPreKey: kem, oneTimePreKey: otk } },
        envelope,
        m,
      ).session;
    } else if (fromAlice) {
      b = decrypt(ctxB, b as Session, envelope, m).session;
    } else {
      a = decrypt(ctxA, a, envelope, m).session;
    }
    messages.push({
      from,
      messageType: m.messageType,
      timestampMs: m.timestampMs,
      plaintext,
      envelope: toHex(envelope),
    });
    if (i === 5 && b) bobStateAfterMessage5 = toHex(serializeSession(b));
  });
  const sn = safetyNumber(
    ca,
    { userId: ALICE.userId, identityKey: alice.publicIdentity.signingKey },
    { userId: BOB.userId, identityKey: bob.publicIdentity.signingKey },
  );
  const pub = (id: IdentityKeyPair): string =>
    toHex(id.publicIdentity.signingKey) +
    toHex(id.publicIdentity.dhKey) +
    toHex(id.publicIdentity.dhSignature);
  return {
    description:
      "Parley protocol v1 known-answer vectors: identities from fixed seeds; each party's provider draws all randomness from ChaCha20 (RFC 8439) keyed by randomSeed, zero nonce, in call order (see docs/protocol.md §Vectors). Messages are delivered in order.",
    protocolVersion: 1,
    alice: {
      address: ALICE,
      identitySeed: ALICE_SEED,
      randomSeed: ALICE_RANDOM,
      publicIdentity: pub(alice),
    },
    bob: { address: BOB, identitySeed: BOB_SEED, randomSeed: BOB_RANDOM, publicIdentity: pub(bob) },
    bobBundle: toHex(encodePreKeyBundle(bundle)),
    safetyNumber: sn.digits,
    bobStateAfterMessage5,
    messages,
    conversations: buildConversations(make),
  };
}
