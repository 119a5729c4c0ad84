/**
 * Attachments on the command line: `send --file PATH` reads, seals and uploads a file
 * (resuming across relay restarts) before sending the message that names it; `read
 * --save-dir DIR` fetches and checks each new file and saves it under a sanitised name
 * that never replaces an existing file. Progress goes to stderr: a redrawn bar on a
 * terminal, a plain line per tenth otherwise.
 */
import { closeSync, linkSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, extname, join, resolve } from 'node:path';
import {
  ClientError,
  fileOfText,
  formatBytes,
  safeFileName,
  type FileEntry,
  type StoredMessage,
} from '@parley/client';
import type { NodeClient } from '@parley/client-node';
import type { FileFailure } from './message-lines.js';

const TYPES: Record<string, string> = {
  '.txt': 'text/plain',
  '.md': 'text/markdown',
  '.json': 'application/json',
  '.pdf': 'application/pdf',
  '.zip': 'application/zip',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.mp4': 'video/mp4',
  '.mp3': 'audio/mpeg',
};

/** Media type guessed from the extension; the recipient treats it as a hint only. */
export function guessType(path: string): string {
  return TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream';
}

/** A progress display on stderr for one transfer of `totalBytes`. */
export function progressReporter(
  label: string,
  totalBytes: number,
  tty = process.stderr.isTTY === true,
): { update(done: number, total: number): void; end(): void } {
  let lastTenth = -1;
  let drawn = false;
  return {
    update(done, total) {
      const fraction = total === 0 ? 1 : done / total;
      if (tty) {
        const width = 30;
        const filled = Math.round(fraction * width);
        process.stderr.write(
          `\r${label} [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${Math.floor(fraction * 100)}% of ${formatBytes(totalBytes)}`,
        );
        drawn = true;
        return;
      }
      const tenth = Math.floor(fraction * 10);
      if (tenth > lastTenth) {
        lastTenth = tenth;
        process.stderr.write(`${label}: ${tenth * 10}% of ${formatBytes(totalBytes)}\n`);
      }
    },
    end() {
      if (drawn) process.stderr.write('\n');
    },
  };
}

/**
 * Runs `work` with the process held open: the core's timers (reconnect backoff, transfer
 * stall) are unref'd so that idle retries never keep a finished command alive, but a
 * transfer waiting for the relay to come back is exactly what this command waits for.
 */
async function holdingProcess<T>(work: () => Promise<T>): Promise<T> {
  const hold = setInterval(() => undefined, 60_000);
  try {
    return await work();
  } finally {
    clearInterval(hold);
  }
}

/** `send NAME --file PATH`: upload, then the message; returns the stored message. */
export async function sendFile(c: NodeClient, name: string, path: string): Promise<StoredMessage> {
  const full = resolve(path);
  let bytes: Uint8Array;
  try {
    const size = statSync(full).size;
    const max = c.client.attachments.maxFileBytes;
    if (size > max) {
      throw new ClientError(
        'INVALID_ARGUMENT',
        `${path}: ${formatBytes(size)} is above the attachment limit of ${formatBytes(max)}`,
      );
    }
    bytes = readFileSync(full);
  } catch (err) {
    if (err instanceof ClientError) throw err;
    throw new ClientError('INVALID_ARGUMENT', `--file: cannot read ${path}`, { cause: err });
  }
  const progress = progressReporter('upload', bytes.length);
  let total = 0;
  const { message, upload } = await holdingProcess(() =>
    c.client.sendFile(name, { bytes, name: basename(full), type: guessType(full) }, (done, all) => {
      total = all;
      progress.update(done, all);
    }),
  );
  progress.end();
  // Scripts (and the resume test) read this line: each attempt's starting chunk and sends.
  const attempts = upload.map((a) => `from chunk ${a.resumedAt}: sent ${a.sent}`).join('; ');
  process.stderr.write(`attachment stored on the relay (${total} chunks; ${attempts})\n`);
  return message;
}

/** Creates `dir/name` (or `name (1)`, …) holding `bytes`, never replacing a file. */
export function saveUnique(dir: string, name: string, bytes: Uint8Array): string {
  const safe = safeFileName(name);
  const ext = extname(safe);
  const stem = safe.slice(0, safe.length - ext.length);
  const temp = join(dir, `.parley-partial-${randomBytes(8).toString('hex')}`);
  const fd = openSync(temp, 'wx', 0o600);
  try {
    writeSync(fd, bytes);
  } finally {
    closeSync(fd);
  }
  try {
    for (let i = 0; ; i++) {
      const target = join(dir, i === 0 ? safe : `${stem} (${i})${ext}`);
      try {
        // A hard link fails if the name exists: no check-then-write race.
        linkSync(temp, target);
        return target;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || i > 10_000) throw err;
      }
    }
  } finally {
    rmSync(temp, { force: true });
  }
}

/** Fetches, checks and saves one file entry; returns where it went. */
export async function saveFile(c: NodeClient, entry: FileEntry, dir: string): Promise<string> {
  const progress = progressReporter(`download ${safeFileName(entry.name)}`, entry.size);
  try {
    const bytes = await holdingProcess(() =>
      c.client.attachments.download(entry, (d, t) => progress.update(d, t)),
    );
    return saveUnique(dir, entry.name, bytes);
  } finally {
    progress.end();
  }
}

/**
 * Why a file of a new message was not saved, and whether fetching it again may work
 * (`retryable`: it failed on the way, relay unreachable, stalled or refusing for now).
 */
export type SaveFailure = FileFailure;

/** Errors of a fetch that may succeed later; an integrity failure or an expired blob will not. */
const TRANSIENT: ReadonlySet<string> = new Set(['TRANSPORT', 'TIMEOUT', 'RELAY_ERROR']);

/**
 * Saves the files among `messages` into `dir`; returns "peer:id" → path, and puts each
 * file that fails under its "peer:id" in `failures` (nothing of it is saved; its message
 * is to stay unshown, so the next `read --save-dir` tries again).
 */
export async function saveAttachments(
  c: NodeClient,
  messages: readonly StoredMessage[],
  dir: string,
  failures: Map<string, SaveFailure>,
): Promise<Map<string, string>> {
  const saved = new Map<string, string>();
  for (const m of messages) {
    const entry = m.direction === 'in' ? fileOfText(m.text) : undefined;
    if (!entry) continue;
    try {
      saved.set(`${m.peer}:${m.id}`, await saveFile(c, entry, dir));
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      const retryable = err instanceof ClientError && TRANSIENT.has(err.code);
      process.stderr.write(
        `parley: ${m.peer}: file ${safeFileName(entry.name)} FAILED: ${reason}; ` +
          `${retryable ? 'a transient fetch error' : 'not retryable'}, kept unread ` +
          `(\`parley read --save-dir\` tries it again)\n`,
      );
      failures.set(`${m.peer}:${m.id}`, { reason, retryable });
    }
  }
  return saved;
}
