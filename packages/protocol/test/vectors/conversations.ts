/**
 * The conversation vectors of parley-v1.json (`conversations`): scripted exchanges that
 * go where the ten in-order messages do not — loss, reordering and duplicates across
 * several chains, the post-quantum ratchet's first rounds in both directions, a
 * compressed and a multi-unit body, and a handshake without a one-time prekey.
 *
 * Each conversation is a list of steps in the order both parties performed them. Each
 * party draws from its own seeded provider (docs/protocol.md §13), so replaying the
 * steps in this order reproduces every envelope byte for byte. The annotations
 * (`chain`, `n`, `headerKem`, `path`, `skippedKeysHeld`) come from the sender's or
 * receiver's state; an implementation that decrypts the envelopes can check them
 * against what it sees in the headers and in its own state.
 *
 * Imports the sources by relative path, like build.ts, so that the state inspection
 * (`stateOf`) and the session objects come from one module instance under tsx too.
 */
import {
  constantTimeEqual,
  createSeededRandom,
  fromHex,
  toHex,
  utf8Encode,
  type CryptoProvider,
  type ProviderOptions,
} from '@parley/crypto';
import {
  ENVELOPE_UNIT_BYTES,
  IdentityKeyPair,
  ProtocolError,
  assemblePreKeyBundle,
  decrypt,
  encodePreKeyBundle,
  encrypt,
  envelopeKind,
  generateKemPreKey,
  generateOneTimePreKeys,
  generateSignedPreKey,
  initiateSession,
  publicKemPreKey,
  publicOneTimePreKey,
  publicSignedPreKey,
  respondToPreKeyMessage,
  sessionMatchesPreKeyMessage,
  verifyPreKeyBundle,
  type Address,
  type KemPreKeyKind,
  type MessageMeta,
  type ResponderKeys,
  type Session,
} from '../../src/index.js';
import type { SessionState } from '../../src/ratchet.js';
import { stateOf } from '../../src/session.js';

type Who = 'alice' | 'bob';

export interface VectorParty {
  address: Address;
  identitySeed: string;
  randomSeed: string;
  publicIdentity: string;
}

/** One `encrypt` (or `initiateSession` for Alice's first send). */
export interface SendStep {
  op: 'send';
  /** Message number in this conversation (0, 1, …), used by receive steps. */
  id: number;
  from: Who;
  messageType: number;
  timestampMs: number;
  plaintextHex: string;
  envelope: string;
  kind: 'prekey' | 'message';
  /** Envelope length in `ENVELOPE_UNIT_BYTES` units. */
  units: number;
  /** The sender's sending chain (0 = its first ratchet key), and N in that chain. */
  chain: number;
  n: number;
  /** KEM material in the (encrypted) header: §6.3 public key and/or ciphertext. */
  headerKem: 'none' | 'publicKey' | 'ciphertext' | 'publicKey+ciphertext';
}

/** One `decrypt` (or `respondToPreKeyMessage` for Bob's first receive) of message `id`. */
export interface ReceiveStep {
  op: 'receive';
  id: number;
  by: Who;
  /** `ok` (the plaintext is the sent one) or the error code; on error nothing changed. */
  outcome: 'ok' | 'DUPLICATE_MESSAGE';
  /**
   * Which header key opened it (§7.3): `handshake` (the responder's first message),
   * `current` (case 1), `new-chain` (case 2, a DH ratchet step), `earlier-chain` (case 3).
   */
  path: 'handshake' | 'current' | 'new-chain' | 'earlier-chain' | 'none';
  /** Skipped message keys the receiver holds afterwards (current and earlier chains). */
  skippedKeysHeld: number;
}

export type ConversationStep = SendStep | ReceiveStep;

export interface Conversation {
  name: string;
  description: string;
  alice: VectorParty;
  bob: VectorParty;
  /** Bob's bundle as Alice verified it (§4.2); his prekeys were generated as `description` says. */
  bobBundle: string;
  steps: ConversationStep[];
}

const NOW_MS = 1_760_000_000_000;

interface Spec {
  name: string;
  description: string;
  alice: { address: Address; identitySeed: string; randomSeed: string };
  bob: { address: Address; identitySeed: string; randomSeed: string };
  kemKind: KemPreKeyKind;
  withOneTimePreKey: boolean;
  script: (run: Runner) => void;
}

interface Runner {
  send(from: Who, body?: 'compressible' | 'incompressible'): number;
  receive(id: number): void;
  duplicate(id: number): void;
  steps: readonly ConversationStep[];
}

/** 6000 bytes of repetitive ASCII: compressed (§9), still one unit. */
function compressible(): Uint8Array {
  let s = '';
  for (let i = 0; s.length < 6000; i++) {
    s += `line ${String(i).padStart(4, '0')}: the quick brown fox jumps over the lazy dog\n`;
  }
  return utf8Encode(s.slice(0, 6000));
}

/** 5000 bytes that deflate cannot shrink (a ChaCha20 keystream): stored, two units. */
function incompressible(): Uint8Array {
  return createSeededRandom(new Uint8Array(32).fill(0xc3))(5000);
}

const kemOf = (s: SessionState): SendStep['headerKem'] =>
  s.pqLocal && s.pqSendCiphertext
    ? 'publicKey+ciphertext'
    : s.pqLocal
      ? 'publicKey'
      : s.pqSendCiphertext
        ? 'ciphertext'
        : 'none';

const heldKeys = (s: SessionState): number =>
  (s.recv?.skipped.size ?? 0) + s.oldChains.reduce((n, c) => n + c.skipped.size, 0);

const earlierKeys = (s: SessionState): number =>
  s.oldChains.reduce((n, c) => n + c.skipped.size, 0);

function pub(id: IdentityKeyPair): string {
  return (
    toHex(id.publicIdentity.signingKey) +
    toHex(id.publicIdentity.dhKey) +
    toHex(id.publicIdentity.dhSignature)
  );
}

function runConversation(
  make: (options: ProviderOptions) => CryptoProvider,
  spec: Spec,
): Conversation {
  const crypto: Record<Who, CryptoProvider> = {
    alice: make({ random: createSeededRandom(fromHex(spec.alice.randomSeed)) }),
    bob: make({ random: createSeededRandom(fromHex(spec.bob.randomSeed)) }),
  };
  const ctx = (who: Who) => ({ crypto: crypto[who], now: () => NOW_MS });
  const identity: Record<Who, IdentityKeyPair> = {
    alice: IdentityKeyPair.fromSeed(crypto.alice, fromHex(spec.alice.identitySeed)),
    bob: IdentityKeyPair.fromSeed(crypto.bob, fromHex(spec.bob.identitySeed)),
  };
  const address: Record<Who, Address> = { alice: spec.alice.address, bob: spec.bob.address };
  // Bob's prekeys, drawn in this order: signed prekey, KEM prekey, [one-time prekey].
  const spk = generateSignedPreKey(crypto.bob, identity.bob, 1, 0);
  const kem = generateKemPreKey(crypto.bob, identity.bob, 7, spec.kemKind, 0);
  const otk = spec.withOneTimePreKey ? generateOneTimePreKeys(crypto.bob, 100, 1)[0] : undefined;
  const keys: ResponderKeys = { signedPreKey: spk, kemPreKey: kem, oneTimePreKey: otk };
  const bundle = assemblePreKeyBundle({
    identity: identity.bob.publicIdentity,
    signedPreKey: publicSignedPreKey(spk),
    kemPreKey: publicKemPreKey(kem),
    oneTimePreKey: otk ? publicOneTimePreKey(otk) : undefined,
  });

  const sessions: Partial<Record<Who, Session>> = {};
  const chains: Record<Who, string[]> = { alice: [], bob: [] };
  const sent: { from: Who; meta: MessageMeta; plaintext: Uint8Array; envelope: Uint8Array }[] = [];
  const steps: ConversationStep[] = [];
  const other = (w: Who): Who => (w === 'alice' ? 'bob' : 'alice');

  const receive = (id: number, expectDuplicate: boolean): void => {
    const m = sent[id];
    if (!m) throw new Error(`vectors: no message ${id}`);
    const by = other(m.from);
    const session = sessions[by];
    const before = session ? stateOf(session) : undefined;
    const fresh =
      by === 'bob' &&
      envelopeKind(m.envelope) === 'prekey' &&
      (!session || !sessionMatchesPreKeyMessage(session, m.envelope));
    let next: Session;
    let plaintext: Uint8Array;
    try {
      ({ session: next, plaintext } = fresh
        ? respondToPreKeyMessage(ctx(by), { identity: identity.bob, keys }, m.envelope, m.meta)
        : decrypt(ctx(by), session as Session, m.envelope, m.meta));
    } catch (e) {
      if (expectDuplicate && e instanceof ProtocolError && e.code === 'DUPLICATE_MESSAGE') {
        steps.push({
          op: 'receive',
          id,
          by,
          outcome: 'DUPLICATE_MESSAGE',
          path: 'none',
          skippedKeysHeld: before ? heldKeys(before) : 0,
        });
        return;
      }
      throw e;
    }
    if (expectDuplicate) throw new Error(`vectors: message ${id} was not a duplicate`);
    if (!constantTimeEqual(plaintext, m.plaintext)) throw new Error(`vectors: message ${id}`);
    const after = stateOf(next);
    const path: ReceiveStep['path'] = !before
      ? 'handshake'
      : !before.dhRemote || !constantTimeEqual(before.dhRemote, after.dhRemote as Uint8Array)
        ? 'new-chain'
        : earlierKeys(after) < earlierKeys(before)
          ? 'earlier-chain'
          : 'current';
    sessions[by] = next;
    steps.push({ op: 'receive', id, by, outcome: 'ok', path, skippedKeysHeld: heldKeys(after) });
  };

  const runner: Runner = {
    steps,
    send(from, body) {
      const id = sent.length;
      const meta: MessageMeta = {
        sender: address[from],
        recipient: address[other(from)],
        messageType: 1 + (id % 3),
        timestampMs: NOW_MS + id * 1000,
      };
      const plaintext =
        body === 'compressible'
          ? compressible()
          : body === 'incompressible'
            ? incompressible()
            : utf8Encode(`${spec.name} message ${id} from ${from}`);
      const session = sessions[from];
      let r: { session: Session; envelope: Uint8Array };
      if (session) {
        r = encrypt(ctx(from), session, plaintext, meta);
      } else if (from === 'alice') {
        const verified = verifyPreKeyBundle(crypto.alice, bundle);
        r = initiateSession(
          ctx('alice'),
          { identity: identity.alice, bundle: verified },
          plaintext,
          meta,
        );
      } else {
        throw new Error('vectors: bob cannot send before he has a session');
      }
      sessions[from] = r.session;
      // The send step changes only the sending chain, so the state after it still shows
      // the ratchet key and the KEM material the header carried.
      const after = stateOf(r.session);
      const ratchetKey = toHex(after.dhSelf.publicKey);
      if (!chains[from].includes(ratchetKey)) chains[from].push(ratchetKey);
      sent.push({ from, meta, plaintext, envelope: r.envelope });
      steps.push({
        op: 'send',
        id,
        from,
        messageType: meta.messageType,
        timestampMs: meta.timestampMs,
        plaintextHex: toHex(plaintext),
        envelope: toHex(r.envelope),
        kind: envelopeKind(r.envelope),
        units: r.envelope.length / ENVELOPE_UNIT_BYTES,
        chain: chains[from].indexOf(ratchetKey),
        n: (after.send?.n ?? 1) - 1,
        headerKem: kemOf(after),
      });
      return id;
    },
    receive: (id) => receive(id, false),
    duplicate: (id) => receive(id, true),
  };
  spec.script(runner);
  return {
    name: spec.name,
    description: spec.description,
    alice: { ...spec.alice, publicIdentity: pub(identity.alice) },
    bob: { ...spec.bob, publicIdentity: pub(identity.bob) },
    bobBundle: toHex(encodePreKeyBundle(bundle)),
    steps,
  };
}

/** Whether `id`'s message carried KEM material of `what` in its header. */
function carries(r: Runner, id: number, what: 'publicKey' | 'ciphertext'): boolean {
  const s = r.steps.find((x) => x.op === 'send' && x.id === id) as SendStep | undefined;
  return s !== undefined && s.headerKem.includes(what);
}

/** Longest alternation the script allows before it gives up (a bug, not a vector). */
const MAX_TURNS = 100;

const REORDER_AND_PQ: Spec = {
  name: 'reorder-and-pq',
  description:
    "Loss, reordering and duplicates across several chains, then alternating turns past both parties' first post-quantum ratchet rounds (§6.3), then reordering of KEM-carrying messages. Bob's prekeys: signed prekey id 1, one-time KEM prekey id 7, one-time prekey id 100, generated in that order from his random seed.",
  alice: {
    address: { userId: 'alice@example.org', deviceId: 1 },
    identitySeed: '0303030303030303030303030303030303030303030303030303030303030303',
    randomSeed: 'c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1',
  },
  bob: {
    address: { userId: 'bob@example.org', deviceId: 2 },
    identitySeed: '0404040404040404040404040404040404040404040404040404040404040404',
    randomSeed: 'd2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2',
  },
  kemKind: 'one-time',
  withOneTimePreKey: true,
  script(r) {
    // Alice's three prekey messages; the second establishes the session.
    const a0 = r.send('alice');
    const a1 = r.send('alice');
    const a2 = r.send('alice');
    r.receive(a1);
    r.receive(a0);
    const b0 = r.send('bob');
    const b1 = r.send('bob');
    const b2 = r.send('bob');
    r.receive(b2);
    r.receive(b0);
    const a3 = r.send('alice');
    const a4 = r.send('alice');
    r.receive(a4); // closes Alice's first chain with a2 still missing
    r.receive(a2); // from an earlier chain
    r.receive(a3);
    r.duplicate(a2);
    r.duplicate(a4);
    r.receive(r.send('bob')); // Alice steps; b1 stays behind in Bob's first chain
    // Three more chains of Alice's, each with a message held back.
    const held: number[] = [];
    for (let k = 0; k < 3; k++) {
      held.push(r.send('alice'));
      r.receive(r.send('alice'));
      r.receive(r.send('bob'));
    }
    r.receive(r.send('alice'));
    // Late arrivals from three earlier chains of Alice's, newest first, and one of Bob's.
    for (const id of held.reverse()) r.receive(id);
    r.receive(b1);
    // Alternate until both directions completed a KEM round, then two more turns. The
    // first chain with Bob's KEM public key and the first with Alice's ciphertext are
    // bursts of three read last-first, so the KEM step runs on a message after a gap.
    let roundsDone = 0;
    let extra = 2;
    const burst = { bob: false, alice: false };
    for (let turn = 0; turn < MAX_TURNS && extra > 0; turn++) {
      for (const who of ['bob', 'alice'] as const) {
        const id = r.send(who);
        const kem = carries(r, id, who === 'bob' ? 'publicKey' : 'ciphertext');
        if (kem && !burst[who]) {
          burst[who] = true;
          const second = r.send(who);
          const third = r.send(who);
          r.receive(third);
          r.receive(id);
          r.receive(second);
        } else {
          r.receive(id);
        }
        if (carries(r, id, 'ciphertext')) roundsDone |= who === 'alice' ? 1 : 2;
      }
      if (roundsDone === 3) extra--;
    }
    if (!burst.bob || !burst.alice) throw new Error('vectors: no KEM bursts');
    if (roundsDone !== 3) throw new Error('vectors: the KEM rounds did not complete');
    // A burst after the PQ rounds, read out of order.
    const c0 = r.send('bob');
    const c1 = r.send('bob');
    const c2 = r.send('bob');
    r.receive(c2);
    r.receive(c0);
    r.receive(c1);
    r.receive(r.send('alice'));
  },
};

const NO_ONE_TIME_PREKEY: Spec = {
  name: 'no-one-time-prekey',
  description:
    "A handshake without a one-time prekey (no DH4, §5.1) against a last-resort KEM prekey; a compressed initial message (6000 ASCII bytes, §9) and a multi-unit reply (5000 bytes of the ChaCha20 keystream under 32 bytes of 0xc3, stored uncompressed). Bob's prekeys: signed prekey id 1, last-resort KEM prekey id 7, generated in that order from his random seed.",
  alice: {
    address: { userId: 'carol@example.org', deviceId: 1 },
    identitySeed: '0505050505050505050505050505050505050505050505050505050505050505',
    randomSeed: 'e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1',
  },
  bob: {
    address: { userId: 'dave@example.org', deviceId: 1 },
    identitySeed: '0606060606060606060606060606060606060606060606060606060606060606',
    randomSeed: 'f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2',
  },
  kemKind: 'last-resort',
  withOneTimePreKey: false,
  script(r) {
    const a0 = r.send('alice', 'compressible');
    r.receive(a0);
    r.receive(r.send('bob', 'incompressible'));
    r.receive(r.send('alice'));
    r.duplicate(a0); // a replayed initial message reaches the session: a duplicate
    r.receive(r.send('bob'));
  },
};

/** Builds every conversation with the given provider factory. */
export function buildConversations(
  make: (options: ProviderOptions) => CryptoProvider,
): Conversation[] {
  return [REORDER_AND_PQ, NO_ONE_TIME_PREKEY].map((spec) => runConversation(make, spec));
}
