/** @jsxImportSource preact */
/**
 * Files in a conversation. `FileMessage` shows a file entry (name, size, type) with a
 * Download button: the client core fetches and decrypts it chunk by chunk (progress
 * shown) and hands back the bytes only once the whole file matches the SHA-256 that
 * came inside the end-to-end message, so nothing unverified is ever offered to save; a
 * tampered chunk ends in a clear error. `AttachButton` picks a file and sends it
 * (upload progress shown; it resumes by itself after a lost connection).
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { JSX } from 'preact';
import { formatBytes, safeFileName } from '@parley/client';
import type { FileEntry } from '@parley/client';
import type { ChatSession } from './session.js';

const percent = (done: number, total: number): number =>
  total === 0 ? 100 : Math.floor((done / total) * 100);

type Fetch =
  | { readonly state: 'idle' }
  | { readonly state: 'fetching'; readonly done: number; readonly total: number }
  | { readonly state: 'ready'; readonly url: string }
  | { readonly state: 'failed'; readonly reason: string };

export function FileMessage({ s, entry }: { s: ChatSession; entry: FileEntry }): JSX.Element {
  const [f, setF] = useState<Fetch>({ state: 'idle' });
  const url = f.state === 'ready' ? f.url : undefined;
  useEffect(() => () => void (url && URL.revokeObjectURL(url)), [url]);

  const download = async (): Promise<void> => {
    setF({ state: 'fetching', done: 0, total: 1 });
    try {
      const bytes = await s.client.attachments.download(entry, (done, total) =>
        setF({ state: 'fetching', done, total }),
      );
      const blob = new Blob([bytes as Uint8Array<ArrayBuffer>], {
        type: entry.type || 'application/octet-stream',
      });
      setF({ state: 'ready', url: URL.createObjectURL(blob) });
    } catch (err) {
      setF({ state: 'failed', reason: (err as Error).message });
    }
  };

  const label = `${entry.name} (${formatBytes(entry.size)}${entry.type ? `, ${entry.type}` : ''})`;
  return (
    <div class="file" data-file={entry.name}>
      <span class="file-name">📎 {label}</span>{' '}
      {f.state === 'idle' || f.state === 'failed' ? (
        <button type="button" onClick={() => void download()}>
          {f.state === 'failed' ? 'Try again' : 'Download'} {entry.name}
        </button>
      ) : null}
      {f.state === 'fetching' ? (
        <span class="transfer" role="status">
          <progress max={f.total} value={f.done} aria-label={`Downloading ${entry.name}`} />{' '}
          {percent(f.done, f.total)}%
        </span>
      ) : null}
      {f.state === 'ready' ? (
        <a class="save" href={f.url} download={safeFileName(entry.name)}>
          Save {entry.name}
        </a>
      ) : null}
      {f.state === 'failed' ? (
        <p class="error" role="alert">
          Could not open {entry.name}: {f.reason}
        </p>
      ) : null}
    </div>
  );
}

type Upload =
  | { readonly state: 'idle' }
  | {
      readonly state: 'uploading';
      readonly name: string;
      readonly done: number;
      readonly total: number;
    }
  | { readonly state: 'failed'; readonly name: string; readonly reason: string };

/** Sends a file, from the picker or dropped on the conversation (`dropped`). */
export function AttachButton({
  s,
  peer,
  dropped,
  onSent,
}: {
  s: ChatSession;
  peer: string;
  dropped: File | undefined;
  onSent: () => void;
}): JSX.Element {
  const [u, setU] = useState<Upload>({ state: 'idle' });
  const input = useRef<HTMLInputElement>(null);

  const send = async (file: File): Promise<void> => {
    const name = file.name;
    setU({ state: 'uploading', name, done: 0, total: 1 });
    try {
      const bytes = new Uint8Array(await file.arrayBuffer());
      await s.client.sendFile(
        peer,
        { bytes, name, type: file.type || 'application/octet-stream' },
        (done, total) => setU({ state: 'uploading', name, done, total }),
      );
      setU({ state: 'idle' });
      onSent();
    } catch (err) {
      setU({ state: 'failed', name, reason: (err as Error).message });
    } finally {
      if (input.current) input.current.value = '';
    }
  };

  useEffect(() => {
    if (dropped && u.state !== 'uploading') void send(dropped);
    // Only a new drop starts a send.
  }, [dropped]);

  return (
    <div class="attach">
      <label for="attach-file">Attach a file</label>
      <input
        id="attach-file"
        type="file"
        disabled={u.state === 'uploading'}
        onChange={(e) => {
          const file = e.currentTarget.files?.[0];
          if (file) void send(file);
        }}
      />
      {u.state === 'uploading' ? (
        <span class="transfer" role="status" data-upload={u.name}>
          <progress max={u.total} value={u.done} aria-label={`Uploading ${u.name}`} /> Uploading{' '}
          {u.name}: {percent(u.done, u.total)}%
        </span>
      ) : null}
      {u.state === 'failed' ? (
        <p class="error" role="alert">
          {u.name} not sent: {u.reason}
        </p>
      ) : null}
    </div>
  );
}
