/**
 * Every bound the wire format enforces, in one place, each with its unit and reason.
 * A relay may configure tighter values (block size, frame size, reassembly budget)
 * through the options of `FrameReader`/`Reassembler`; the schema bounds below are
 * part of the format and are the same for every peer.
 */

/** Block-header byte 0 for this encoding. A new encoding gets a new number. */
export const WIRE_VERSION = 1;

/** Protocol versions this build speaks, preferred (highest) last. Negotiated in `hello`. */
export const SUPPORTED_PROTOCOL_VERSIONS: readonly number[] = [1];

/**
 * Default size of every WebSocket message in both directions (M28: seed 000 pads to
 * 4096). Large enough that a typed chat message and its ratchet header fit in one
 * block; small enough that padding short messages costs little.
 */
export const BLOCK_BYTES = 4096;

/** Smallest configurable block: leaves room for the header plus any single control frame. */
export const MIN_BLOCK_BYTES = 512;

/** Largest configurable block: the header's chunk length is a u16 (65520 + 16 header bytes). */
export const MAX_BLOCK_BYTES = 65536;

/** Fixed block header: version, flags, chunk length, stream id, index, count, total length. */
export const BLOCK_HEADER_BYTES = 16;

/**
 * Largest encoded frame. Fits the largest frame the schema allows (a deliver with a
 * full `MAX_PAYLOAD_BYTES` payload, a full presence list, or a full prekey upload is
 * about 66 KiB) with room to spare; at 4096-byte blocks that is at most 33 blocks.
 */
export const MAX_FRAME_BYTES = 131072;

/**
 * Largest opaque E2EE payload in send/deliver. 64 KiB is far beyond a typed or pasted
 * chat message after compression (M33) and bounds what one frame can make the relay store.
 */
export const MAX_PAYLOAD_BYTES = 65536;

/**
 * Partial (fragmented) frames one connection may have open at once. An honest peer
 * interleaves at most a couple (a long message and a control frame); 4 leaves slack
 * while bounding per-connection state.
 */
export const MAX_PARTIAL_FRAMES = 4;

/** Bytes of incomplete fragments one connection may buffer: two maximal frames. */
export const MAX_REASSEMBLY_BYTES = 2 * MAX_FRAME_BYTES;

/**
 * A fragmented frame must complete within this time. An honest peer sends all
 * fragments back to back (33 blocks at most); 30 s tolerates a slow mobile link while
 * stopping a slowloris that trickles fragments to pin memory (M8).
 */
export const REASSEMBLY_TIMEOUT_MS = 30_000;

/**
 * Live-only control frames (hello, register, login, cert.login, resume, challenge, ping) must carry a
 * timestamp within this distance of the receiver's clock (M26; seed 000 uses 60 s).
 * Wide enough for unsynchronised phone clocks, narrow enough that a captured login
 * cannot be replayed later (it is also bound to a one-time server nonce).
 */
export const FRESHNESS_WINDOW_MS = 60_000;

/** Identity names: 1..64 bytes, the certificate CN rule (shared contract). */
export const MAX_NAME_BYTES = 64;

/** Server identity in a challenge: a DNS name is at most 253 bytes; 255 fits a u8 prefix. */
export const MAX_SERVER_ID_BYTES = 255;

/** Session tokens are random handles; 64 bytes is ample for 256-bit tokens plus a MAC. */
export const MAX_SESSION_TOKEN_BYTES = 64;

/** An Ed25519 client certificate in DER is about 400-600 bytes; 4 KiB allows long names/extensions. */
export const MAX_CERTIFICATE_BYTES = 4096;

/**
 * A CRL in DER costs about 40 bytes per revoked certificate plus ~300: 64 KiB holds
 * some 1 500 revocations and stays well inside one frame (MAX_FRAME_BYTES).
 */
export const MAX_CRL_BYTES = 65536;

/** Protocol versions a hello may offer. */
export const MAX_PROTOCOL_VERSIONS = 16;

/** One-time X25519 prekeys per upload frame (36 bytes each: 3.6 KB). Upload more in several frames. */
export const MAX_ONE_TIME_PREKEYS_PER_UPLOAD = 100;

/** One-time ML-KEM prekeys per upload frame (1252 bytes each: about 40 KB). */
export const MAX_ONE_TIME_PQ_PREKEYS_PER_UPLOAD = 32;

/** Names in one presence-list result (65 bytes each at most: about 65 KB); `truncated` says if more. */
export const MAX_PRESENCE_NAMES = 1000;

/**
 * Recipients of one `group.send` (70 bytes each at most: about 35 KB, so the frame with a
 * full payload stays under `MAX_FRAME_BYTES`). A larger group is sent as several uploads
 * of the same payload, each with its own client message id.
 */
export const MAX_GROUP_SEND_RECIPIENTS = 500;

/**
 * Attachment blob ids: 128 random bits chosen by the uploader, so an id cannot be
 * guessed and needs no round trip to obtain before the upload starts.
 */
export const BLOB_ID_BYTES = 16;

/**
 * Largest ciphertext chunk a `blob.chunk`/`blob.data` frame may carry. A chunk frame is
 * always exactly one block, so the real bound is `blobChunkCapacity(blockBytes)`; this
 * schema bound only keeps the length prefix a u16 at the largest block size.
 */
export const MAX_BLOB_CHUNK_BYTES = 65_000;

/**
 * Chunks of one upload a client may send beyond the relay's last `blob.status` (16 MiB
 * at 4096-byte blocks). Enough to keep the link busy while the relay syncs a batch to
 * disk; a relay closes a connection that sends more, which bounds what it buffers.
 */
export const MAX_BLOB_CHUNKS_IN_FLIGHT = 4096;

/** Bytes of a `blob.chunk`/`blob.data` frame around its data: code, id, index, u16 length. */
export const BLOB_CHUNK_FRAME_OVERHEAD = 1 + BLOB_ID_BYTES + 4 + 2;

/** Ed25519 public key (RFC 8032): the device identity key. */
export const IDENTITY_KEY_BYTES = 32;
/** X25519 public key (RFC 7748). */
export const X25519_PUBLIC_KEY_BYTES = 32;
/** ML-KEM-768 encapsulation key (FIPS 203, table 3). */
export const MLKEM768_PUBLIC_KEY_BYTES = 1184;
/** Ed25519 signature (RFC 8032). */
export const SIGNATURE_BYTES = 64;
/** Server challenge nonce: 256 bits, never reused. */
export const CHALLENGE_NONCE_BYTES = 32;
/** Client-chosen message id: 128 random bits, so collisions are negligible without coordination. */
export const CLIENT_MESSAGE_ID_BYTES = 16;
