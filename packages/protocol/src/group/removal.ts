/**
 * The receivers' side of a removal (§18.9): once a change takes members out, every
 * other member forgets what it holds to read them. The removed member still holds its
 * own old sending chain; were its incoming state kept, the others would go on reading
 * what it sends.
 *
 * Owns: which incoming states survive a membership change. Knows nothing of storage.
 */
import { ProtocolError } from '../errors.js';
import { isGroupMember, type GroupMembership } from './membership.js';
import { destroySenderChain, sameBytes, type IncomingSenderChains } from './sender-chain.js';

/**
 * Splits `held` (incoming states of one group) by `membership`, the state after a
 * change: states of senders still members are `kept`; the others are wiped
 * (`destroySenderChain`) and listed in `dropped`, so the caller deletes their saved
 * copies too. A state of another group is the caller's mistake (`INVALID_ARGUMENT`),
 * checked before anything is wiped.
 */
export function dropDepartedSenderChains(
  membership: GroupMembership,
  held: Iterable<IncomingSenderChains>,
): { kept: IncomingSenderChains[]; dropped: IncomingSenderChains[] } {
  const all = [...held];
  if (all.some((s) => !sameBytes(s.groupId, membership.groupId))) {
    throw new ProtocolError('INVALID_ARGUMENT', 'held: state of another group');
  }
  const kept: IncomingSenderChains[] = [];
  const dropped: IncomingSenderChains[] = [];
  for (const s of all) {
    if (isGroupMember(membership, s.sender)) {
      kept.push(s);
    } else {
      destroySenderChain(s);
      dropped.push(s);
    }
  }
  return { kept, dropped };
}
