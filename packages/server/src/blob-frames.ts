/**
 * The attachment frames of one connection (docs/wire.md §4.2, `blob.*`): uploads that
 * start or resume with `blob.begin`, chunks written in durable batches and acknowledged
 * with `blob.status`, and downloads streamed as `blob.data` at the pace the socket takes.
 *
 * Owns: per-connection upload state, the size/quota checks and their audit records.
 * The session hands frames over and supplies the connection through `BlobFramesDeps`.
 */
import {
  blobChunkCapacity,
  MAX_BLOB_CHUNKS_IN_FLIGHT,
  type ClientFrame,
  type ServerFrame,
} from '@parley/wire';
import { toHex } from '@parley/crypto';
import type { AuditEvent } from './audit.js';
import type { AttachmentLimits } from './config.js';
import { BLOB_WRITE_BATCH, MAX_SEND_BUFFER_BYTES } from './limits.js';
import { blobBytes, type BlobStore } from './blobs/types.js';

type BlobFrame = Extract<ClientFrame, { type: 'blob.begin' | 'blob.chunk' | 'blob.fetch' }>;
type BeginFrame = Extract<BlobFrame, { type: 'blob.begin' }>;
type ChunkFrame = Extract<BlobFrame, { type: 'blob.chunk' }>;
type FetchFrame = Extract<BlobFrame, { type: 'blob.fetch' }>;

/** Chunks read from storage per step of a download. */
const READ_BATCH = 64;
/** Appends of one upload at a time: one syncing while the next is written. */
const APPENDS_IN_FLIGHT = 2;
/** How long a download waits before re-checking a full send buffer. */
const DRAIN_POLL_MS = 5;

export interface BlobFramesDeps {
  readonly store: BlobStore;
  readonly limits: AttachmentLimits;
  readonly blockBytes: number;
  readonly now: () => number;
  /** The authenticated identity name. */
  readonly identity: () => string;
  readonly send: (frame: ServerFrame) => void;
  readonly bufferedAmount: () => number;
  readonly isOpen: () => boolean;
  readonly audit: (event: Omit<AuditEvent, 'remote' | 'identity'>) => void;
  /** Ends the connection for a protocol violation (audited by the session). */
  readonly violation: (code: string) => void;
}

interface Upload {
  /** The latest `blob.begin` of this upload, which its statuses answer. */
  requestId: number;
  readonly blobId: Uint8Array;
  readonly chunkCount: number;
  readonly chunkBytes: number;
  /** Next index the relay accepts (stored + waiting to be written). */
  next: number;
  /** Chunks handed to the store (durable or being made so). */
  appended: number;
  stored: number;
  pending: Uint8Array[];
  flushing: boolean;
  /** An append failed: the upload is over on this connection. */
  failed: boolean;
  /** Appends handed to the store and not yet ended. */
  inFlight: number;
}

export class BlobFrames {
  readonly #deps: BlobFramesDeps;
  readonly #uploads = new Map<string, Upload>();

  constructor(deps: BlobFramesDeps) {
    this.#deps = deps;
  }

  /** Handles one `blob.*` frame. Chunk frames return at once; their writes are batched. */
  async handle(frame: BlobFrame): Promise<void> {
    switch (frame.type) {
      case 'blob.begin':
        return this.#begin(frame);
      case 'blob.chunk':
        return this.#chunk(frame);
      case 'blob.fetch':
        return this.#fetch(frame);
    }
  }

  async #begin(frame: BeginFrame): Promise<void> {
    const d = this.#deps;
    const id = toHex(frame.blobId);
    const bytes = blobBytes(frame);
    const refuse = (code: 'failed' | 'bad_request' | 'too_large' | 'rate_limited'): void =>
      d.send({ type: 'error', code, requestId: frame.requestId });
    if (
      frame.chunkCount < 1 ||
      frame.chunkBytes < 1 ||
      frame.chunkBytes > blobChunkCapacity(d.blockBytes)
    ) {
      return refuse('bad_request');
    }
    if (bytes > d.limits.maxBlobBytes) {
      d.audit({ type: 'blob.refused', code: 'too-large', value: bytes });
      return refuse('too_large');
    }
    const result = await d.store.begin({
      id,
      owner: d.identity(),
      chunkCount: frame.chunkCount,
      chunkBytes: frame.chunkBytes,
      now: d.now(),
      ttlMs: d.limits.ttlMs,
      quotaBytes: d.limits.quotaBytesPerIdentity,
    });
    if (!result.ok) {
      if (result.reason === 'over-quota') {
        d.audit({ type: 'blob.refused', code: 'over-quota', value: result.used + bytes });
        return refuse('rate_limited');
      }
      return refuse('failed');
    }
    const stored = result.blob.chunksStored;
    // A repeated begin while chunks are being written resumes after what is accepted; the
    // running appends update the record they hold, so that one stays.
    let upload = this.#uploads.get(id);
    if (upload) upload.requestId = frame.requestId;
    else {
      upload = {
        requestId: frame.requestId,
        blobId: frame.blobId,
        chunkCount: frame.chunkCount,
        chunkBytes: frame.chunkBytes,
        next: stored,
        appended: stored,
        stored,
        pending: [],
        flushing: false,
        failed: false,
        inFlight: 0,
      };
      this.#uploads.set(id, upload);
    }
    this.#status(upload);
    if (stored === frame.chunkCount) this.#uploads.delete(id);
  }

  #status(u: Upload): void {
    this.#deps.send({
      type: 'blob.status',
      requestId: u.requestId,
      blobId: u.blobId,
      chunkCount: u.chunkCount,
      chunkBytes: u.chunkBytes,
      chunksStored: u.stored,
    });
  }

  #chunk(frame: ChunkFrame): void {
    const u = this.#uploads.get(toHex(frame.blobId));
    if (!u) return this.#deps.violation('blob-not-begun');
    if (frame.index !== u.next) return this.#deps.violation('blob-chunk-order');
    if (frame.data.length !== u.chunkBytes) return this.#deps.violation('blob-chunk-size');
    // Beyond the window clients keep to: this relay would buffer without bound.
    if (u.next - u.stored >= MAX_BLOB_CHUNKS_IN_FLIGHT) return this.#deps.violation('blob-window');
    u.next++;
    u.pending.push(frame.data);
    if (!u.flushing && u.inFlight < APPENDS_IN_FLIGHT) {
      u.flushing = true;
      // Chunks that arrived in the same read are written together.
      setImmediate(() => this.#flush(u));
    }
  }

  /**
   * Hands the waiting chunks to the store without waiting for the previous append to end:
   * while one batch syncs, the next is written (group commit, blobs/sqlite-files.ts).
   * At most `APPENDS_IN_FLIGHT` appends run; chunks arriving meanwhile wait and go in the
   * next one, so batches stay large. Never acknowledges a chunk the store has not made
   * durable.
   */
  #flush(u: Upload): void {
    const d = this.#deps;
    const id = toHex(u.blobId);
    u.flushing = false;
    while (u.pending.length > 0 && !u.failed && u.inFlight < APPENDS_IN_FLIGHT) {
      const batch = u.pending.splice(0, BLOB_WRITE_BATCH);
      const from = u.appended;
      u.appended += batch.length;
      u.inFlight++;
      d.store.append(id, from, batch).then(
        (stored) => {
          u.inFlight--;
          if (u.failed) return;
          u.stored = Math.max(u.stored, stored);
          if (u.stored === u.chunkCount && this.#uploads.get(id) === u) this.#uploads.delete(id);
          this.#status(u);
          this.#flush(u);
        },
        () => {
          u.inFlight--;
          if (u.failed) return;
          // The client begins again and resumes from what the store holds.
          u.failed = true;
          if (this.#uploads.get(id) === u) this.#uploads.delete(id);
          d.send({ type: 'error', code: 'server_error', requestId: u.requestId });
        },
      );
    }
  }

  async #fetch(frame: FetchFrame): Promise<void> {
    const d = this.#deps;
    const id = toHex(frame.blobId);
    const meta = await d.store.get(id, d.now());
    if (!meta || meta.chunksStored < meta.chunkCount || frame.fromIndex > meta.chunkCount) {
      d.send({ type: 'error', code: 'failed', requestId: frame.requestId });
      return;
    }
    d.send({
      type: 'blob.status',
      requestId: frame.requestId,
      blobId: frame.blobId,
      chunkCount: meta.chunkCount,
      chunkBytes: meta.chunkBytes,
      chunksStored: meta.chunksStored,
    });
    // Streamed outside the session's frame queue, so acks and messages keep flowing.
    void this.#stream(frame.blobId, id, frame.fromIndex, meta.chunkCount).catch(() => {
      if (d.isOpen()) d.send({ type: 'error', code: 'server_error', requestId: frame.requestId });
    });
  }

  async #stream(blobId: Uint8Array, id: string, from: number, count: number): Promise<void> {
    const d = this.#deps;
    for (let i = from; i < count && d.isOpen();) {
      while (d.bufferedAmount() > MAX_SEND_BUFFER_BYTES && d.isOpen()) {
        await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
      }
      const chunks = await d.store.read(id, i, READ_BATCH);
      if (chunks.length === 0) throw new Error('blob vanished');
      for (const data of chunks) d.send({ type: 'blob.data', blobId, index: i++, data });
    }
  }
}
