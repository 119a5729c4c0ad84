/**
 * The group layer: sender-key chains and their distribution, group messages, signed
 * membership, and the rotation rule. Specified in docs/protocol.md §18.
 */
export * from './constants.js';
export {
  IncomingSenderChains,
  OutgoingSenderChain,
  createSenderChain,
  decodeSenderKeyDistribution,
  deserializeIncomingSenderChains,
  deserializeOutgoingSenderChain,
  destroySenderChain,
  encodeSenderKeyDistribution,
  processSenderKeyDistribution,
  serializeIncomingSenderChains,
  serializeOutgoingSenderChain,
  type SenderKeyDistribution,
} from './sender-chain.js';
export {
  groupDecrypt,
  groupEncrypt,
  groupMessageBytes,
  groupMessageInfo,
  type GroupMessageInfo,
} from './group-cipher.js';
export {
  addGroupMembers,
  applyGroupChange,
  createGroup,
  decodeGroupChange,
  decodeGroupState,
  encodeGroupState,
  isGroupMember,
  leaveGroup,
  removeGroupMembers,
  renameGroup,
  type GroupChange,
  type GroupChangeKind,
  type GroupMember,
  type GroupMembership,
  type GroupRole,
  type SignedGroupChange,
} from './membership.js';
export { dropDepartedSenderChains } from './removal.js';
export { senderChainRotationDue, type RotationReason } from './rotation.js';
