/**
 * The group layer's rules one by one: sender-key messages (decrypt once, replay,
 * forgery, wrong group or chain, state unchanged on failure, forward secrecy within a
 * chain, bounded skipping, saved state), signed membership (chaining, roles,
 * signatures) and the rotation decision.
 */
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { createSeededRandom, type CryptoProvider } from '@parley/crypto';
import { createNodeCrypto } from '@parley/crypto/node';
import {
  GROUP_ROTATE_AFTER_MESSAGES,
  GROUP_ROTATE_AFTER_MS,
  IdentityKeyPair,
  MAX_GROUP_SKIP,
  MAX_STORED_SENDER_CHAINS,
  addGroupMembers,
  applyGroupChange,
  createGroup,
  createSenderChain,
  decodeGroupState,
  deserializeIncomingSenderChains,
  destroySenderChain,
  dropDepartedSenderChains,
  deserializeOutgoingSenderChain,
  encodeGroupState,
  encodeSenderKeyDistribution,
  groupDecrypt,
  groupEncrypt,
  groupMessageBytes,
  groupMessageInfo,
  leaveGroup,
  processSenderKeyDistribution,
  removeGroupMembers,
  renameGroup,
  senderChainRotationDue,
  serializeIncomingSenderChains,
  serializeOutgoingSenderChain,
  type Address,
  type GroupMember,
  type IncomingSenderChains,
  type OutgoingSenderChain,
} from '@parley/protocol';
import { code, seeded, text, untext } from './helpers.js';

const ALICE: Address = { userId: 'alice', deviceId: 1 };
const BOB: Address = { userId: 'bob', deviceId: 1 };
const CAROL: Address = { userId: 'carol', deviceId: 1 };
const GROUP = new Uint8Array(16).fill(7);
const NOW = 1_760_000_000_000;

function pair(crypto: CryptoProvider): { out: OutgoingSenderChain; bob: IncomingSenderChains } {
  const out = createSenderChain(crypto, GROUP, { nowMs: NOW, epoch: 0 });
  const bob = processSenderKeyDistribution(undefined, ALICE, encodeSenderKeyDistribution(out));
  return { out, bob };
}

function send(crypto: CryptoProvider, out: OutgoingSenderChain, n: number, prefix = 'm') {
  const messages: Uint8Array[] = [];
  let chain = out;
  for (let i = 0; i < n; i++) {
    const r = groupEncrypt(crypto, chain, ALICE, text(`${prefix}${i}`));
    chain = r.chain;
    messages.push(r.message);
  }
  return { chain, messages };
}

describe('group messages under sender keys', () => {
  const crypto = seeded(41);

  it('decrypts in order, out of order, and each message exactly once', () => {
    const { out, bob } = pair(crypto);
    const { messages } = send(crypto, out, 5);
    let s = bob;
    for (const i of [0, 3, 1, 4, 2]) {
      const r = groupDecrypt(crypto, s, ALICE, messages[i] as Uint8Array);
      expect(untext(r.plaintext)).toBe(`m${i}`);
      s = r.state;
      expect(code(() => groupDecrypt(crypto, s, ALICE, messages[i] as Uint8Array))).toBe(
        'DUPLICATE_MESSAGE',
      );
    }
  });

  it('pads a message to whole envelope units and reports its routing fields', () => {
    const { out } = pair(crypto);
    const { message } = groupEncrypt(crypto, out, ALICE, text('hi'));
    expect(message.length).toBe(groupMessageBytes(2));
    expect(message.length % 3840).toBe(0);
    expect(groupMessageInfo(message)).toEqual({
      groupId: GROUP,
      chainId: out.chainId,
      iteration: 0,
    });
  });

  it('refuses every single-bit change of a message and stays usable after', () => {
    const { out, bob } = pair(crypto);
    const { messages } = send(crypto, out, 1);
    const m = messages[0] as Uint8Array;
    for (const bit of [
      0,
      9,
      8 * 2 + 1,
      8 * 18,
      8 * 22,
      8 * 30,
      8 * (m.length - 70),
      8 * (m.length - 1),
    ]) {
      const bad = m.slice();
      bad[bit >> 3] = (bad[bit >> 3] as number) ^ (1 << (bit & 7));
      const c = code(() => groupDecrypt(crypto, bob, ALICE, bad));
      expect(['INVALID_MESSAGE', 'UNKNOWN_SENDER_CHAIN', 'UNSUPPORTED_VERSION']).toContain(c);
    }
    expect(untext(groupDecrypt(crypto, bob, ALICE, m).plaintext)).toBe('m0');
  });

  it('refuses a message forged by a member who holds the chain key but not the signing key', () => {
    const { out, bob } = pair(crypto);
    // Carol holds Alice's distribution too; she builds a chain with the same id and key
    // but her own signing key, and encrypts in Alice's name.
    const forged = deserializeOutgoingSenderChain(serializeOutgoingSenderChain(out));
    const carolKeys = crypto.ed25519.generateKeyPair();
    const bytes = serializeOutgoingSenderChain(forged);
    bytes.set(carolKeys.secretKey, 2 + 16 + 8 + 32);
    bytes.set(carolKeys.publicKey, 2 + 16 + 8 + 64);
    const evil = deserializeOutgoingSenderChain(bytes);
    const { message } = groupEncrypt(crypto, evil, ALICE, text('pay carol'));
    expect(code(() => groupDecrypt(crypto, bob, ALICE, message))).toBe('INVALID_MESSAGE');
    const real = groupEncrypt(crypto, out, ALICE, text('real'));
    expect(untext(groupDecrypt(crypto, bob, ALICE, real.message).plaintext)).toBe('real');
  });

  it('refuses a message claimed by another sender, of another group, or of an unknown chain', () => {
    const { out, bob } = pair(crypto);
    const { message } = groupEncrypt(crypto, out, ALICE, text('x'));
    // Carol's state for Alice's chain id cannot read Alice's message as Carol's.
    const asCarol = processSenderKeyDistribution(
      undefined,
      CAROL,
      encodeSenderKeyDistribution(out),
    );
    expect(code(() => groupDecrypt(crypto, asCarol, CAROL, message))).toBe('INVALID_MESSAGE');
    const otherGroup = createSenderChain(crypto, new Uint8Array(16).fill(8), {
      nowMs: NOW,
      epoch: 0,
    });
    const og = groupEncrypt(crypto, otherGroup, ALICE, text('y'));
    expect(code(() => groupDecrypt(crypto, bob, ALICE, og.message))).toBe('INVALID_MESSAGE');
    const unknown = createSenderChain(crypto, GROUP, { nowMs: NOW, epoch: 0 });
    const um = groupEncrypt(crypto, unknown, ALICE, text('z'));
    expect(code(() => groupDecrypt(crypto, bob, ALICE, um.message))).toBe('UNKNOWN_SENDER_CHAIN');
    expect(untext(groupDecrypt(crypto, bob, ALICE, message).plaintext)).toBe('x');
  });

  it('forward secrecy within a chain: a later leaked state reads no earlier message', () => {
    const { out, bob } = pair(crypto);
    const { chain, messages } = send(crypto, out, 3);
    let s = bob;
    for (const m of messages) s = groupDecrypt(crypto, s, ALICE, m).state;
    // Everything a thief gets from either side after message 2 was read.
    const leakedReceiver = deserializeIncomingSenderChains(serializeIncomingSenderChains(s));
    const leakedSender = processSenderKeyDistribution(
      undefined,
      ALICE,
      encodeSenderKeyDistribution(chain),
    );
    for (const m of messages) {
      expect(code(() => groupDecrypt(crypto, leakedReceiver, ALICE, m))).toBe('DUPLICATE_MESSAGE');
      expect(code(() => groupDecrypt(crypto, leakedSender, ALICE, m))).toBe('DUPLICATE_MESSAGE');
    }
    const next = groupEncrypt(crypto, chain, ALICE, text('later'));
    expect(untext(groupDecrypt(crypto, leakedSender, ALICE, next.message).plaintext)).toBe('later');
  });

  it('bounds a jump by MAX_GROUP_SKIP, leaving the state usable', () => {
    const { out, bob } = pair(crypto);
    const far = new OutgoingJump(out, MAX_GROUP_SKIP + 1).chain;
    const { message } = groupEncrypt(crypto, far, ALICE, text('far'));
    expect(code(() => groupDecrypt(crypto, bob, ALICE, message))).toBe('TOO_MANY_SKIPPED');
    const edge = new OutgoingJump(out, MAX_GROUP_SKIP).chain;
    const ok = groupEncrypt(crypto, edge, ALICE, text('edge'));
    const r = groupDecrypt(crypto, bob, ALICE, ok.message);
    expect(untext(r.plaintext)).toBe('edge');
  });

  it('keeps skipped keys and chains through save and restore; keeps MAX_STORED_SENDER_CHAINS chains', () => {
    const { out, bob } = pair(crypto);
    const { messages } = send(crypto, out, 3);
    let s = groupDecrypt(crypto, bob, ALICE, messages[2] as Uint8Array).state;
    s = deserializeIncomingSenderChains(serializeIncomingSenderChains(s));
    expect(untext(groupDecrypt(crypto, s, ALICE, messages[0] as Uint8Array).plaintext)).toBe('m0');
    const chains: OutgoingSenderChain[] = [];
    for (let i = 0; i < MAX_STORED_SENDER_CHAINS; i++) {
      const c = createSenderChain(crypto, GROUP, { nowMs: NOW, epoch: i + 1 });
      chains.push(c);
      s = processSenderKeyDistribution(s, ALICE, encodeSenderKeyDistribution(c));
    }
    expect(s.chainIds).toEqual(chains.map((c) => c.chainId).reverse());
    expect(code(() => groupDecrypt(crypto, s, ALICE, messages[1] as Uint8Array))).toBe(
      'UNKNOWN_SENDER_CHAIN',
    );
    // A resent distribution of a held chain changes nothing.
    expect(
      processSenderKeyDistribution(
        s,
        ALICE,
        encodeSenderKeyDistribution(chains[2] as OutgoingSenderChain),
      ),
    ).toBe(s);
  });

  it('outgoing and incoming state cannot be mixed: the compiler refuses, the run-time check too', () => {
    const { out, bob } = pair(crypto);
    // @ts-expect-error an incoming state is not an outgoing chain
    expect(code(() => groupEncrypt(crypto, bob, ALICE, text('x')))).toBe('INVALID_ARGUMENT');
    const { message } = groupEncrypt(crypto, out, ALICE, text('x'));
    // @ts-expect-error an outgoing chain is not an incoming state
    expect(code(() => groupDecrypt(crypto, out, ALICE, message))).toBe('INVALID_ARGUMENT');
  });

  it('drops the oldest skipped keys beyond MAX_GROUP_SKIPPED_KEYS', () => {
    const { out, bob } = pair(crypto);
    const m0 = groupEncrypt(crypto, out, ALICE, text('first')).message;
    const at = (n: number) =>
      groupEncrypt(crypto, new OutgoingJump(out, n).chain, ALICE, text(`at ${n}`)).message;
    const m1 = at(1);
    let s = groupDecrypt(crypto, bob, ALICE, at(MAX_GROUP_SKIP)).state; // skips 0..1999
    s = groupDecrypt(crypto, s, ALICE, at(2 * MAX_GROUP_SKIP)).state; // skips 1999 more
    expect(code(() => groupDecrypt(crypto, s, ALICE, m0))).toBe('DUPLICATE_MESSAGE');
    expect(code(() => groupDecrypt(crypto, s, ALICE, m1))).toBe('DUPLICATE_MESSAGE');
    const late = at(2 * MAX_GROUP_SKIP - 1);
    // Saved first: reading a message wipes its skipped key in the state it was read with.
    const kept = deserializeIncomingSenderChains(serializeIncomingSenderChains(s));
    expect(untext(groupDecrypt(crypto, s, ALICE, late).plaintext)).toBe(
      `at ${2 * MAX_GROUP_SKIP - 1}`,
    );
    expect(untext(groupDecrypt(crypto, kept, ALICE, late).plaintext)).toBe(
      `at ${2 * MAX_GROUP_SKIP - 1}`,
    );
  });

  it('refuses a distribution that reuses a held chain id with another signing key, changing nothing', () => {
    const { out, bob } = pair(crypto);
    const d = encodeSenderKeyDistribution(out);
    const other = d.slice();
    other[89] = (other[89] as number) ^ 1;
    expect(code(() => processSenderKeyDistribution(bob, ALICE, other))).toBe('INVALID_MESSAGE');
    expect(code(() => processSenderKeyDistribution(bob, ALICE, d.subarray(0, 89)))).toBe(
      'INVALID_MESSAGE',
    );
    const v2 = d.slice();
    v2[1] = 2;
    expect(code(() => processSenderKeyDistribution(bob, ALICE, v2))).toBe('UNSUPPORTED_VERSION');
    expect(processSenderKeyDistribution(bob, ALICE, d)).toBe(bob);
    const elsewhere = createSenderChain(crypto, new Uint8Array(16).fill(3), {
      nowMs: NOW,
      epoch: 0,
    });
    const e = encodeSenderKeyDistribution(elsewhere);
    expect(code(() => processSenderKeyDistribution(bob, ALICE, e))).toBe('INVALID_ARGUMENT');
    expect(
      code(() =>
        processSenderKeyDistribution(
          bob,
          CAROL,
          encodeSenderKeyDistribution(createSenderChain(crypto, GROUP, { nowMs: NOW, epoch: 0 })),
        ),
      ),
    ).toBe('INVALID_ARGUMENT');
  });

  it('refuses malformed messages and saved states with typed errors', () => {
    const { out, bob } = pair(crypto);
    const { message } = groupEncrypt(crypto, out, ALICE, text('x'));
    for (const bad of [
      new Uint8Array(0),
      message.subarray(0, 122),
      message.subarray(0, message.length - 1),
    ]) {
      expect(code(() => groupDecrypt(crypto, bob, ALICE, bad))).toBe('INVALID_MESSAGE');
    }
    const wrongType = message.slice();
    wrongType[0] = 0x02;
    expect(code(() => groupDecrypt(crypto, bob, ALICE, wrongType))).toBe('INVALID_MESSAGE');
    const wrongVersion = message.slice();
    wrongVersion[1] = 9;
    expect(code(() => groupDecrypt(crypto, bob, ALICE, wrongVersion))).toBe('UNSUPPORTED_VERSION');
    const saved = serializeIncomingSenderChains(bob);
    expect(code(() => deserializeIncomingSenderChains(saved.subarray(0, saved.length - 1)))).toBe(
      'INVALID_STATE',
    );
    expect(code(() => deserializeIncomingSenderChains(serializeOutgoingSenderChain(out)))).toBe(
      'INVALID_STATE',
    );
    const future = saved.slice();
    future[0] = 2;
    expect(code(() => deserializeIncomingSenderChains(future))).toBe('UNSUPPORTED_VERSION');
    expect(code(() => deserializeOutgoingSenderChain(saved))).toBe('INVALID_STATE');
  });

  it('wipes each message key and plaintext copy it derived, on success and on refusal', () => {
    const { out, bob } = pair(crypto);
    const seen: Uint8Array[] = [];
    const aead = crypto.aes256gcm;
    const watching: CryptoProvider = {
      ...crypto,
      aes256gcm: {
        nonceBytes: aead.nonceBytes,
        encrypt: (key, nonce, pt, ad) => (seen.push(key, pt), aead.encrypt(key, nonce, pt, ad)),
        decrypt: (key, nonce, sealed, ad) => {
          seen.push(key);
          const padded = aead.decrypt(key, nonce, sealed, ad);
          seen.push(padded);
          return padded;
        },
      },
    };
    const zero = (b: Uint8Array) => b.every((x) => x === 0);
    const sent = send(watching, out, 3);
    const [m0, m1, m2] = sent.messages as [Uint8Array, Uint8Array, Uint8Array];
    expect(seen).toHaveLength(6);
    expect(seen.every(zero)).toBe(true);
    seen.length = 0;
    // In order, then one skipped ahead (its skipped key is kept), then the skipped one.
    let s = groupDecrypt(watching, bob, ALICE, m0).state;
    s = groupDecrypt(watching, s, ALICE, m2).state;
    expect(untext(groupDecrypt(watching, s, ALICE, m1).plaintext)).toBe('m1');
    expect(seen).toHaveLength(6);
    expect(seen.every(zero)).toBe(true);
    // A refusal after the chain stepped (a wrong tag under a valid signature cannot be
    // made without the signing key, so the AEAD itself refuses here).
    seen.length = 0;
    const refusing: CryptoProvider = {
      ...watching,
      aes256gcm: {
        ...watching.aes256gcm,
        decrypt: (k) => (seen.push(k), aead.decrypt(k, new Uint8Array(12), new Uint8Array(16))),
      },
    };
    const later = groupEncrypt(crypto, sent.chain, ALICE, text('later'));
    const before = serializeIncomingSenderChains(s);
    expect(code(() => groupDecrypt(refusing, s, ALICE, later.message))).toBe('INVALID_MESSAGE');
    expect(seen.every(zero)).toBe(true);
    expect(serializeIncomingSenderChains(s)).toEqual(before);
    expect(untext(groupDecrypt(crypto, s, ALICE, later.message).plaintext)).toBe('later');
  });

  it('destroySenderChain wipes every secret of an outgoing or incoming state', () => {
    const { out, bob } = pair(crypto);
    const { messages } = send(crypto, out, 3);
    const held = groupDecrypt(crypto, bob, ALICE, messages[2] as Uint8Array).state;
    const zero = (b: Uint8Array) => b.every((x) => x === 0);
    const saved = serializeIncomingSenderChains(held);
    destroySenderChain(out);
    destroySenderChain(held);
    expect(zero(out.chainKey) && zero(out.signingSecret)).toBe(true);
    expect(serializeIncomingSenderChains(held)).not.toEqual(saved);
    const restored = deserializeIncomingSenderChains(serializeIncomingSenderChains(held));
    // What the skipped keys were is gone: message 0 no longer opens.
    expect(code(() => groupDecrypt(crypto, restored, ALICE, messages[0] as Uint8Array))).toBe(
      'INVALID_MESSAGE',
    );
    const intact = deserializeIncomingSenderChains(saved);
    expect(untext(groupDecrypt(crypto, intact, ALICE, messages[0] as Uint8Array).plaintext)).toBe(
      'm0',
    );
  });

  it('prints no secret', () => {
    const { out, bob } = pair(crypto);
    const shown = [out, bob]
      .flatMap((x) => [String(x), JSON.stringify(x), inspect(x, { depth: 9 })])
      .join(' ');
    const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
    expect(shown).not.toContain(hex(out.chainKey));
    expect(shown).not.toContain(hex(out.signingSecret));
    expect(shown).toContain(String(out.chainId));
  });
});

/**
 * The chain `n` iterations on, built from its saved bytes with the chain KDF of
 * docs/protocol.md §18.2 (CK' = HMAC(CK, 0x02)) instead of n signed messages.
 */
class OutgoingJump {
  readonly chain: OutgoingSenderChain;
  constructor(start: OutgoingSenderChain, n: number) {
    const crypto = seeded(1);
    const bytes = serializeOutgoingSenderChain(start);
    let ck: Uint8Array = bytes.slice(26, 58);
    for (let i = 0; i < n; i++) ck = crypto.hmacSha256(ck, Uint8Array.of(2));
    new DataView(bytes.buffer).setUint32(22, start.iteration + n);
    bytes.set(ck, 26);
    this.chain = deserializeOutgoingSenderChain(bytes);
  }
}

interface Person {
  identity: IdentityKeyPair;
  address: Address;
}

describe('signed group membership', () => {
  const crypto = seeded(43);
  const mk = (address: Address): Person => ({
    identity: IdentityKeyPair.generate(crypto),
    address,
  });
  const alice = mk(ALICE);
  const bob = mk(BOB);
  const carol = mk(CAROL);
  const member = (p: Person, role: GroupMember['role'] = 'member'): GroupMember => ({
    address: p.address,
    identityKey: p.identity.publicIdentity.signingKey,
    role,
  });

  it('creates, adds, renames, removes and leaves; every member re-derives the same state', () => {
    const created = createGroup(crypto, alice, { name: 'team', members: [member(bob)] });
    const added = addGroupMembers(crypto, alice, created.state, [member(carol)]);
    const renamed = renameGroup(crypto, alice, added.state, 'team 2');
    const removed = removeGroupMembers(crypto, alice, renamed.state, [BOB]);
    const left = leaveGroup(crypto, carol, removed.state);
    let s = applyGroupChange(crypto, undefined, created.change);
    for (const c of [added, renamed, removed, left]) s = applyGroupChange(crypto, s, c.change);
    expect(s).toEqual(left.state);
    expect(s.epoch).toBe(4);
    expect(s.name).toBe('team 2');
    expect(s.members.map((m) => m.address.userId)).toEqual(['alice']);
    expect(s.lastRemovalEpoch).toBe(4);
    expect(removed.state.lastRemovalEpoch).toBe(3);
    expect(decodeGroupState(crypto, encodeGroupState(s))).toEqual(s);
  });

  it('drops and wipes the incoming chains of members taken out, keeps the others', () => {
    const created = createGroup(crypto, alice, {
      name: 'g',
      members: [member(bob), member(carol)],
    });
    const chainOf = () =>
      createSenderChain(crypto, created.state.groupId, { nowMs: NOW, epoch: 0 });
    const fromBob = processSenderKeyDistribution(
      undefined,
      BOB,
      encodeSenderKeyDistribution(chainOf()),
    );
    const fromCarol = processSenderKeyDistribution(
      undefined,
      CAROL,
      encodeSenderKeyDistribution(chainOf()),
    );
    const carolSaved = serializeIncomingSenderChains(fromCarol);
    const other = processSenderKeyDistribution(
      undefined,
      CAROL,
      encodeSenderKeyDistribution(createSenderChain(crypto, GROUP, { nowMs: NOW, epoch: 0 })),
    );
    const removed = removeGroupMembers(crypto, alice, created.state, [BOB]);
    // A state of another group is refused before anything is wiped.
    expect(code(() => dropDepartedSenderChains(removed.state, [fromBob, other]))).toBe(
      'INVALID_ARGUMENT',
    );
    const bobChainKey = deserializeIncomingSenderChains(serializeIncomingSenderChains(fromBob));
    expect(dropDepartedSenderChains(created.state, [fromBob, fromCarol]).dropped).toEqual([]);
    const { kept, dropped } = dropDepartedSenderChains(removed.state, [fromBob, fromCarol]);
    expect(kept).toEqual([fromCarol]);
    expect(dropped).toEqual([fromBob]);
    expect(serializeIncomingSenderChains(fromBob)).not.toEqual(
      serializeIncomingSenderChains(bobChainKey),
    );
    expect(
      serializeIncomingSenderChains(fromBob)
        .subarray(-68, -36)
        .every((b) => b === 0),
    ).toBe(true);
    expect(serializeIncomingSenderChains(fromCarol)).toEqual(carolSaved);
  });

  it('refuses changes that do not chain: replayed, skipped ahead, forked, other group', () => {
    const created = createGroup(crypto, alice, { name: 'g', members: [member(bob)] });
    const a1 = addGroupMembers(crypto, alice, created.state, [member(carol)]);
    const r1 = renameGroup(crypto, alice, created.state, 'fork'); // also epoch 1, same parent
    const r2 = renameGroup(crypto, alice, a1.state, 'two');
    expect(code(() => applyGroupChange(crypto, a1.state, a1.change))).toBe('GROUP_CHAIN_MISMATCH');
    expect(code(() => applyGroupChange(crypto, created.state, r2.change))).toBe(
      'GROUP_CHAIN_MISMATCH',
    );
    expect(code(() => applyGroupChange(crypto, a1.state, r1.change))).toBe('GROUP_CHAIN_MISMATCH');
    const other = createGroup(crypto, alice, { name: 'h', members: [member(bob)] });
    const o1 = renameGroup(crypto, alice, other.state, 'x');
    expect(code(() => applyGroupChange(crypto, created.state, o1.change))).toBe(
      'GROUP_CHAIN_MISMATCH',
    );
    expect(code(() => applyGroupChange(crypto, created.state, created.change))).toBe(
      'GROUP_CHAIN_MISMATCH',
    );
  });

  it('refuses a change by a non-admin, by a non-member, or with a bad signature', () => {
    const created = createGroup(crypto, alice, { name: 'g', members: [member(bob)] });
    expect(code(() => addGroupMembers(crypto, bob, created.state, [member(carol)]))).toBe(
      'NOT_AUTHORIZED',
    );
    expect(code(() => renameGroup(crypto, carol, created.state, 'mine'))).toBe('NOT_AUTHORIZED');
    // Carol signs in Bob's name with her own key.
    const impostor = { identity: carol.identity, address: BOB };
    expect(code(() => leaveGroup(crypto, impostor, created.state))).toBe('INVALID_SIGNATURE');
    const good = renameGroup(crypto, alice, created.state, 'ok');
    const bad = good.change.slice();
    bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 1;
    expect(code(() => applyGroupChange(crypto, created.state, bad))).toBe('INVALID_SIGNATURE');
    const badName = good.change.slice();
    badName[badName.length - 65] = (badName[badName.length - 65] as number) ^ 1;
    expect(code(() => applyGroupChange(crypto, created.state, badName))).toBe('INVALID_SIGNATURE');
    expect(applyGroupChange(crypto, created.state, good.change).name).toBe('ok');
  });

  it('a member (not admin) may leave; the sole admin leaving hands the role to the first member', () => {
    const created = createGroup(crypto, alice, {
      name: 'g',
      members: [member(bob), member(carol)],
    });
    const bobLeft = leaveGroup(crypto, bob, created.state);
    expect(bobLeft.state.members.map((m) => m.address.userId)).toEqual(['alice', 'carol']);
    const aliceLeft = leaveGroup(crypto, alice, bobLeft.state);
    expect(aliceLeft.state.members).toEqual([member(carol, 'admin')]);
    expect(renameGroup(crypto, carol, aliceLeft.state, 'c').state.name).toBe('c');
  });

  it('refuses malformed change bytes and state bytes', () => {
    const created = createGroup(crypto, alice, { name: 'g', members: [member(bob)] });
    const r = renameGroup(crypto, alice, created.state, 'n').change;
    expect(code(() => applyGroupChange(crypto, created.state, r.subarray(0, r.length - 1)))).toBe(
      'INVALID_MESSAGE',
    );
    expect(code(() => applyGroupChange(crypto, created.state, Uint8Array.of(...r, 0)))).toBe(
      'INVALID_MESSAGE',
    );
    const kind = r.slice();
    kind[2] = 9;
    expect(code(() => applyGroupChange(crypto, created.state, kind))).toBe('INVALID_MESSAGE');
    const bytes = encodeGroupState(created.state);
    expect(code(() => decodeGroupState(crypto, bytes.subarray(0, bytes.length - 1)))).toBe(
      'INVALID_STATE',
    );
  });

  it('refuses impossible changes with a named argument', () => {
    const created = createGroup(crypto, alice, { name: 'g', members: [member(bob)] });
    expect(code(() => addGroupMembers(crypto, alice, created.state, [member(bob)]))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(code(() => removeGroupMembers(crypto, alice, created.state, [CAROL]))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(code(() => removeGroupMembers(crypto, alice, created.state, [ALICE]))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(code(() => createGroup(crypto, alice, { name: 'x'.repeat(129), members: [] }))).toBe(
      'INVALID_ARGUMENT',
    );
  });
});

describe('sender chain rotation', () => {
  const crypto = createNodeCrypto({ random: createSeededRandom(new Uint8Array(32).fill(5)) });
  const alice = { identity: IdentityKeyPair.generate(crypto), address: ALICE };
  const bob = { identity: IdentityKeyPair.generate(crypto), address: BOB };
  const created = createGroup(crypto, alice, {
    name: 'g',
    members: [
      { address: BOB, identityKey: bob.identity.publicIdentity.signingKey, role: 'member' },
    ],
  });

  it('is due after a removal, after GROUP_ROTATE_AFTER_MESSAGES, after GROUP_ROTATE_AFTER_MS', () => {
    const gid = created.state.groupId;
    const chain = createSenderChain(crypto, gid, { nowMs: NOW, epoch: 0 });
    expect(senderChainRotationDue(chain, created.state, NOW)).toBeUndefined();
    expect(
      senderChainRotationDue(chain, created.state, NOW + GROUP_ROTATE_AFTER_MS - 1),
    ).toBeUndefined();
    expect(senderChainRotationDue(chain, created.state, NOW + GROUP_ROTATE_AFTER_MS)).toBe(
      'age-limit',
    );
    const renamed = renameGroup(crypto, alice, created.state, 'n');
    expect(senderChainRotationDue(chain, renamed.state, NOW)).toBeUndefined();
    const removed = removeGroupMembers(crypto, alice, renamed.state, [BOB]);
    expect(senderChainRotationDue(chain, removed.state, NOW)).toBe('member-removed');
    const fresh = createSenderChain(crypto, gid, { nowMs: NOW, epoch: removed.state.epoch });
    expect(senderChainRotationDue(fresh, removed.state, NOW)).toBeUndefined();
    let c = fresh;
    for (let i = 0; i < GROUP_ROTATE_AFTER_MESSAGES; i++)
      c = groupEncrypt(crypto, c, ALICE, new Uint8Array(0)).chain;
    expect(senderChainRotationDue(c, removed.state, NOW)).toBe('message-limit');
  });
});
