/**
 * Every default limit of the relay, named with its unit and the reason for its value.
 * All of them can be changed in the configuration file (see `config.ts`); these are
 * the values a fresh install runs with.
 */

import { FRESHNESS_WINDOW_MS, MAX_FRAME_BYTES, MAX_PAYLOAD_BYTES } from '@parley/wire';

/** Default TLS port of the relay. */
export const DEFAULT_PORT = 8443;
/** Default bind address: loopback, so a fresh install is not exposed by accident. */
export const DEFAULT_HOST = '127.0.0.1';

/**
 * Size of every WebSocket message in both directions. 4096 bytes (seed 000) hides the
 * length of typical chat messages while costing one page of memory per buffered block.
 */
export const DEFAULT_BLOCK_BYTES = 4096;

/**
 * Largest opaque payload of one relayed frame: the wire format's own bound (64 KiB,
 * 17 blocks), far beyond a typed or pasted message after compression. A relay may
 * configure less, never more.
 */
export const DEFAULT_MAX_PAYLOAD_BYTES = MAX_PAYLOAD_BYTES;

/** Largest reassembled frame: the wire format's bound (see `@parley/wire`). */
export const DEFAULT_MAX_FRAME_BYTES = MAX_FRAME_BYTES;

/**
 * TLS handshake must complete within this time (slowloris, seed 002 §8.1). 10 s is
 * ample for a TLS 1.3 handshake over a slow mobile link (2 round trips).
 */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * After TLS, a connection must authenticate (hello, then login/register) within this
 * time. 15 s leaves room for a client that has to unlock its key store first.
 */
export const DEFAULT_AUTH_TIMEOUT_MS = 15_000;

/**
 * A connection that sends nothing (not even a pong) for this long is closed. The server
 * pings at a third of it, so a live client always answers in time.
 */
export const DEFAULT_IDLE_TIMEOUT_MS = 90_000;

/**
 * Session tokens live this long; then the server demands a fresh signed challenge on
 * the same connection (re-authentication on long sessions, seed 002 §7.1). One hour
 * bounds how long a stolen session stays usable without bothering a person.
 */
export const DEFAULT_SESSION_TTL_MS = 60 * 60 * 1000;

/**
 * Live-only control frames (hello, login, register, ping) must carry a timestamp within
 * this distance of the server clock: the wire format's window (60 s, as seed 000),
 * wide enough for unsynchronised phone clocks; logins are also bound to a one-time nonce.
 */
export const DEFAULT_FRESHNESS_WINDOW_MS = FRESHNESS_WINDOW_MS;

/**
 * Connections overall. 10 000 is well inside what one Node process holds (memory per
 * idle connection is tens of KiB) and stops file-descriptor exhaustion.
 */
export const DEFAULT_MAX_CONNECTIONS = 10_000;

/**
 * Connections per identity. One device per name today; 4 allows reconnect overlap and
 * a second terminal while stopping one credential from exhausting the server.
 */
export const DEFAULT_MAX_CONNECTIONS_PER_IDENTITY = 4;

/**
 * Concurrent connections from one remote address that have not authenticated yet (from
 * TCP accept to `welcome`). Without it one machine can hold every slot of
 * {@link DEFAULT_MAX_CONNECTIONS} with half-sent handshakes. Authenticated connections do
 * not count, so this never limits how many people use one address, only how many are
 * mid-handshake at the same instant. 512 lets an office of 500 devices behind one NAT
 * address reconnect in the same instant after a relay restart (the client's backoff has
 * no jitter, so they do arrive together); a larger office loses one backoff step
 * (0.5 s) for the overflow, not access. One address then holds at most about 5 % of the
 * overall cap, so starving the relay takes some 20 addresses instead of one.
 */
export const DEFAULT_MAX_UNAUTHENTICATED_PER_ADDRESS = 512;

/**
 * Undelivered messages per recipient. 10 000 is weeks of heavy chat while capping the
 * disk one sender can make the relay hold for a recipient who never comes back.
 */
export const DEFAULT_MAX_MAILBOX_PER_RECIPIENT = 10_000;

/** Undelivered mail expires after 30 days, like mainstream messengers' server queues. */
export const DEFAULT_MAILBOX_TTL_MS = 30 * 24 * 60 * 60 * 1000;

/** How often expired mail is removed. Once a minute keeps the sweep small. */
export const DEFAULT_EXPIRY_SWEEP_MS = 60_000;

/**
 * Owners are told to upload more one-time prekeys when fewer than this many remain.
 * 10 covers a burst of new contacts before the device is back online.
 */
export const DEFAULT_LOW_PREKEY_THRESHOLD = 10;

/** One-time prekeys held per device; bounds what one device may store on the relay. */
export const MAX_ONE_TIME_PREKEYS_PER_DEVICE = 1_000;

/**
 * Rate-limit window. The seed (M7) counts "more than 10 messages in 5 s"; we keep the
 * 5 s window but count blocks, which is what actually costs the relay.
 */
export const DEFAULT_RATE_WINDOW_MS = 5_000;

/**
 * Blocks per connection per window. A person typing sends a few blocks a second; one
 * pasted maximal message is 17 blocks plus its receipts and acks. 400 lets many such
 * pastes through in one window, while a flooding script hits the limit in well under
 * a second.
 */
export const DEFAULT_MAX_BLOCKS_PER_CONNECTION = 400;

/**
 * Blocks per identity (all its connections) per window: a little over two connections'
 * worth, so reconnect overlap never trips it but many connections cannot multiply a flood.
 */
export const DEFAULT_MAX_BLOCKS_PER_IDENTITY = 1_000;

/**
 * Application messages (send and session frames) per connection per window. 100 in 5 s
 * is far above typing speed (seed default was 10, which trips on a fast typist with
 * receipts and acks on top) and still ends a message flood quickly.
 */
export const DEFAULT_MAX_MESSAGES_PER_CONNECTION = 100;

/**
 * Mailbox copies that group uploads of one connection may ask for per window (each
 * listed recipient counts, stored or not). An upload counts as one message and its
 * blocks as blocks, whatever its recipient count, so a 500-member group never trips
 * the flood limits; what a copy costs is the relay's disk, which this bounds: 10 000
 * is 20 messages to 500 members (or 50 to 200) every 5 s, well beyond a person typing
 * into a large group, while a script cannot make the relay store 500 copies of every
 * frame its message limit lets through. Beyond it an upload is refused with
 * `rate_limited` (the connection stays open; the client retries later).
 */
export const DEFAULT_MAX_GROUP_COPIES_PER_CONNECTION = 10_000;

/**
 * Join/leave notices go to every connected client only while at most this many are
 * online. Each notice is one 4 KiB block per recipient, so broadcasting costs O(N²)
 * blocks as N people connect (1000 clients: ~500 000 blocks, about 2 GB); above 256 the
 * relay stops broadcasting and clients poll `presence.list` instead.
 */
export const DEFAULT_PRESENCE_BROADCAST_MAX_ONLINE = 256;

/**
 * Largest attachment blob the relay stores, in stored (padded, encrypted) bytes. Clients
 * refuse files above 100 MiB; such a file pads to its 112 MiB size class and is stored
 * with 16 bytes of AEAD tag per chunk, so 128 MiB admits every file a client may send.
 */
export const DEFAULT_MAX_BLOB_BYTES = 128 * 1024 * 1024;

/**
 * Stored blob bytes one identity may hold at once (unexpired blobs it uploaded, counted
 * at their full declared size from `blob.begin` on, so a half-finished upload cannot
 * be used to exceed it). 1 GiB: eight maximal files in flight.
 */
export const DEFAULT_BLOB_QUOTA_BYTES_PER_IDENTITY = 1024 * 1024 * 1024;

/**
 * Blobs expire this long after their upload began, like undelivered mail: the message
 * naming the blob can wait in a mailbox for as long (DEFAULT_MAILBOX_TTL_MS).
 */
export const DEFAULT_BLOB_TTL_MS = DEFAULT_MAILBOX_TTL_MS;

/**
 * Attachment chunk blocks per connection per rate window (counted instead of the
 * block limits above, which a 30 MiB upload of ~7 800 blocks would trip). Every chunk
 * must continue an upload the relay accepted, in order, within the uploader's quota,
 * so this limit only stops a runaway loop: 64 000 chunks in 5 s is about 50 MiB/s.
 */
export const DEFAULT_MAX_CHUNKS_PER_CONNECTION = 64_000;

/**
 * Chunks of one upload the relay writes in one durable batch (one fdatasync of the blob file,
 * one index commit) before it acknowledges them with `blob.status`.
 */
export const BLOB_WRITE_BATCH = 1024;

/** Mailbox items delivered per database read while draining a backlog. */
export const MAILBOX_BATCH = 64;

/**
 * Bytes queued in a WebSocket's send buffer before the relay stops draining the
 * mailbox to it; bounds memory per slow reader (256 blocks of 4 KiB).
 */
export const MAX_SEND_BUFFER_BYTES = 1024 * 1024;

/** Pending (not yet fetched) receipts kept per sender, oldest dropped first. */
export const MAX_PENDING_RECEIPTS_PER_SENDER = 10_000;

/** WebSocket close codes the relay uses (RFC 6455 §7.4). */
export const CLOSE_POLICY = 1008;
export const CLOSE_TOO_BIG = 1009;
export const CLOSE_UNSUPPORTED = 1003;
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_TRY_AGAIN = 1013;
