/**
 * Attachment encryption (docs/client.md, "Attachments"): a fresh 256-bit key per file,
 * the file padded to a size class, then cut into chunks that each fill one wire block
 * once sealed with AES-256-GCM. The nonce is the chunk index (a key never encrypts two
 * files, so index nonces never repeat); the associated data binds the blob id, the index,
 * the chunk count and a final-chunk flag, so chunks cannot be reordered, dropped, cut
 * short or moved between files without failing authentication.
 *
 * Owns: padding classes, chunk geometry and the per-chunk seal/open. Pure; no I/O.
 */
import { asAeadKey, utf8Encode, type CryptoProvider } from '@parley/crypto';
import { blobChunkCapacity } from '@parley/wire';
import { ClientError } from './errors.js';

/** AES-256-GCM tag bytes added to every chunk. */
export const ATTACHMENT_TAG_BYTES = 16;
/** Key bytes of a file key. */
export const ATTACHMENT_KEY_BYTES = 32;
/** Default largest file a client sends (plaintext bytes). */
export const DEFAULT_MAX_ATTACHMENT_BYTES = 100 * 1024 * 1024;
/** Smallest size class: files below it all look alike. */
export const MIN_PADDED_BYTES = 64 * 1024;
const AD_LABEL = utf8Encode('parley-attachment-chunk-v1');

/**
 * The size class of a file of `size` bytes: the smallest of 2^k·{1, 1.25, 1.5, 1.75}
 * (k ≥ 16) that holds it. At most 25 % overhead (under 16 % above 1 MiB on average),
 * and the relay learns only which of four classes per doubling the file is in.
 */
export function paddedSize(size: number): number {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new ClientError('INVALID_ARGUMENT', 'size: expected a byte count');
  }
  if (size <= MIN_PADDED_BYTES) return MIN_PADDED_BYTES;
  let base = MIN_PADDED_BYTES;
  while (base * 2 < size) base *= 2;
  for (const f of [1.25, 1.5, 1.75, 2]) if (base * f >= size) return base * f;
  return base * 2;
}

/** Chunk geometry of a padded file at a relay's block size. */
export interface ChunkLayout {
  /** Ciphertext bytes of every chunk (one `blob.chunk` block). */
  readonly chunkBytes: number;
  /** Plaintext bytes per chunk. */
  readonly plainBytes: number;
  readonly chunkCount: number;
}

export function chunkLayout(padded: number, blockBytes: number): ChunkLayout {
  const chunkBytes = blobChunkCapacity(blockBytes);
  const plainBytes = chunkBytes - ATTACHMENT_TAG_BYTES;
  return { chunkBytes, plainBytes, chunkCount: Math.ceil(padded / plainBytes) };
}

function nonceOf(index: number): Uint8Array {
  const n = new Uint8Array(12);
  new DataView(n.buffer).setUint32(8, index);
  return n;
}

function adOf(blobId: Uint8Array, index: number, chunkCount: number): Uint8Array {
  const ad = new Uint8Array(AD_LABEL.length + blobId.length + 9);
  ad.set(AD_LABEL);
  ad.set(blobId, AD_LABEL.length);
  const v = new DataView(ad.buffer, AD_LABEL.length + blobId.length);
  v.setUint32(0, index);
  v.setUint32(4, chunkCount);
  v.setUint8(8, index === chunkCount - 1 ? 1 : 0);
  return ad;
}

/**
 * Seals chunk `index` of the padded file `padded` (bytes past its end count as zeros,
 * so every chunk has the same length).
 */
export function sealChunk(
  crypto: CryptoProvider,
  key: Uint8Array,
  blobId: Uint8Array,
  layout: ChunkLayout,
  padded: Uint8Array,
  index: number,
): Uint8Array {
  const plain = new Uint8Array(layout.plainBytes);
  const start = index * layout.plainBytes;
  if (start < padded.length) {
    plain.set(padded.subarray(start, Math.min(padded.length, start + layout.plainBytes)));
  }
  return crypto.aes256gcm.encrypt(
    asAeadKey(key),
    nonceOf(index),
    plain,
    adOf(blobId, index, layout.chunkCount),
  );
}

/** Opens chunk `index`; a chunk that fails authentication is an `INTEGRITY` error. */
export function openChunk(
  crypto: CryptoProvider,
  key: Uint8Array,
  blobId: Uint8Array,
  layout: ChunkLayout,
  sealed: Uint8Array,
  index: number,
): Uint8Array {
  try {
    if (sealed.length !== layout.chunkBytes) throw new Error('wrong length');
    return crypto.aes256gcm.decrypt(
      asAeadKey(key),
      nonceOf(index),
      sealed,
      adOf(blobId, index, layout.chunkCount),
    );
  } catch (err) {
    throw new ClientError(
      'INTEGRITY',
      `attachment chunk ${index + 1} of ${layout.chunkCount} failed its integrity check (tampered or corrupted); nothing was saved`,
      { cause: err },
    );
  }
}
