/**
 * Attachment crypto and entries without a relay: chunks open only at their own place in
 * their own file, size classes, the `file` envelope, and name sanitising.
 */
import { describe, expect, it } from 'vitest';
import { createNodeCrypto } from '@parley/crypto/node';
import { toHex } from '@parley/crypto';
import { blobChunkCapacity } from '@parley/wire';
import {
  chunkLayout,
  MIN_PADDED_BYTES,
  openChunk,
  paddedSize,
  sealChunk,
} from '../src/attachment-crypto.js';
import {
  checkFileEntry,
  displayText,
  fileOfText,
  fileText,
  safeFileName,
} from '../src/attachment-entry.js';
import { decodeEnvelope, encodeEnvelope, outgoingEnvelope } from '../src/envelope.js';
import { ClientError } from '../src/errors.js';

const crypto = createNodeCrypto();

describe('attachment chunks', () => {
  const key = crypto.randomBytes(32);
  const blobId = crypto.randomBytes(16);
  const file = crypto.randomBytes(100_000);
  const layout = chunkLayout(paddedSize(file.length), 4096);
  const sealed = Array.from({ length: layout.chunkCount }, (_, i) =>
    sealChunk(crypto, key, blobId, layout, file, i),
  );

  it('fills one block per chunk and opens back to the padded file', () => {
    expect(layout.chunkBytes).toBe(blobChunkCapacity(4096));
    for (const s of sealed) expect(s.length).toBe(layout.chunkBytes);
    const plain = sealed.map((s, i) => openChunk(crypto, key, blobId, layout, s, i));
    const joined = new Uint8Array(plain.reduce((n, p) => n + p.length, 0));
    plain.reduce((off, p) => (joined.set(p, off), off + p.length), 0);
    expect(toHex(joined.subarray(0, file.length))).toBe(toHex(file));
    expect(joined.subarray(file.length).every((b) => b === 0)).toBe(true);
  });

  it('refuses a flipped byte, a swapped chunk, a chunk of another file and a cut-short file', () => {
    const integrity = (f: () => unknown): void => {
      expect(f).toThrow(ClientError);
      try {
        f();
      } catch (err) {
        expect((err as ClientError).code).toBe('INTEGRITY');
      }
    };
    const flipped = Uint8Array.from(sealed[3] as Uint8Array);
    flipped[7] = (flipped[7] as number) ^ 1;
    integrity(() => openChunk(crypto, key, blobId, layout, flipped, 3));
    integrity(() => openChunk(crypto, key, blobId, layout, sealed[4] as Uint8Array, 3));
    const otherId = crypto.randomBytes(16);
    integrity(() => openChunk(crypto, key, otherId, layout, sealed[3] as Uint8Array, 3));
    // The last chunk of a shorter file (one chunk fewer) is not this file's last chunk.
    const shorter = { ...layout, chunkCount: layout.chunkCount - 1 };
    integrity(() =>
      openChunk(
        crypto,
        key,
        blobId,
        shorter,
        sealed[layout.chunkCount - 2] as Uint8Array,
        layout.chunkCount - 2,
      ),
    );
  });

  it('pads to size classes of 2^k times 1, 1.25, 1.5 or 1.75', () => {
    expect(paddedSize(0)).toBe(MIN_PADDED_BYTES);
    expect(paddedSize(MIN_PADDED_BYTES + 1)).toBe(MIN_PADDED_BYTES * 1.25);
    expect(paddedSize(30 * 1024 * 1024)).toBe(32 * 1024 * 1024);
    expect(paddedSize(100 * 1024 * 1024)).toBe(112 * 1024 * 1024);
    for (const n of [1, 70_000, 1_000_000, 12_345_678]) {
      expect(paddedSize(n)).toBeGreaterThanOrEqual(n);
      expect(paddedSize(n)).toBeLessThanOrEqual(Math.max(MIN_PADDED_BYTES, n * 1.25));
    }
  });
});

describe('file entries', () => {
  const entry = checkFileEntry({
    blob: 'ab'.repeat(16),
    key: 'cd'.repeat(32),
    sha256: 'ef'.repeat(32),
    size: 10,
    padded: MIN_PADDED_BYTES,
    chunks: 17,
    chunkBytes: 4057,
    name: 'report.pdf',
    type: 'application/pdf',
  });

  it('travels as a `file` envelope and comes back as the history text', () => {
    const bytes = encodeEnvelope(outgoingEnvelope('00'.repeat(16), 5, fileText(entry)));
    const back = decodeEnvelope(bytes);
    expect(back.kind).toBe('file');
    expect(back.kind === 'file' && fileOfText(fileText(back.file))).toEqual(entry);
    expect(displayText(fileText(entry))).toBe('[file] report.pdf (10 B, application/pdf)');
    expect(displayText(fileText(entry))).not.toContain(entry.key);
  });

  it('a text message cannot pose as a file', () => {
    const forged = new TextEncoder().encode(
      JSON.stringify({ v: 1, t: 'msg', id: '00'.repeat(16), at: 1, body: fileText(entry) }),
    );
    expect(() => decodeEnvelope(forged)).toThrow(/malformed/);
  });

  it('sanitises names to one safe path component', () => {
    expect(safeFileName('../../etc/passwd')).toBe('passwd');
    expect(safeFileName('..\\..\\boot.ini')).toBe('boot.ini');
    expect(safeFileName('.bashrc')).toBe('bashrc');
    expect(safeFileName('a\u0000b\nc?.txt')).toBe('a_b_c_.txt');
    expect(safeFileName('...')).toBe('attachment');
  });
});
