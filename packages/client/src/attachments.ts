/**
 * Attachment transfers over the relay (docs/client.md, "Attachments"; frames in
 * docs/wire.md §4.2): `upload` sends a prepared file's sealed chunks after `blob.begin`,
 * keeping a window of unacknowledged chunks, and after a lost connection (or a relay
 * restart) begins again and continues from the count the relay reports; `download`
 * fetches the chunks, opens each as it arrives, resumes from the last chunk it holds,
 * and returns the plaintext only once the whole file matches its SHA-256.
 *
 * Owns: the transfer state machines. Knows nothing of files on disk (the Node adapter
 * reads and saves them) and nothing of sessions (the file entry rides in a message).
 */
import { constantTimeEqual, fromHex, toHex, zeroize, type CryptoProvider } from '@parley/crypto';
import {
  BLOB_ID_BYTES,
  BLOCK_BYTES,
  MAX_BLOB_CHUNKS_IN_FLIGHT,
  type BlobDataFrame,
  type BlobStatusFrame,
  type ClientFrame,
} from '@parley/wire';
import {
  ATTACHMENT_KEY_BYTES,
  DEFAULT_MAX_ATTACHMENT_BYTES,
  chunkLayout,
  openChunk,
  paddedSize,
  sealChunk,
  type ChunkLayout,
} from './attachment-crypto.js';
import { checkFileEntry, type FileEntry } from './attachment-entry.js';
import { ClientError } from './errors.js';
import type { TimerHandle, Timers } from './timers.js';

/** Chunks sent ahead of the relay's acknowledgement: all the relay allows (wire limits). */
export const UPLOAD_WINDOW_CHUNKS = MAX_BLOB_CHUNKS_IN_FLIGHT;
/**
 * How long a transfer waits for the connection to come back, or for progress while
 * connected, before it fails. A relay restart takes seconds; two minutes rides out a
 * slow one without leaving a script hanging for ever.
 */
export const TRANSFER_STALL_MS = 120_000;

/** Called with chunks done and the total, after each step. */
export type TransferProgress = (done: number, total: number) => void;

/** Each attempt of an upload: the chunk the relay said it held, and how many this attempt sent. */
export type UploadReport = { readonly resumedAt: number; readonly sent: number }[];

/** What the transfers need from the client core. */
export interface AttachmentHost {
  readonly crypto: CryptoProvider;
  /** The core's timers (the core keeps time only through what it is given). */
  readonly timers: Timers;
  send(frame: ClientFrame): boolean;
  nextRequestId(): number;
  isReady(): boolean;
  /** Subscribes to connection changes; returns the unsubscribe function. */
  onConnection(listener: (up: boolean) => void): () => void;
}

/** A file sealed for upload: its entry (to send in a message) and how to make each chunk. */
export interface PreparedFile {
  readonly entry: FileEntry;
  readonly layout: ChunkLayout;
  readonly blobId: Uint8Array;
  /** Seals chunk `index` (on demand, so a 100 MiB file is never held twice). */
  chunk(index: number): Uint8Array;
  /** Drops the key and plaintext held for sealing. */
  dispose(): void;
}

interface Waiter {
  status(frame: BlobStatusFrame): void;
  error(code: string): void;
  data?(frame: BlobDataFrame): void;
}

function refusal(code: string): ClientError {
  switch (code) {
    case 'too_large':
      return new ClientError(
        'RELAY_ERROR',
        'the relay refused the attachment: larger than it accepts',
      );
    case 'rate_limited':
      return new ClientError(
        'RELAY_ERROR',
        'the relay refused the attachment: over your attachment storage quota (wait for older ones to expire)',
      );
    case 'failed':
      return new ClientError(
        'NOT_FOUND',
        'the relay does not hold this attachment (unknown, incomplete or expired)',
      );
    default:
      return new ClientError('RELAY_ERROR', `the relay refused the attachment transfer (${code})`);
  }
}

export class Attachments {
  readonly #host: AttachmentHost;
  /** Block size of the relay, from its `welcome` (chunks are sized to fill one block). */
  blockBytes = BLOCK_BYTES;
  maxFileBytes = DEFAULT_MAX_ATTACHMENT_BYTES;
  readonly #waiters = new Map<number, Waiter>();
  readonly #byBlob = new Map<string, Waiter>();

  constructor(host: AttachmentHost) {
    this.#host = host;
  }

  /** Routes a `blob.status`/`blob.data` frame to its transfer. */
  onFrame(frame: BlobStatusFrame | BlobDataFrame): void {
    if (frame.type === 'blob.status') this.#waiters.get(frame.requestId)?.status(frame);
    else this.#byBlob.get(toHex(frame.blobId))?.data?.(frame);
  }

  /** An `error` frame: true if it answered one of our requests. */
  onError(code: string, requestId: number | undefined): boolean {
    const w = requestId === undefined ? undefined : this.#waiters.get(requestId);
    if (!w) return false;
    w.error(code);
    return true;
  }

  /**
   * Pads `bytes` to its size class, picks a fresh key and blob id, and returns the
   * entry plus a chunk sealer. `bytes` is kept (not copied) until `dispose`.
   *
   * `resume` is the entry of an earlier, unfinished upload of the same file: its key and
   * blob id are taken again so the relay's stored chunks still fit. It is used only when
   * it describes exactly these bytes (digest, size, name, type) at this chunk layout, so
   * a key and nonce are never used for other plaintext; otherwise a fresh one is made.
   * `sha256` spares hashing the file again when the caller has its digest.
   */
  prepare(
    bytes: Uint8Array,
    name: string,
    type: string,
    options: { readonly resume?: FileEntry; readonly sha256?: Uint8Array } = {},
  ): PreparedFile {
    if (bytes.length > this.maxFileBytes) {
      throw new ClientError(
        'INVALID_ARGUMENT',
        `file is ${bytes.length} bytes; attachments are limited to ${this.maxFileBytes} bytes`,
      );
    }
    const { crypto } = this.#host;
    const padded = paddedSize(bytes.length);
    const layout = chunkLayout(padded, this.blockBytes);
    const digest = toHex(options.sha256 ?? crypto.sha256(bytes));
    const r = options.resume;
    const again =
      r !== undefined &&
      r.sha256 === digest &&
      r.size === bytes.length &&
      r.padded === padded &&
      r.chunks === layout.chunkCount &&
      r.chunkBytes === layout.chunkBytes &&
      r.name === name &&
      r.type === type;
    const key = again ? fromHex(r.key) : crypto.randomBytes(ATTACHMENT_KEY_BYTES);
    const blobId = again ? fromHex(r.blob) : crypto.randomBytes(BLOB_ID_BYTES);
    const entry = checkFileEntry({
      blob: toHex(blobId),
      key: toHex(key),
      sha256: digest,
      size: bytes.length,
      padded,
      chunks: layout.chunkCount,
      chunkBytes: layout.chunkBytes,
      name,
      type,
    });
    return {
      entry,
      layout,
      blobId,
      chunk: (i) => sealChunk(crypto, key, blobId, layout, bytes, i),
      dispose: () => zeroize(key),
    };
  }

  /** Resolves when connected; fails after `TRANSFER_STALL_MS` offline. */
  #ready(): Promise<void> {
    if (this.#host.isReady()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = this.#host.timers.set(() => {
        off();
        reject(new ClientError('TRANSPORT', 'attachment transfer: the relay stayed unreachable'));
      }, TRANSFER_STALL_MS);
      const off = this.#host.onConnection((up) => {
        if (!up) return;
        this.#host.timers.clear(timer);
        off();
        resolve();
      });
    });
  }

  /**
   * One connection's worth of a transfer: resolves 'lost' when the connection drops (the
   * caller begins again), rejects on a refusal or a stall.
   */
  #attempt(
    requestId: number,
    blob: string,
    start: () => boolean,
    handlers: (
      finish: (r: 'done' | 'lost') => void,
      fail: (e: Error) => void,
      touch: () => void,
    ) => Waiter,
  ): Promise<'done' | 'lost'> {
    return new Promise((resolve, reject) => {
      let stall: TimerHandle | undefined;
      const cleanup = (): void => {
        if (stall !== undefined) this.#host.timers.clear(stall);
        off();
        this.#waiters.delete(requestId);
        this.#byBlob.delete(blob);
      };
      const finish = (r: 'done' | 'lost'): void => {
        cleanup();
        resolve(r);
      };
      const fail = (e: Error): void => {
        cleanup();
        reject(e);
      };
      const touch = (): void => {
        if (stall !== undefined) this.#host.timers.clear(stall);
        stall = this.#host.timers.set(
          () =>
            fail(new ClientError('TIMEOUT', 'attachment transfer: the relay stopped answering')),
          TRANSFER_STALL_MS,
        );
      };
      const off = this.#host.onConnection((up) => {
        if (!up) finish('lost');
      });
      const w = handlers(finish, fail, touch);
      this.#waiters.set(requestId, w);
      this.#byBlob.set(blob, w);
      touch();
      if (!start()) finish('lost');
    });
  }

  /**
   * Uploads a prepared file, resuming across reconnects. Returns one entry per attempt
   * (a resumed attempt starts where the relay's durable chunks end).
   */
  async upload(file: PreparedFile, progress?: TransferProgress): Promise<UploadReport> {
    const { chunkCount, chunkBytes } = file.layout;
    const report: { resumedAt: number; sent: number }[] = [];
    for (;;) {
      const attempt = { resumedAt: -1, sent: 0 };
      await this.#ready();
      const requestId = this.#host.nextRequestId();
      const outcome = await this.#attempt(
        requestId,
        file.entry.blob,
        () =>
          this.#host.send({
            type: 'blob.begin',
            requestId,
            blobId: file.blobId,
            chunkCount,
            chunkBytes,
          }),
        (finish, fail, touch) => {
          let next = -1;
          let acked = 0;
          const pump = (): void => {
            while (next < chunkCount && next - acked < UPLOAD_WINDOW_CHUNKS) {
              const data = file.chunk(next);
              if (
                !this.#host.send({ type: 'blob.chunk', blobId: file.blobId, index: next, data })
              ) {
                return finish('lost');
              }
              next++;
              attempt.sent++;
            }
          };
          return {
            status: (f) => {
              touch();
              acked = f.chunksStored;
              if (attempt.resumedAt < 0) {
                attempt.resumedAt = acked;
                report.push(attempt);
              }
              progress?.(acked, chunkCount);
              if (acked >= chunkCount) return finish('done');
              if (next < 0) next = acked;
              pump();
            },
            error: (code) => (code === 'server_error' ? finish('lost') : fail(refusal(code))),
          };
        },
      );
      if (outcome === 'done') return report;
    }
  }

  /**
   * Fetches, opens and checks the file an entry names. Throws `INTEGRITY` on a chunk that
   * fails authentication or a file whose digest differs; returns only a verified file.
   */
  async download(entry: FileEntry, progress?: TransferProgress): Promise<Uint8Array> {
    const { crypto } = this.#host;
    const layout: ChunkLayout = {
      chunkBytes: entry.chunkBytes,
      plainBytes: entry.chunkBytes - 16,
      chunkCount: entry.chunks,
    };
    const key = fromHex(entry.key);
    const blobId = fromHex(entry.blob);
    const out = new Uint8Array(layout.chunkCount * layout.plainBytes);
    let have = 0;
    try {
      while (have < layout.chunkCount) {
        await this.#ready();
        const requestId = this.#host.nextRequestId();
        await this.#attempt(
          requestId,
          entry.blob,
          () => this.#host.send({ type: 'blob.fetch', requestId, blobId, fromIndex: have }),
          (finish, fail, touch) => ({
            status: (f) => {
              touch();
              if (f.chunkCount !== layout.chunkCount || f.chunkBytes !== layout.chunkBytes) {
                fail(
                  new ClientError(
                    'INTEGRITY',
                    'the relay holds a blob of another size than the message says; nothing was saved',
                  ),
                );
              }
            },
            error: (code) => (code === 'server_error' ? finish('lost') : fail(refusal(code))),
            data: (f) => {
              touch();
              if (f.index !== have) return;
              try {
                out.set(
                  openChunk(crypto, key, blobId, layout, f.data, have),
                  have * layout.plainBytes,
                );
              } catch (err) {
                return fail(err as Error);
              }
              have++;
              progress?.(have, layout.chunkCount);
              if (have === layout.chunkCount) finish('done');
            },
          }),
        );
      }
    } finally {
      zeroize(key);
    }
    const file = out.subarray(0, entry.size);
    if (!constantTimeEqual(crypto.sha256(file), fromHex(entry.sha256))) {
      throw new ClientError(
        'INTEGRITY',
        `attachment ${entry.name} does not match its SHA-256; nothing was saved`,
      );
    }
    return file;
  }
}
