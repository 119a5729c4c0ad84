/**
 * Body encoding inside the AEAD: optional deflate compression (M33), then padding so
 * that every envelope is a whole number of `ENVELOPE_UNIT_BYTES` (M28).
 *
 * Padded body layout (protocol.md §Body):
 *   format u8 (0 = stored, 1 = deflate-raw)
 *   stored:  length u32 ‖ content
 *   deflate: length u32 (compressed) ‖ original length u32 ‖ compressed content
 *   then zero bytes up to the target size (checked on receipt).
 *
 * Compression happens before encryption and inside the padding, so the envelope size
 * reveals only the block count of the compressed body (a CRIME-style length oracle is
 * limited to one bit per `ENVELOPE_UNIT_BYTES`).
 */
import { deflateSync, inflateSync } from 'fflate';
import { COMPRESSION_MIN_BYTES, ENVELOPE_UNIT_BYTES, MAX_PLAINTEXT_BYTES } from './constants.js';
import { ByteReader } from './encoding.js';
import { invalidMessage, ProtocolError } from './errors.js';

const FORMAT_STORED = 0;
const FORMAT_DEFLATE = 1;
/** Bytes of body framing before the content: format + length (+ original length). */
export const BODY_HEADER_BYTES = 5;
const DEFLATE_HEADER_BYTES = 9;

/** Frames (and maybe compresses) a plaintext; padding is added by {@link padBody}. */
export function encodeBody(plaintext: Uint8Array): Uint8Array {
  if (plaintext.length > MAX_PLAINTEXT_BYTES) {
    throw new ProtocolError('MESSAGE_TOO_LARGE', `plaintext: at most ${MAX_PLAINTEXT_BYTES} bytes`);
  }
  if (plaintext.length >= COMPRESSION_MIN_BYTES) {
    const packed = deflateSync(plaintext, { level: 6 });
    if (packed.length + DEFLATE_HEADER_BYTES < plaintext.length + BODY_HEADER_BYTES) {
      const out = new Uint8Array(DEFLATE_HEADER_BYTES + packed.length);
      out[0] = FORMAT_DEFLATE;
      writeU32(out, 1, packed.length);
      writeU32(out, 5, plaintext.length);
      out.set(packed, DEFLATE_HEADER_BYTES);
      return out;
    }
  }
  const out = new Uint8Array(BODY_HEADER_BYTES + plaintext.length);
  out[0] = FORMAT_STORED;
  writeU32(out, 1, plaintext.length);
  out.set(plaintext, BODY_HEADER_BYTES);
  return out;
}

function writeU32(b: Uint8Array, off: number, v: number): void {
  b[off] = v >>> 24;
  b[off + 1] = (v >>> 16) & 0xff;
  b[off + 2] = (v >>> 8) & 0xff;
  b[off + 3] = v & 0xff;
}

/**
 * Size of an envelope whose non-body part is `overheadBytes` (including the AEAD
 * tag) and whose framed body is `framedBytes`: the next multiple of the unit.
 */
export function paddedEnvelopeBytes(
  overheadBytes: number,
  framedBytes: number,
  unitBytes = ENVELOPE_UNIT_BYTES,
): number {
  const raw = overheadBytes + framedBytes;
  return Math.ceil(raw / unitBytes) * unitBytes;
}

/** Zero-pads a framed body to `targetBytes`. */
export function padBody(framed: Uint8Array, targetBytes: number): Uint8Array {
  const out = new Uint8Array(targetBytes);
  out.set(framed);
  return out;
}

/** Removes padding and decompresses. Any inconsistency is `INVALID_MESSAGE`. */
export function decodeBody(padded: Uint8Array): Uint8Array {
  const r = new ByteReader(padded);
  const format = r.u8();
  let content: Uint8Array;
  let end: number;
  if (format === FORMAT_STORED) {
    const n = r.u32();
    if (n > MAX_PLAINTEXT_BYTES || n > r.remaining) throw invalidMessage();
    content = padded.slice(BODY_HEADER_BYTES, BODY_HEADER_BYTES + n);
    end = BODY_HEADER_BYTES + n;
  } else if (format === FORMAT_DEFLATE) {
    const n = r.u32();
    const original = r.u32();
    if (n > r.remaining || original > MAX_PLAINTEXT_BYTES) throw invalidMessage();
    // A fixed output buffer caps the work a compression bomb can cause.
    const out = new Uint8Array(original);
    let inflated: Uint8Array;
    try {
      inflated = inflateSync(padded.subarray(DEFLATE_HEADER_BYTES, DEFLATE_HEADER_BYTES + n), {
        out,
      });
    } catch {
      throw invalidMessage();
    }
    if (inflated.length !== original) throw invalidMessage();
    content = inflated;
    end = DEFLATE_HEADER_BYTES + n;
  } else {
    throw invalidMessage();
  }
  if (!allZero(padded, end)) throw invalidMessage();
  return content;
}

/** True when `b[from..]` is all zeros; reads aligned 32-bit words where it can (hot path). */
function allZero(b: Uint8Array, from: number): boolean {
  let acc = 0;
  let i = from;
  while (i < b.length && (b.byteOffset + i) % 4 !== 0) acc |= b[i++] as number;
  const words = (b.length - i) >>> 2;
  if (words > 0) {
    const w = new Uint32Array(b.buffer, b.byteOffset + i, words);
    for (let k = 0; k < words; k++) acc |= w[k] as number;
    i += words * 4;
  }
  while (i < b.length) acc |= b[i++] as number;
  return acc === 0;
}
