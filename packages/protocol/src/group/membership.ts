/**
 * Group membership that every member can check (§18.7): a state (group id, epoch,
 * name, members with roles, the epoch of the last removal) and signed changes
 * (create, add, remove, leave, rename). Each change names the epoch it creates and the
 * hash of the state it follows, and is signed by the identity key of a member entitled
 * to make it: an admin, or for a leave the leaver. `applyGroupChange` is the one rule
 * book; the builders below make a change and run it through that same function.
 *
 * Owns: membership bytes and rules. Knows nothing of sender keys or transport.
 */
import {
  asEd25519PublicKey,
  asEd25519Signature,
  concatBytes,
  utf8Decode,
  utf8Encode,
  type CryptoProvider,
  type Ed25519PublicKey,
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
import type { IdentityKeyPair } from '../identity.js';
import {
  GROUP_ID_BYTES,
  GROUP_LABEL,
  GROUP_TYPE_CHANGE,
  GROUP_VERSION,
  MAX_GROUP_MEMBERS,
  MAX_GROUP_NAME_BYTES,
} from './constants.js';
import { checkGroupId, sameBytes } from './sender-chain.js';

export type GroupRole = 'admin' | 'member';

export interface GroupMember {
  readonly address: Address;
  /** The member device's Ed25519 identity key: verifies the changes it signs. */
  readonly identityKey: Ed25519PublicKey;
  readonly role: GroupRole;
}

/** A checked membership state. Members are in canonical order (§18.7). */
export interface GroupMembership {
  readonly groupId: Uint8Array;
  readonly epoch: number;
  readonly name: string;
  readonly members: readonly GroupMember[];
  /** Epoch of the last change that removed someone (remove or leave); 0 if none. */
  readonly lastRemovalEpoch: number;
  /** SHA-256 over the state's canonical bytes: what the next change chains to. */
  readonly hash: Uint8Array;
}

export type GroupChangeKind = 'create' | 'add' | 'remove' | 'leave' | 'rename';
const KIND_BYTE: Readonly<Record<GroupChangeKind, number>> = {
  create: 1,
  add: 2,
  remove: 3,
  leave: 4,
  rename: 5,
};
const KIND_OF = new Map(Object.entries(KIND_BYTE).map(([k, v]) => [v, k as GroupChangeKind]));
const ROLE_BYTE: Readonly<Record<GroupRole, number>> = { member: 0, admin: 1 };

const CHANGE_LABEL = utf8Encode(GROUP_LABEL.changeSignature);
const STATE_LABEL = utf8Encode(GROUP_LABEL.stateHash);
const ZERO_HASH = new Uint8Array(32);
const STATE_FORMAT = 1;

/** A parsed (not yet applied) membership change. */
export interface GroupChange {
  readonly kind: GroupChangeKind;
  readonly groupId: Uint8Array;
  readonly epoch: number;
  readonly prevHash: Uint8Array;
  readonly signer: Address;
  readonly name?: string | undefined;
  readonly members?: readonly GroupMember[] | undefined;
  readonly removed?: readonly Address[] | undefined;
  /** The bytes the signature covers (after the label). */
  readonly signed: Uint8Array;
  readonly signature: Uint8Array;
}

function compareAddress(a: Address, b: Address): number {
  const x = utf8Encode(a.userId);
  const y = utf8Encode(b.userId);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  if (x.length !== y.length) return x.length - y.length;
  return a.deviceId - b.deviceId;
}

const keyOf = (a: Address): string => `${a.deviceId}:${a.userId}`;

function checkName(name: string, code: 'INVALID_ARGUMENT' | 'INVALID_MESSAGE'): Uint8Array {
  const b = utf8Encode(name);
  if (b.length > MAX_GROUP_NAME_BYTES) {
    throw new ProtocolError(
      code,
      code === 'INVALID_MESSAGE'
        ? 'invalid message'
        : `name: at most ${MAX_GROUP_NAME_BYTES} bytes of UTF-8`,
    );
  }
  return b;
}

function writeMember(w: ByteWriter, m: GroupMember): void {
  writeAddress(w, m.address);
  w.bytes(m.identityKey).u8(ROLE_BYTE[m.role]);
}

/** An address whose userId is 1..MAX_USER_ID_BYTES bytes, as every builder writes. */
function readValidAddress(r: ByteReader): Address {
  const a = readAddress(r);
  try {
    checkAddress('address', a);
  } catch {
    throw new ProtocolError('INVALID_MESSAGE', 'invalid message');
  }
  return a;
}

function readMember(r: ByteReader): GroupMember {
  const address = readValidAddress(r);
  const identityKey = asEd25519PublicKey(r.bytes(32));
  const role = r.u8();
  if (role > 1) throw new ProtocolError('INVALID_MESSAGE', 'invalid message');
  return { address, identityKey, role: role === 1 ? 'admin' : 'member' };
}

/** Canonical state bytes (§18.7); `decodeGroupState` reads them back. */
export function encodeGroupState(s: Omit<GroupMembership, 'hash'>): Uint8Array {
  const w = new ByteWriter();
  const name = utf8Encode(s.name);
  w.u8(STATE_FORMAT).bytes(s.groupId).u32(s.epoch).u32(s.lastRemovalEpoch);
  w.u8(name.length).bytes(name).u16(s.members.length);
  for (const m of s.members) writeMember(w, m);
  return w.finish();
}

function withHash(crypto: CryptoProvider, s: Omit<GroupMembership, 'hash'>): GroupMembership {
  return { ...s, hash: crypto.sha256(concatBytes(STATE_LABEL, encodeGroupState(s))) };
}

/** Reads saved state bytes; malformed input is `INVALID_STATE`. */
export function decodeGroupState(crypto: CryptoProvider, bytes: Uint8Array): GroupMembership {
  const r = new ByteReader(bytes, 'INVALID_STATE');
  if (r.u8() !== STATE_FORMAT) {
    throw new ProtocolError('UNSUPPORTED_VERSION', 'group state: unsupported format version');
  }
  const groupId = r.bytes(GROUP_ID_BYTES);
  const epoch = r.u32();
  const lastRemovalEpoch = r.u32();
  const name = utf8Decode(r.bytes(r.u8()));
  const n = r.u16();
  const members: GroupMember[] = [];
  try {
    for (let i = 0; i < n; i++) members.push(readMember(r));
  } catch {
    throw new ProtocolError('INVALID_STATE', 'group state: malformed');
  }
  r.end();
  if (!canonical(members.map((m) => m.address))) {
    throw new ProtocolError('INVALID_STATE', 'group state: members out of order');
  }
  return withHash(crypto, { groupId, epoch, name, members, lastRemovalEpoch });
}

function canonical(addresses: readonly Address[]): boolean {
  for (let i = 1; i < addresses.length; i++) {
    if (compareAddress(addresses[i - 1] as Address, addresses[i] as Address) >= 0) return false;
  }
  return true;
}

/** Parses change bytes (§18.8) without applying them; malformed input is `INVALID_MESSAGE`. */
export function decodeGroupChange(bytes: Uint8Array): GroupChange {
  const r = new ByteReader(bytes);
  if (r.u8() !== GROUP_TYPE_CHANGE) throw new ProtocolError('INVALID_MESSAGE', 'invalid message');
  if (r.u8() !== GROUP_VERSION) {
    throw new ProtocolError('UNSUPPORTED_VERSION', 'group change: unsupported version');
  }
  const kind = KIND_OF.get(r.u8());
  if (!kind) throw new ProtocolError('INVALID_MESSAGE', 'invalid message');
  const groupId = r.bytes(GROUP_ID_BYTES);
  const epoch = r.u32();
  const prevHash = r.bytes(32);
  const signer = readValidAddress(r);
  let name: string | undefined;
  let members: GroupMember[] | undefined;
  let removed: Address[] | undefined;
  if (kind === 'create' || kind === 'rename') {
    const len = r.u8();
    if (len > MAX_GROUP_NAME_BYTES) throw new ProtocolError('INVALID_MESSAGE', 'invalid message');
    name = utf8Decode(r.bytes(len));
  }
  if (kind === 'create' || kind === 'add') {
    const n = r.u16();
    if (n < 1 || n > MAX_GROUP_MEMBERS)
      throw new ProtocolError('INVALID_MESSAGE', 'invalid message');
    members = [];
    for (let i = 0; i < n; i++) members.push(readMember(r));
    if (!canonical(members.map((m) => m.address))) {
      throw new ProtocolError('INVALID_MESSAGE', 'invalid message');
    }
  }
  if (kind === 'remove') {
    const n = r.u16();
    if (n < 1 || n > MAX_GROUP_MEMBERS)
      throw new ProtocolError('INVALID_MESSAGE', 'invalid message');
    removed = [];
    for (let i = 0; i < n; i++) removed.push(readValidAddress(r));
    if (!canonical(removed)) throw new ProtocolError('INVALID_MESSAGE', 'invalid message');
  }
  const signedEnd = r.offset;
  const signature = r.bytes(64);
  r.end();
  return {
    kind,
    groupId,
    epoch,
    prevHash,
    signer,
    name,
    members,
    removed,
    signed: bytes.slice(0, signedEnd),
    signature,
  };
}

/**
 * Applies signed change bytes to `state` (undefined only for a create) and returns the
 * new state; `state` is never changed. Errors: `GROUP_CHAIN_MISMATCH` (another group,
 * not the next epoch, or not chained to this state's hash), `NOT_AUTHORIZED` (the
 * signer is not a member, or not an admin for add/remove/rename), `INVALID_SIGNATURE`,
 * `INVALID_MESSAGE` (malformed, or a change that cannot apply: adding a member twice,
 * removing a non-member or oneself, exceeding `MAX_GROUP_MEMBERS`).
 *
 * A create is self-signed by its admin; a member accepts it only from the pairwise
 * session of the device it names as signer (the caller checks that binding).
 */
export function applyGroupChange(
  crypto: CryptoProvider,
  state: GroupMembership | undefined,
  bytes: Uint8Array,
): GroupMembership {
  const c = decodeGroupChange(bytes);
  const bad = (): never => {
    throw new ProtocolError('INVALID_MESSAGE', 'invalid message');
  };
  if (c.kind === 'create') {
    if (state)
      throw new ProtocolError('GROUP_CHAIN_MISMATCH', 'group change: create on an existing group');
    if (c.epoch !== 0 || !sameBytes(c.prevHash, ZERO_HASH)) {
      throw new ProtocolError('GROUP_CHAIN_MISMATCH', 'group change: create must be epoch 0');
    }
    const members = c.members ?? bad();
    const signer = members.find((m) => keyOf(m.address) === keyOf(c.signer));
    if (!signer || signer.role !== 'admin') {
      throw new ProtocolError(
        'NOT_AUTHORIZED',
        'group change: creator is not an admin of the group',
      );
    }
    verify(crypto, signer, c);
    return withHash(crypto, {
      groupId: c.groupId,
      epoch: 0,
      name: c.name ?? '',
      members,
      lastRemovalEpoch: 0,
    });
  }
  if (!state) throw new ProtocolError('GROUP_CHAIN_MISMATCH', 'group change: no state to apply to');
  if (
    !sameBytes(c.groupId, state.groupId) ||
    c.epoch !== state.epoch + 1 ||
    !sameBytes(c.prevHash, state.hash)
  ) {
    throw new ProtocolError('GROUP_CHAIN_MISMATCH', 'group change: does not follow this state');
  }
  const signer = state.members.find((m) => keyOf(m.address) === keyOf(c.signer));
  if (!signer) throw new ProtocolError('NOT_AUTHORIZED', 'group change: signer is not a member');
  if (c.kind !== 'leave' && signer.role !== 'admin') {
    throw new ProtocolError('NOT_AUTHORIZED', `group change: ${c.kind} needs the admin role`);
  }
  verify(crypto, signer, c);
  const next = {
    groupId: state.groupId,
    epoch: c.epoch,
    name: state.name,
    members: state.members,
    lastRemovalEpoch: state.lastRemovalEpoch,
  };
  switch (c.kind) {
    case 'rename':
      return withHash(crypto, { ...next, name: c.name ?? '' });
    case 'add': {
      const added = c.members ?? bad();
      const present = new Set(state.members.map((m) => keyOf(m.address)));
      if (added.some((m) => present.has(keyOf(m.address)))) bad();
      if (state.members.length + added.length > MAX_GROUP_MEMBERS) bad();
      const members = [...state.members, ...added].sort((a, b) =>
        compareAddress(a.address, b.address),
      );
      return withHash(crypto, { ...next, members });
    }
    case 'remove': {
      const gone = new Set((c.removed ?? bad()).map(keyOf));
      if (gone.has(keyOf(c.signer))) bad();
      const members = state.members.filter((m) => !gone.has(keyOf(m.address)));
      if (members.length !== state.members.length - gone.size) bad();
      return withHash(crypto, { ...next, members, lastRemovalEpoch: c.epoch });
    }
    case 'leave': {
      let members = state.members.filter((m) => keyOf(m.address) !== keyOf(c.signer));
      // A group is never left without an admin while it has members: the first
      // remaining member in canonical order takes the role, a rule every member can
      // compute for itself.
      const first = members[0];
      if (first && !members.some((m) => m.role === 'admin')) {
        members = [{ ...first, role: 'admin' }, ...members.slice(1)];
      }
      return withHash(crypto, { ...next, members, lastRemovalEpoch: c.epoch });
    }
  }
}

function verify(crypto: CryptoProvider, signer: GroupMember, c: GroupChange): void {
  if (
    !crypto.ed25519.verify(
      signer.identityKey,
      concatBytes(CHANGE_LABEL, c.signed),
      asEd25519Signature(c.signature),
    )
  ) {
    throw new ProtocolError('INVALID_SIGNATURE', 'group change: signature does not verify');
  }
}

/** A change made by this device and the state it leads to. */
export interface SignedGroupChange {
  /** Send to every member (and, for add, to the added ones) over pairwise sessions. */
  readonly change: Uint8Array;
  readonly state: GroupMembership;
}

interface Signer {
  readonly identity: IdentityKeyPair;
  readonly address: Address;
}

function build(
  crypto: CryptoProvider,
  signer: Signer,
  state: GroupMembership | undefined,
  kind: GroupChangeKind,
  groupId: Uint8Array,
  body: (w: ByteWriter) => void,
): SignedGroupChange {
  checkAddress('signer.address', signer.address);
  const w = new ByteWriter();
  w.u8(GROUP_TYPE_CHANGE).u8(GROUP_VERSION).u8(KIND_BYTE[kind]).bytes(groupId);
  w.u32(state ? state.epoch + 1 : 0).bytes(state ? state.hash : ZERO_HASH);
  writeAddress(w, signer.address);
  body(w);
  const signed = w.finish();
  const signature = signer.identity.sign(crypto, concatBytes(CHANGE_LABEL, signed));
  const change = concatBytes(signed, signature);
  return { change, state: applyGroupChange(crypto, state, change) };
}

function checkMembers(arg: string, members: readonly GroupMember[]): GroupMember[] {
  const sorted = [...members].sort((a, b) => compareAddress(a.address, b.address));
  sorted.forEach((m, i) => checkAddress(`${arg}[${i}].address`, m.address));
  if (!canonical(sorted.map((m) => m.address))) {
    throw new ProtocolError('INVALID_ARGUMENT', `${arg}: a member is listed twice`);
  }
  if (sorted.length < 1 || sorted.length > MAX_GROUP_MEMBERS) {
    throw new ProtocolError('INVALID_ARGUMENT', `${arg}: expected 1..${MAX_GROUP_MEMBERS} members`);
  }
  return sorted;
}

/**
 * Creates a group: draws the 16-byte group id, makes the signer an admin and lists the
 * other members as `member` unless given another role.
 */
export function createGroup(
  crypto: CryptoProvider,
  signer: Signer,
  opts: { name: string; members: readonly GroupMember[]; groupId?: Uint8Array },
): SignedGroupChange {
  const name = checkName(opts.name, 'INVALID_ARGUMENT');
  const self: GroupMember = {
    address: signer.address,
    identityKey: signer.identity.publicIdentity.signingKey,
    role: 'admin',
  };
  const members = checkMembers('members', [
    self,
    ...opts.members.filter((m) => keyOf(m.address) !== keyOf(self.address)),
  ]);
  const groupId = opts.groupId ?? crypto.randomBytes(GROUP_ID_BYTES);
  checkGroupId('groupId', groupId);
  return build(crypto, signer, undefined, 'create', groupId, (w) => {
    w.u8(name.length).bytes(name).u16(members.length);
    for (const m of members) writeMember(w, m);
  });
}

/** An admin adds members. */
export function addGroupMembers(
  crypto: CryptoProvider,
  signer: Signer,
  state: GroupMembership,
  members: readonly GroupMember[],
): SignedGroupChange {
  const sorted = checkMembers('members', members);
  const present = new Set(state.members.map((m) => keyOf(m.address)));
  const dup = sorted.find((m) => present.has(keyOf(m.address)));
  if (dup)
    throw new ProtocolError(
      'INVALID_ARGUMENT',
      `members: ${dup.address.userId} is already a member`,
    );
  return build(crypto, signer, state, 'add', state.groupId, (w) => {
    w.u16(sorted.length);
    for (const m of sorted) writeMember(w, m);
  });
}

/** An admin removes members (not itself: that is a leave). */
export function removeGroupMembers(
  crypto: CryptoProvider,
  signer: Signer,
  state: GroupMembership,
  addresses: readonly Address[],
): SignedGroupChange {
  const sorted = [...addresses].sort(compareAddress);
  if (sorted.length < 1 || !canonical(sorted)) {
    throw new ProtocolError('INVALID_ARGUMENT', 'addresses: expected distinct members');
  }
  const present = new Set(state.members.map((m) => keyOf(m.address)));
  const missing = sorted.find((a) => !present.has(keyOf(a)));
  if (missing)
    throw new ProtocolError('INVALID_ARGUMENT', `addresses: ${missing.userId} is not a member`);
  if (sorted.some((a) => keyOf(a) === keyOf(signer.address))) {
    throw new ProtocolError('INVALID_ARGUMENT', 'addresses: use leaveGroup to remove oneself');
  }
  return build(crypto, signer, state, 'remove', state.groupId, (w) => {
    w.u16(sorted.length);
    for (const a of sorted) writeAddress(w, a);
  });
}

/** The signer leaves the group. */
export function leaveGroup(
  crypto: CryptoProvider,
  signer: Signer,
  state: GroupMembership,
): SignedGroupChange {
  return build(crypto, signer, state, 'leave', state.groupId, () => {});
}

/** An admin renames the group. */
export function renameGroup(
  crypto: CryptoProvider,
  signer: Signer,
  state: GroupMembership,
  name: string,
): SignedGroupChange {
  const bytes = checkName(name, 'INVALID_ARGUMENT');
  return build(crypto, signer, state, 'rename', state.groupId, (w) => {
    w.u8(bytes.length).bytes(bytes);
  });
}

/** True when `address` is a member of `state`. */
export function isGroupMember(state: GroupMembership, address: Address): boolean {
  return state.members.some((m) => keyOf(m.address) === keyOf(address));
}
