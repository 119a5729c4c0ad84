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
import { Attachments, type AttachmentHost } from '../src/attachments.js';
import { systemTimers } from '../src/timers.js';
import type { ClientFrame } from '@parley/wire';

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

describe('transfers resume across a lost connection', () => {
  /** A scripted relay: records frames, lets the test answer and drop the connection. */
  function fakeHost() {
    const sent: ClientFrame[] = [];
    const listeners = new Set<(up: boolean) => void>();
    let up = true;
    let id = 1;
    const host: AttachmentHost = {
      crypto,
      timers: systemTimers,
      send: (f) => (up ? (sent.push(f), true) : false),
      nextRequestId: () => id++,
      isReady: () => up,
      onConnection: (l) => (listeners.add(l), () => listeners.delete(l)),
    };
    const setUp = (v: boolean): void => {
      up = v;
      for (const l of [...listeners]) l(v);
    };
    return { host, sent, setUp };
  }
  const tick = () => new Promise((r) => setImmediate(r));

  it('a download continues from the first chunk it lacks and checks the whole file', async () => {
    const { host, sent, setUp } = fakeHost();
    const sender = new Attachments(host);
    const file = crypto.randomBytes(150_000);
    const prepared = sender.prepare(file, 'f.bin', 'application/octet-stream');
    const chunks = Array.from({ length: prepared.layout.chunkCount }, (_, i) => prepared.chunk(i));
    const a = new Attachments(host);
    const got = a.download(prepared.entry);
    await tick();
    const fetch1 = sent.pop() as Extract<ClientFrame, { type: 'blob.fetch' }>;
    expect(fetch1).toMatchObject({ type: 'blob.fetch', fromIndex: 0 });
    const status = (requestId: number) => ({
      type: 'blob.status' as const,
      requestId,
      blobId: prepared.blobId,
      chunkCount: prepared.layout.chunkCount,
      chunkBytes: prepared.layout.chunkBytes,
      chunksStored: prepared.layout.chunkCount,
    });
    a.onFrame(status(fetch1.requestId));
    for (let i = 0; i < 10; i++) {
      a.onFrame({
        type: 'blob.data',
        blobId: prepared.blobId,
        index: i,
        data: chunks[i] as Uint8Array,
      });
    }
    setUp(false);
    setUp(true);
    await tick();
    const fetch2 = sent.pop() as Extract<ClientFrame, { type: 'blob.fetch' }>;
    expect(fetch2).toMatchObject({ type: 'blob.fetch', fromIndex: 10 });
    a.onFrame(status(fetch2.requestId));
    for (let i = 10; i < chunks.length; i++) {
      a.onFrame({
        type: 'blob.data',
        blobId: prepared.blobId,
        index: i,
        data: chunks[i] as Uint8Array,
      });
    }
    expect(toHex(await got)).toBe(toHex(file));
  });

  it('an upload begins again after a drop and sends only what the relay lacks', async () => {
    const { host, sent, setUp } = fakeHost();
    const a = new Attachments(host);
    const prepared = a.prepare(crypto.randomBytes(150_000), 'f.bin', 'x/y');
    const total = prepared.layout.chunkCount;
    const done = a.upload(prepared);
    await tick();
    const begin1 = sent.shift() as Extract<ClientFrame, { type: 'blob.begin' }>;
    const status = (requestId: number, chunksStored: number) => ({
      type: 'blob.status' as const,
      requestId,
      blobId: prepared.blobId,
      chunkCount: total,
      chunkBytes: prepared.layout.chunkBytes,
      chunksStored,
    });
    a.onFrame(status(begin1.requestId, 0));
    expect(sent.length).toBe(total);
    sent.length = 0;
    setUp(false); // the relay kept 7 chunks durably
    setUp(true);
    await tick();
    const begin2 = sent.shift() as Extract<ClientFrame, { type: 'blob.begin' }>;
    expect(begin2.type).toBe('blob.begin');
    a.onFrame(status(begin2.requestId, 7));
    expect(sent.map((f) => (f as { index: number }).index)).toEqual(
      Array.from({ length: total - 7 }, (_, i) => i + 7),
    );
    a.onFrame(status(begin2.requestId, total));
    expect(await done).toEqual([
      { resumedAt: 0, sent: total },
      { resumedAt: 7, sent: total - 7 },
    ]);
  });
});
