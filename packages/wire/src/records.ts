/**
 * How a block travels inside TLS (M28, M42). A sender that writes several blocks at
 * once would otherwise have them packed into one TLS record of up to 16 KiB, and the
 * record sizes an observer sees would then count the blocks of each burst (a long
 * message, a prekey upload). Capping the TLS fragment at exactly one WebSocket message
 * of one block makes every record after the WebSocket upgrade the same size per
 * direction. docs/wire.md §2.1.
 */

/** Largest TLS plaintext fragment (RFC 8446 §5.1); OpenSSL refuses a larger cap. */
export const MAX_TLS_FRAGMENT_BYTES = 16384;

/**
 * Bytes of one binary WebSocket message carrying one block (RFC 6455 §5.2): 2 header
 * bytes, the extended payload length (2 bytes up to 65535, else 8), and the 4-byte
 * masking key on messages from a client (§5.3).
 */
export function blockMessageBytes(blockBytes: number, fromClient: boolean): number {
  const lengthBytes = blockBytes <= 125 ? 0 : blockBytes <= 0xffff ? 2 : 8;
  return blockBytes + 2 + lengthBytes + (fromClient ? 4 : 0);
}

/**
 * The TLS fragment cap (`TLSSocket.setMaxSendFragment`) that puts each block in a record
 * of its own. Each write of the WebSocket layer holds whole messages, so cutting it
 * into pieces of exactly one message cuts it at message boundaries. Blocks larger than
 * a TLS fragment cannot have a record each: they fill 16 KiB records, and only the
 * last record of a burst is shorter.
 */
export function tlsFragmentForBlocks(blockBytes: number, fromClient: boolean): number {
  return Math.min(MAX_TLS_FRAGMENT_BYTES, blockMessageBytes(blockBytes, fromClient));
}
