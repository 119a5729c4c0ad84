/**
 * Limits, labels and type bytes of the group layer (sender keys and membership), each
 * with the reason for its value. docs/protocol.md §18 cites these names; changing one
 * is a protocol change.
 */

/** Bytes of a group id: 128 random bits, so two groups never collide by chance. */
export const GROUP_ID_BYTES = 16;

/** Byte 0 of a group message (distinct from the pairwise envelope types 0x01/0x02). */
export const GROUP_TYPE_MESSAGE = 0x03;
/** Byte 0 of a sender-key distribution (carried inside a pairwise session). */
export const GROUP_TYPE_DISTRIBUTION = 0x04;
/** Byte 0 of a signed membership change (carried inside pairwise sessions). */
export const GROUP_TYPE_CHANGE = 0x05;

/** Version byte of every group structure (byte 1), bound into every signature and AD. */
export const GROUP_VERSION = 1;

/**
 * Most message keys one incoming group message may skip in its chain. Twice the
 * rotation bound, so a whole chain's worth of lost messages is still readable, and it
 * bounds the HMAC work (~2 × 2000 HMACs) one validly signed message can cause.
 */
export const MAX_GROUP_SKIP = 2000;

/**
 * Most skipped message keys kept per sender chain (oldest dropped first): 2000 × 36
 * bytes of state per chain, the same bound as the pairwise ratchet's.
 */
export const MAX_GROUP_SKIPPED_KEYS = 2000;

/**
 * Sender chains kept per sender and group (newest first). After a rotation, messages
 * of the previous chains may still be in flight or in a mailbox; five covers several
 * rotations in a row (libsignal keeps five sender-key states too).
 */
export const MAX_STORED_SENDER_CHAINS = 5;

/**
 * A sender starts a new chain after this many messages in one. A chain key that leaks
 * reads every later message of its chain; this bounds that exposure in a busy group
 * while costing one distribution (one pairwise message per member) per 1000 messages.
 */
export const GROUP_ROTATE_AFTER_MESSAGES = 1000;

/**
 * A sender starts a new chain once its current one is this old: the same week as the
 * signed prekey rotation, so a leaked chain key of a quiet group stops working within
 * a week, at the cost of one distribution per member per week.
 */
export const GROUP_ROTATE_AFTER_MS = 7 * 24 * 60 * 60 * 1000;

/**
 * Most members of a group. The relay fans one upload out to every member (the issue
 * names 500-member groups), and a membership change lists them all: 1000 members of
 * at most 101 bytes each keep a create change near 100 KiB.
 */
export const MAX_GROUP_MEMBERS = 1000;

/** Longest group name in UTF-8 bytes (a u8 length): a title, not a description. */
export const MAX_GROUP_NAME_BYTES = 128;

/** Signature and hash domain labels of the group layer (ASCII). */
export const GROUP_LABEL = {
  messageSignature: 'Parley v1 group message',
  changeSignature: 'Parley v1 group change',
  stateHash: 'Parley v1 group state',
} as const;
