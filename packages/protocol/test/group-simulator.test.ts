/**
 * Group simulator driven by fast-check: five people, a group that starts with three,
 * random sequences of send, deliver (in any order), drop, duplicate, tamper, forge,
 * add, remove, leave, a send by someone no longer a member, and save-and-restore.
 * Every message is fanned out to all five, members or not. Invariants:
 *  - a message is readable exactly by the members at the time it was sent (the sender
 *    excepted): each of them decrypts it exactly once, to its own plaintext, as long
 *    as one copy reaches them and its sender is still a member; every further copy is
 *    DUPLICATE_MESSAGE;
 *  - nobody else reads it: a removed member (or one who left) reads nothing sent after;
 *  - on a removal the others drop (and wipe) what they hold of the one who went
 *    (`dropDepartedSenderChains`), so nothing it sends afterwards with its old chain is
 *    read, and neither is anything of it still in flight;
 *  - a tampered copy, or a copy forged by a member who holds the sender's chain key
 *    but not its signing key, is refused with a ProtocolError and changes nothing;
 *  - every member's membership state is re-derived from the signed changes alone and
 *    equals the admin's.
 * Senders rotate by `senderChainRotationDue`, distributions go (at once, as the
 * pairwise layer would deliver them) to the members of the sender's current state.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createPortableCrypto, createSeededRandom, type CryptoProvider } from '@parley/crypto';
import { createNodeCrypto } from '@parley/crypto/node';
import {
  IdentityKeyPair,
  MAX_STORED_SENDER_CHAINS,
  ProtocolError,
  addGroupMembers,
  applyGroupChange,
  createGroup,
  createSenderChain,
  decodeGroupState,
  dropDepartedSenderChains,
  deserializeIncomingSenderChains,
  deserializeOutgoingSenderChain,
  encodeGroupState,
  encodeSenderKeyDistribution,
  groupDecrypt,
  groupEncrypt,
  isGroupMember,
  leaveGroup,
  processSenderKeyDistribution,
  removeGroupMembers,
  senderChainRotationDue,
  serializeIncomingSenderChains,
  serializeOutgoingSenderChain,
  type Address,
  type GroupMembership,
  type IncomingSenderChains,
  type OutgoingSenderChain,
} from '@parley/protocol';
import { text, untext } from './helpers.js';

const PEOPLE = 5;
const INITIAL = 3;
/** Removals per run stay below the retained-chain window, so no readable message is lost. */
const MAX_REMOVALS = MAX_STORED_SENDER_CHAINS - 1;

type Op =
  | { kind: 'send'; who: number }
  | { kind: 'deliver'; pick: number }
  | { kind: 'drop'; pick: number }
  | { kind: 'duplicate'; pick: number }
  | { kind: 'tamper'; pick: number; bit: number }
  | { kind: 'forge'; forger: number; victim: number }
  | { kind: 'ghost'; who: number }
  | { kind: 'add'; who: number }
  | { kind: 'remove'; who: number }
  | { kind: 'leave'; who: number }
  | { kind: 'save'; who: number }
  | { kind: 'tick' };

const who = fc.nat({ max: PEOPLE - 1 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('send' as const), who }) },
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('deliver' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('drop' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('duplicate' as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('tamper' as const), pick: fc.nat(), bit: fc.nat() }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('forge' as const), forger: who, victim: who }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('ghost' as const), who }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('add' as const), who }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('remove' as const), who }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('leave' as const), who }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('save' as const), who }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'tick' as const }) },
);

interface Person {
  readonly address: Address;
  readonly identity: IdentityKeyPair;
  membership: GroupMembership | undefined;
  out: OutgoingSenderChain | undefined;
  incoming: Map<number, IncomingSenderChains>;
}

interface Msg {
  readonly id: number;
  readonly from: number;
  readonly bytes: Uint8Array;
  readonly plaintext: string;
  /** Members other than the sender when it was sent. */
  readonly readers: ReadonlySet<number>;
  /** Who dropped the sender's chains since (`dropDepartedSenderChains`). */
  readonly revokedFor: Set<number>;
  /** Sent by someone no longer a member, with the chain it kept. */
  readonly ghost?: true;
}

interface Copy {
  readonly msg: Msg;
  readonly to: number;
}

interface Stats {
  read: number;
  duplicates: number;
  refusedNonReader: number;
  removedRefused: number;
  rotations: number;
  revokedRefused: number;
  ghostRefused: number;
  forgeries: number;
  droppedStates: number;
}

function runScenario(crypto: CryptoProvider, ops: readonly Op[], stats: Stats): void {
  let clock = 1_760_000_000_000;
  const people: Person[] = Array.from({ length: PEOPLE }, (_, i) => ({
    address: { userId: `p${i}`, deviceId: 1 },
    identity: IdentityKeyPair.generate(crypto),
    membership: undefined,
    out: undefined,
    incoming: new Map(),
  }));
  const admin = people[0] as Person;
  const memberOf = (i: number) => ({
    address: (people[i] as Person).address,
    identityKey: (people[i] as Person).identity.publicIdentity.signingKey,
    role: 'member' as const,
  });
  const history: Uint8Array[] = [];
  /** Who is a member now (the truth the model checks against). */
  const members = new Set<number>();
  /** People who were members once and are not now. */
  const departed = new Set<number>();
  let removals = 0;

  const created = createGroup(crypto, admin, {
    name: 'sim',
    members: [1, 2].map(memberOf),
  });
  history.push(created.change);
  for (let i = 0; i < INITIAL; i++) members.add(i);

  /** Members apply the change bytes; a newcomer replays the whole history. */
  const publish = (change: Uint8Array, newcomer?: number): void => {
    history.push(change);
    for (const i of members) {
      const p = people[i] as Person;
      if (i === newcomer || !p.membership) {
        let s: GroupMembership | undefined;
        for (const c of history) s = applyGroupChange(crypto, s, c);
        p.membership = s;
      } else {
        p.membership = applyGroupChange(crypto, p.membership, change);
      }
    }
  };
  for (const i of members)
    (people[i] as Person).membership = applyGroupChange(crypto, undefined, created.change);

  const distribute = (from: number, to: Iterable<number>): void => {
    const p = people[from] as Person;
    if (!p.out) return;
    const d = encodeSenderKeyDistribution(p.out);
    for (const t of to) {
      if (t === from) continue;
      const q = people[t] as Person;
      q.incoming.set(from, processSenderKeyDistribution(q.incoming.get(from), p.address, d));
    }
  };

  const inFlight: Copy[] = [];
  const decrypted = new Set<string>();
  const sent: Msg[] = [];
  let next = 0;

  /** After a change: `i` drops (and wipes) what it holds of people no longer members. */
  const prune = (i: number): void => {
    const q = people[i] as Person;
    const { kept, dropped } = dropDepartedSenderChains(
      q.membership as GroupMembership,
      q.incoming.values(),
    );
    for (const d of dropped) {
      expect(isGroupMember(q.membership as GroupMembership, d.sender)).toBe(false);
      // What that sender sent and `i` has not read yet is now unreadable to `i`.
      const from = people.findIndex((x) => x.address.userId === d.sender.userId);
      for (const m of sent) if (m.from === from) m.revokedFor.add(i);
    }
    stats.droppedStates += dropped.length;
    const keep = new Set(kept);
    for (const [k, v] of q.incoming) if (!keep.has(v)) q.incoming.delete(k);
  };

  /** Every person refuses `bytes` claimed by `from` and keeps its state as it was. */
  const allRefuse = (from: number, bytes: Uint8Array): void => {
    for (let t = 0; t < PEOPLE; t++) {
      if (t === from) continue;
      const before = (people[t] as Person).incoming.get(from);
      const msg: Msg = {
        id: -1,
        from,
        bytes,
        plaintext: '',
        readers: new Set(),
        revokedFor: new Set(),
      };
      expect(receive({ msg, to: t })).toBeInstanceOf(ProtocolError);
      expect((people[t] as Person).incoming.get(from)).toBe(before);
    }
  };

  const receive = (c: Copy, bytes = c.msg.bytes): string | ProtocolError => {
    const q = people[c.to] as Person;
    const held = q.incoming.get(c.msg.from);
    if (!held) return new ProtocolError('UNKNOWN_SENDER_CHAIN', 'none held');
    try {
      const r = groupDecrypt(crypto, held, (people[c.msg.from] as Person).address, bytes);
      q.incoming.set(c.msg.from, r.state);
      return untext(r.plaintext);
    } catch (e) {
      if (e instanceof ProtocolError) return e;
      throw e;
    }
  };

  const deliver = (c: Copy): void => {
    const out = receive(c);
    const key = `${c.msg.id}:${c.to}`;
    // Two people taken out may share an old chain: what they read is outside the group.
    if (c.msg.ghost && departed.has(c.to)) return;
    if (!c.msg.readers.has(c.to)) {
      expect(out).toBeInstanceOf(ProtocolError);
      stats.refusedNonReader++;
      if (departed.has(c.to)) stats.removedRefused++;
      if (departed.has(c.msg.from)) stats.ghostRefused++;
      return;
    }
    if (c.msg.revokedFor.has(c.to)) {
      // Its sender went after sending it: read only if it arrived before that.
      expect(out).toBeInstanceOf(ProtocolError);
      stats.revokedRefused++;
      return;
    }
    if (decrypted.has(key)) {
      expect(out instanceof ProtocolError && out.code).toBe('DUPLICATE_MESSAGE');
      stats.duplicates++;
      return;
    }
    expect(out).toBe(c.msg.plaintext);
    decrypted.add(key);
    stats.read++;
  };

  const take = (pick: number): Copy | undefined =>
    inFlight.length ? inFlight.splice(pick % inFlight.length, 1)[0] : undefined;

  for (const op of ops) {
    switch (op.kind) {
      case 'send': {
        if (!members.has(op.who)) break;
        const p = people[op.who] as Person;
        const ms = p.membership as GroupMembership;
        if (!p.out || senderChainRotationDue(p.out, ms, clock)) {
          if (p.out) stats.rotations++;
          p.out = createSenderChain(crypto, ms.groupId, { nowMs: clock, epoch: ms.epoch });
          distribute(op.who, members);
        }
        const plaintext = `m${next}`;
        const r = groupEncrypt(crypto, p.out, p.address, text(plaintext));
        p.out = r.chain;
        const readers = new Set([...members].filter((i) => i !== op.who));
        const msg: Msg = {
          id: next++,
          from: op.who,
          bytes: r.message,
          plaintext,
          readers,
          revokedFor: new Set(),
        };
        sent.push(msg);
        for (let t = 0; t < PEOPLE; t++) if (t !== op.who) inFlight.push({ msg, to: t });
        break;
      }
      case 'ghost': {
        // Someone taken out sends on with the chain it kept: nobody may read it.
        const p = people[op.who] as Person;
        if (!departed.has(op.who) || !p.out) break;
        const r = groupEncrypt(crypto, p.out, p.address, text(`ghost${next}`));
        p.out = r.chain;
        const msg: Msg = {
          id: next++,
          from: op.who,
          bytes: r.message,
          plaintext: 'ghost',
          readers: new Set(),
          ghost: true,
          revokedFor: new Set(),
        };
        for (let t = 0; t < PEOPLE; t++) if (t !== op.who) inFlight.push({ msg, to: t });
        break;
      }
      case 'forge': {
        // The forger holds the victim's chain key (every member does) and makes the
        // victim's next message with a signing key of its own.
        const held = (people[op.forger] as Person).incoming.get(op.victim);
        if (op.forger === op.victim || !held) break;
        const forged = groupEncrypt(
          crypto,
          forgedChain(crypto, held),
          (people[op.victim] as Person).address,
          text('forged'),
        );
        allRefuse(op.victim, forged.message);
        stats.forgeries++;
        break;
      }
      case 'deliver': {
        const c = take(op.pick);
        if (c) deliver(c);
        break;
      }
      case 'drop':
        take(op.pick);
        break;
      case 'duplicate': {
        const c = inFlight[op.pick % Math.max(1, inFlight.length)];
        if (c) inFlight.push(c);
        break;
      }
      case 'tamper': {
        const c = inFlight[op.pick % Math.max(1, inFlight.length)];
        if (!c) break;
        const bad = c.msg.bytes.slice();
        const bit = op.bit % (bad.length * 8);
        bad[bit >> 3] = (bad[bit >> 3] as number) ^ (1 << (bit & 7));
        const before = people[c.to]?.incoming.get(c.msg.from);
        expect(receive(c, bad)).toBeInstanceOf(ProtocolError);
        expect(people[c.to]?.incoming.get(c.msg.from)).toBe(before);
        break;
      }
      case 'add': {
        if (members.has(op.who)) break;
        const { change } = addGroupMembers(crypto, admin, admin.membership as GroupMembership, [
          memberOf(op.who),
        ]);
        members.add(op.who);
        departed.delete(op.who);
        publish(change, op.who);
        // A newcomer back from an absence may hold states of people taken out meanwhile.
        prune(op.who);
        for (const s of members) if (s !== op.who) distribute(s, [op.who]);
        break;
      }
      case 'remove':
      case 'leave': {
        if (op.who === 0 || !members.has(op.who) || removals >= MAX_REMOVALS) break;
        const ms = admin.membership as GroupMembership;
        const { change } =
          op.kind === 'remove'
            ? removeGroupMembers(crypto, admin, ms, [(people[op.who] as Person).address])
            : leaveGroup(crypto, people[op.who] as Person, ms);
        removals++;
        members.delete(op.who);
        departed.add(op.who);
        // The one who left keeps its (now stale) states: it must still read nothing new.
        publish(change);
        for (const i of members) prune(i);
        break;
      }
      case 'save': {
        const p = people[op.who] as Person;
        if (p.out) p.out = deserializeOutgoingSenderChain(serializeOutgoingSenderChain(p.out));
        for (const [k, v] of p.incoming) {
          p.incoming.set(k, deserializeIncomingSenderChains(serializeIncomingSenderChains(v)));
        }
        if (p.membership) p.membership = decodeGroupState(crypto, encodeGroupState(p.membership));
        break;
      }
      case 'tick':
        clock += 60_000;
        break;
    }
  }
  // Everyone who is a member holds the admin's state, derived from signed changes alone.
  for (const i of members) expect((people[i] as Person).membership).toEqual(admin.membership);
  for (const i of departed) {
    expect(isGroupMember(admin.membership as GroupMembership, (people[i] as Person).address)).toBe(
      false,
    );
  }
  // Drain in reverse order. Every copy not dropped reaches `deliver`, which requires the
  // first copy to a reader to decrypt and every other to be refused.
  while (inFlight.length) deliver(inFlight.pop() as Copy);
}

/**
 * What a member can make of another's chain from the incoming state it holds (§18.6
 * bytes): the same chain id, iteration and chain key, with a signing key of its own.
 */
function forgedChain(crypto: CryptoProvider, held: IncomingSenderChains): OutgoingSenderChain {
  const saved = serializeIncomingSenderChains(held);
  const addressBytes = 1 + (saved[18] as number) + 4;
  const first = 2 + 16 + addressBytes + 1;
  const own = crypto.ed25519.generateKeyPair();
  const out = new Uint8Array(134);
  out.set([1, 1]);
  out.set(held.groupId, 2);
  out.set(saved.subarray(first, first + 8 + 32), 18); // chainId, iteration, CK
  out.set(own.secretKey, 58);
  out.set(own.publicKey, 90);
  return deserializeOutgoingSenderChain(out); // created at time 0, epoch 0
}

const RUNS_NODE = Number(process.env.PARLEY_GROUP_SIM_RUNS ?? 300);
const RUNS_PORTABLE = Math.max(20, Math.floor(RUNS_NODE / 10));

describe('group simulator', () => {
  for (const [name, runs, make] of [
    [
      'node',
      RUNS_NODE,
      (seed: Uint8Array) => createNodeCrypto({ random: createSeededRandom(seed) }),
    ],
    [
      'portable',
      RUNS_PORTABLE,
      (seed: Uint8Array) => createPortableCrypto({ random: createSeededRandom(seed) }),
    ],
  ] as const) {
    it(`members read each message once, others never (${name}, ${runs} runs)`, () => {
      const stats: Stats = {
        read: 0,
        duplicates: 0,
        refusedNonReader: 0,
        removedRefused: 0,
        rotations: 0,
        revokedRefused: 0,
        ghostRefused: 0,
        forgeries: 0,
        droppedStates: 0,
      };
      fc.assert(
        fc.property(
          fc.uint8Array({ minLength: 32, maxLength: 32 }),
          fc.array(opArb, { minLength: 10, maxLength: 80, size: 'max' }),
          (seed, ops) => runScenario(make(seed), ops, stats),
        ),
        { numRuns: runs },
      );
      // The generator must exercise every path, or the invariants prove little.
      expect(stats.read).toBeGreaterThan(runs * 3);
      expect(stats.duplicates).toBeGreaterThan(runs / 4);
      expect(stats.removedRefused).toBeGreaterThan(runs / 10);
      expect(stats.rotations).toBeGreaterThan(runs / 10);
      expect(stats.droppedStates).toBeGreaterThan(runs / 10);
      expect(stats.ghostRefused).toBeGreaterThan(runs / 20);
      expect(stats.forgeries).toBeGreaterThan(runs / 30);
      // CPU-bound: hundreds of random runs on a shared machine take minutes, not seconds.
    }, 300_000);
  }
});
