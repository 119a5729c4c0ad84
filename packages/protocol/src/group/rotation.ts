/**
 * When a sender must start a new chain (§18.9). Pure: the clock is an argument.
 *
 * Owns: the rotation decision. The caller makes the new chain and distributes it to
 * the members of the current state only, so a removed member never gets it.
 */
import { ProtocolError } from '../errors.js';
import { GROUP_ROTATE_AFTER_MESSAGES, GROUP_ROTATE_AFTER_MS } from './constants.js';
import type { GroupMembership } from './membership.js';
import { sameBytes, type OutgoingSenderChain } from './sender-chain.js';

/** Why a chain must be replaced before the next message. */
export type RotationReason = 'member-removed' | 'message-limit' | 'age-limit';

/**
 * The reason `chain` must be replaced before it encrypts again, or undefined if it may
 * go on. Removal wins: after any change that removed someone (epoch later than the
 * chain's), the removed member holds the chain key and could read on.
 */
export function senderChainRotationDue(
  chain: OutgoingSenderChain,
  membership: GroupMembership,
  nowMs: number,
): RotationReason | undefined {
  if (!sameBytes(chain.groupId, membership.groupId)) {
    throw new ProtocolError(
      'INVALID_ARGUMENT',
      'membership: state of another group than the chain',
    );
  }
  if (membership.lastRemovalEpoch > chain.createdAtEpoch) return 'member-removed';
  if (chain.iteration >= GROUP_ROTATE_AFTER_MESSAGES) return 'message-limit';
  if (nowMs - chain.createdAtMs >= GROUP_ROTATE_AFTER_MS) return 'age-limit';
  return undefined;
}
