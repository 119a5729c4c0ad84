/**
 * Attachment chunks on the block layer: a `blob.chunk` or `blob.data` frame is always
 * exactly one block, so its ciphertext is sized from the block size, and a relay can
 * tell a chunk block from others by its header and first frame byte alone (it counts
 * chunk blocks against their own rate limit, before decoding anything).
 */
import { chunkCapacity } from './blocks.js';
import { FRAME_SPECS } from './frames.js';
import { BLOB_CHUNK_FRAME_OVERHEAD, BLOCK_BYTES, BLOCK_HEADER_BYTES } from './limits.js';

/** Ciphertext bytes of one attachment chunk when blocks are `blockBytes` long. */
export function blobChunkCapacity(blockBytes: number = BLOCK_BYTES): number {
  return chunkCapacity(blockBytes) - BLOB_CHUNK_FRAME_OVERHEAD;
}

/**
 * Whether a block (already checked to be one block long) claims to hold a whole
 * `blob.chunk` frame: stream id 0, one fragment, frame code 0x12. A lie is harmless:
 * the frame is decoded and checked like any other right after.
 */
export function isBlobChunkBlock(block: Uint8Array): boolean {
  if (block.length <= BLOCK_HEADER_BYTES) return false;
  const v = new DataView(block.buffer, block.byteOffset, block.byteLength);
  return (
    v.getUint32(4) === 0 &&
    v.getUint16(10) === 1 &&
    block[BLOCK_HEADER_BYTES] === FRAME_SPECS['blob.chunk'].code
  );
}
