/**
 * Every limit, label and layout constant of the protocol, with the reason for its value.
 * docs/protocol.md cites these names; changing one is a protocol change.
 */

/** Protocol version carried in byte 1 of every envelope and bound into every AD. */
export const PROTOCOL_VERSION = 1;

/** Envelope byte 0: an initial message that carries the handshake (PQXDH) fields. */
export const ENVELOPE_TYPE_PREKEY = 0x01;
/** Envelope byte 0: an ordinary Double Ratchet message. */
export const ENVELOPE_TYPE_MESSAGE = 0x02;

/**
 * Most message keys skipped in one receiving chain by one incoming message. Bounds the
 * HMAC work a single (possibly forged-header-free but replayed-in-future) message can
 * cause and the loss we tolerate in one chain; 1000 lost messages in a row without a
 * reply is far beyond an ordinary outage.
 */
export const MAX_SKIP_PER_CHAIN = 1000;

/**
 * Most skipped message keys kept in one session (all chains together); the oldest are
 * dropped first. Same bound as libsignal (MAX_MESSAGE_KEYS): ~2000 × 44 bytes of state.
 */
export const MAX_SKIPPED_KEYS = 2000;

/**
 * How long a skipped message key is kept. A late message is still readable for as long
 * as a relay mailbox may hold it (30 days); after that its key is deleted for forward
 * secrecy.
 */
export const SKIPPED_KEY_LIFETIME_MS = 30 * 24 * 60 * 60 * 1000;

/**
 * Earlier receiving chains whose header keys we keep, so a replay of an already read
 * message from a recent chain is reported as `DUPLICATE_MESSAGE` rather than as an
 * unreadable message, and so skipped keys of those chains stay findable. Each costs one
 * extra header trial decryption for messages that match no current key only.
 */
export const MAX_PREVIOUS_RECEIVE_CHAINS = 8;

/**
 * Post-quantum ratchet schedule: a party advertises a fresh ML-KEM-768 key once every
 * this many of its own sending chains (DH ratchet turns), and only when no earlier key
 * of its own is still waiting for a ciphertext; the peer encapsulates to it at its next
 * turn. With both parties on this schedule one KEM round (keygen + encaps + decaps,
 * ~0.5-0.8 ms each in JavaScript here) completes about every 32 turns, which keeps
 * its amortised cost (~60 µs per message when the direction alternates) below the
 * classical ratchet's, while a state compromise is healed against a quantum adversary
 * within about 34 turns: the same order as Signal's SPQR, whose epochs also span tens
 * of messages. Measured alternatives: 4 turns cost ~520 µs/message, 16 turns ~130.
 */
export const PQ_RATCHET_INTERVAL_CHAINS = 32;

/**
 * Envelope sizes are multiples of this. The wire block is 4096 bytes; a `send` frame
 * around the envelope costs 16 (block header) + 31 + 2 × name bytes, i.e. at most 175
 * with 64-byte names (docs/wire.md), and `deliver` less. 4096 − 256 = 3840 leaves that
 * plus ~80 bytes for client framing, so an ordinary message is exactly one wire block
 * and an envelope's length reveals only how many blocks it spans.
 */
export const ENVELOPE_UNIT_BYTES = 3840;

/**
 * Largest plaintext `encrypt` accepts and largest a decompressed body may expand to
 * (a decompression bomb stops here). Attachments travel as separate encrypted blobs;
 * 1 MiB is ample for a text message.
 */
export const MAX_PLAINTEXT_BYTES = 1024 * 1024;

/**
 * Plaintexts at least this long are deflate-compressed before padding (M33) when that
 * makes them shorter. Below one block compression saves nothing on the wire (padding
 * fills the block anyway) and costs CPU, so it starts near one unit.
 */
export const COMPRESSION_MIN_BYTES = 3072;

/** One-time X25519 prekeys generated per replenishment batch (Signal uses 100). */
export const ONE_TIME_PREKEY_BATCH = 100;
/**
 * One-time ML-KEM prekeys per batch: each public key is 1184 bytes, so fewer than the
 * X25519 ones (~24 KiB per batch); when they run out the last-resort key serves.
 */
export const ONE_TIME_KEM_PREKEY_BATCH = 20;
/** Replenish a kind of one-time prekey when the relay holds fewer than this. */
export const PREKEY_REPLENISH_BELOW = 10;
/**
 * Rotate the signed X25519 prekey and the last-resort ML-KEM prekey this often: short
 * enough to limit what a later compromise of them exposes, long enough that devices
 * offline for a few days do not leave stale bundles (Signal: 2 days to 1 week).
 */
export const SIGNED_PREKEY_ROTATION_MS = 7 * 24 * 60 * 60 * 1000;
/**
 * Keep a rotated-out signed or last-resort prekey this long, so initial messages that
 * were sent with the old bundle and waited in a mailbox can still be answered.
 */
export const SIGNED_PREKEY_GRACE_MS = 30 * 24 * 60 * 60 * 1000;

/** Safety number: iterations of SHA-512 per fingerprint (as Signal: slows brute force). */
export const SAFETY_NUMBER_ITERATIONS = 5200;

/** Bytes in the address userId (UTF-8): the contract with the relay and the PKI. */
export const MAX_USER_ID_BYTES = 64;

/** Byte length of the per-message nonce (AES-256-GCM). */
export const NONCE_BYTES = 12;

/** HKDF info / signature domain labels (ASCII). */
export const LABEL = {
  identityDh: 'Parley v1 identity X25519',
  identityDhSignature: 'Parley v1 identity-dh signature',
  signedPreKeySignature: 'Parley v1 signed prekey',
  kemPreKeySignature: 'Parley v1 kem prekey',
  handshake: 'Parley_PQXDH_X25519_SHA-256_ML-KEM-768',
  ratchet: 'Parley v1 ratchet',
  ratchetKem: 'Parley v1 ratchet+kem',
  safetyNumber: 'Parley v1 safety number',
} as const;
