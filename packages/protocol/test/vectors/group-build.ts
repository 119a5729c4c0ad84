/**
 * Builds Parley's group-layer known-answer vectors (parley-group-v1.json): four
 * identities from fixed seeds, a membership history (create, add, rename, remove,
 * leave) with every change's bytes and the state after it, and sender-key traffic:
 * distributions, messages, a rotation after the removal, and saved states.
 * `group-generate.ts` writes the file; group-vectors.test.ts checks that the code still
 * produces exactly these bytes with both crypto providers.
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
  addGroupMembers,
  createGroup,
  createSenderChain,
  encodeGroupState,
  encodeSenderKeyDistribution,
  groupDecrypt,
  groupEncrypt,
  leaveGroup,
  processSenderKeyDistribution,
  removeGroupMembers,
  renameGroup,
  senderChainRotationDue,
  serializeIncomingSenderChains,
  serializeOutgoingSenderChain,
  type Address,
  type GroupMember,
  type GroupMembership,
  type IncomingSenderChains,
  type OutgoingSenderChain,
  type SignedGroupChange,
} from '../../src/index.js';

type Name = 'alice' | 'bob' | 'carol' | 'dave';
const NAMES: readonly Name[] = ['alice', 'bob', 'carol', 'dave'];

export interface GroupVectorParty {
  address: Address;
  identitySeed: string;
  randomSeed: string;
  signingKey: string;
}

export interface GroupVectorChange {
  kind: string;
  signer: Name;
  change: string;
  /** Canonical state bytes after the change (§18.7) and their hash. */
  state: string;
  stateHash: string;
}

export interface GroupVectorEvent {
  /** 'chain' (a new sending chain and its distribution), 'send', 'receive'. */
  step: 'chain' | 'send' | 'receive';
  by: Name;
  /** For receive: whose message. */
  from?: Name;
  id?: number;
  epoch?: number;
  chainId?: number;
  iteration?: number;
  distribution?: string;
  plaintext?: string;
  message?: string;
  outcome?: string;
}

export interface GroupVectors {
  description: string;
  nowMs: number;
  parties: Record<Name, GroupVectorParty>;
  groupId: string;
  changes: GroupVectorChange[];
  events: GroupVectorEvent[];
  /** Alice's outgoing chain and Carol's incoming state for Alice at the end (§18.6). */
  aliceOutgoingState: string;
  carolIncomingFromAliceState: string;
}

const NOW = 1_760_000_000_000;
const seedOf = (i: number, b: number): string => toHex(new Uint8Array(32).fill(b + i));

export function buildGroupVectors(
  make: (options: ProviderOptions) => CryptoProvider,
): GroupVectors {
  const parties = {} as Record<Name, GroupVectorParty>;
  const crypto = {} as Record<Name, CryptoProvider>;
  const id = {} as Record<Name, IdentityKeyPair>;
  NAMES.forEach((n, i) => {
    const identitySeed = seedOf(i, 0x11);
    const randomSeed = seedOf(i, 0xa1);
    crypto[n] = make({ random: createSeededRandom(fromHex(randomSeed)) });
    id[n] = IdentityKeyPair.fromSeed(crypto[n], fromHex(identitySeed));
    parties[n] = {
      address: { userId: `${n}@example.org`, deviceId: 1 },
      identitySeed,
      randomSeed,
      signingKey: toHex(id[n].publicIdentity.signingKey),
    };
  });
  const signer = (n: Name) => ({ identity: id[n], address: parties[n].address });
  const member = (n: Name): GroupMember => ({
    address: parties[n].address,
    identityKey: id[n].publicIdentity.signingKey,
    role: 'member',
  });
  const changes: GroupVectorChange[] = [];
  const record = (kind: string, by: Name, c: SignedGroupChange): GroupMembership => {
    changes.push({
      kind,
      signer: by,
      change: toHex(c.change),
      state: toHex(encodeGroupState(c.state)),
      stateHash: toHex(c.state.hash),
    });
    return c.state;
  };

  const events: GroupVectorEvent[] = [];
  const out = {} as Partial<Record<Name, OutgoingSenderChain>>;
  const held = new Map<string, IncomingSenderChains>();
  let nextId = 0;
  const newChain = (by: Name, ms: GroupMembership): void => {
    const chain = createSenderChain(crypto[by], ms.groupId, { nowMs: NOW, epoch: ms.epoch });
    out[by] = chain;
    const d = encodeSenderKeyDistribution(chain);
    for (const m of ms.members) {
      const to = NAMES.find((n) => parties[n].address.userId === m.address.userId) as Name;
      if (to === by) continue;
      held.set(
        `${to}<${by}`,
        processSenderKeyDistribution(held.get(`${to}<${by}`), parties[by].address, d),
      );
    }
    events.push({
      step: 'chain',
      by,
      epoch: ms.epoch,
      chainId: chain.chainId,
      distribution: toHex(d),
    });
  };
  const sent = new Map<number, { from: Name; message: Uint8Array; plaintext: string }>();
  const send = (by: Name, ms: GroupMembership): number => {
    const current = out[by];
    if (!current || senderChainRotationDue(current, ms, NOW)) newChain(by, ms);
    const chain = out[by] as OutgoingSenderChain;
    const plaintext = `group message ${nextId} from ${by}`;
    const r = groupEncrypt(crypto[by], chain, parties[by].address, utf8Encode(plaintext));
    out[by] = r.chain;
    const msgId = nextId++;
    sent.set(msgId, { from: by, message: r.message, plaintext });
    events.push({
      step: 'send',
      by,
      id: msgId,
      chainId: chain.chainId,
      iteration: chain.iteration,
      plaintext,
      message: toHex(r.message),
    });
    return msgId;
  };
  const receive = (by: Name, msgId: number): void => {
    const m = sent.get(msgId);
    if (!m) throw new Error('vectors: no such message');
    const key = `${by}<${m.from}`;
    const h = held.get(key);
    let outcome = 'ok';
    if (!h) outcome = 'UNKNOWN_SENDER_CHAIN';
    else {
      try {
        const r = groupDecrypt(crypto[by], h, parties[m.from].address, m.message);
        held.set(key, r.state);
        if (new TextDecoder().decode(r.plaintext) !== m.plaintext)
          throw new Error('vectors: wrong plaintext');
      } catch (e) {
        outcome = (e as { code?: string }).code ?? 'error';
      }
    }
    events.push({ step: 'receive', by, from: m.from, id: msgId, outcome });
  };

  let s = record(
    'create',
    'alice',
    createGroup(crypto.alice, signer('alice'), { name: 'vector group', members: [member('bob')] }),
  );
  const a0 = send('alice', s);
  const a1 = send('alice', s);
  const a2 = send('alice', s);
  receive('bob', a2);
  receive('bob', a0);
  receive('bob', a0);
  s = record(
    'add',
    'alice',
    addGroupMembers(crypto.alice, signer('alice'), s, [member('carol'), member('dave')]),
  );
  // Newcomers get Alice's chain at its current iteration: her earlier messages stay unreadable.
  const d = encodeSenderKeyDistribution(out.alice as OutgoingSenderChain);
  for (const n of ['carol', 'dave'] as const) {
    held.set(`${n}<alice`, processSenderKeyDistribution(undefined, parties.alice.address, d));
  }
  const b0 = send('bob', s);
  const a3 = send('alice', s);
  receive('carol', a1);
  receive('carol', a3);
  receive('bob', a1);
  receive('dave', b0);
  s = record(
    'rename',
    'alice',
    renameGroup(crypto.alice, signer('alice'), s, 'vector group, renamed'),
  );
  s = record(
    'remove',
    'alice',
    removeGroupMembers(crypto.alice, signer('alice'), s, [parties.bob.address]),
  );
  // Alice rotates (removal); Bob gets nothing of the new chain and reads nothing new.
  const a4 = send('alice', s);
  const a5 = send('alice', s);
  receive('bob', a4);
  receive('carol', a5);
  receive('carol', a4);
  receive('dave', a4);
  s = record('leave', 'dave', leaveGroup(crypto.dave, signer('dave'), s));
  const a6 = send('alice', s);
  receive('carol', a6);
  receive('dave', a6);

  return {
    description:
      "Parley group layer v1 known-answer vectors (docs/protocol.md §18): identities from fixed seeds; each party's provider draws all randomness from ChaCha20 keyed by randomSeed as in §13. Events happen in the order listed; a newcomer receives the sender's distribution at its current iteration, and a removed member receives no later distribution.",
    nowMs: NOW,
    parties,
    groupId: toHex(s.groupId),
    changes,
    events,
    aliceOutgoingState: toHex(serializeOutgoingSenderChain(out.alice as OutgoingSenderChain)),
    carolIncomingFromAliceState: toHex(
      serializeIncomingSenderChains(held.get('carol<alice') as IncomingSenderChains),
    ),
  };
}
