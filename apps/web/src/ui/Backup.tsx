/** @jsxImportSource preact */
/**
 * Backup export (signed in) and import (before any profile is open), in the file format
 * `parley backup` and `parley restore` use. Export asks for a backup passphrase twice
 * and offers the file to save; import takes a file, its passphrase or recovery key, and
 * the passphrase of the profile it makes here. A wrong backup secret says so and writes
 * nothing.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { JSX } from 'preact';
import type { ChatSession, ImportedBackup, ProfileGate } from './session.js';

export function BackupExport({ s, onClose }: { s: ChatSession; onClose: () => void }): JSX.Element {
  const ref = useRef<HTMLDialogElement>(null);
  const [pass, setPass] = useState('');
  const [again, setAgain] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const [file, setFile] = useState<{ url: string; name: string } | undefined>();
  useEffect(() => ref.current?.showModal(), []);
  useEffect(() => () => void (file && URL.revokeObjectURL(file.url)), [file]);

  const make = async (e: Event): Promise<void> => {
    e.preventDefault();
    if (pass.length === 0) return setError('Choose a backup passphrase.');
    if (pass !== again) return setError('The two passphrases differ.');
    if (!s.exportBackup) return;
    setBusy(true);
    try {
      const bytes = await s.exportBackup(pass);
      const blob = new Blob([bytes as Uint8Array<ArrayBuffer>], {
        type: 'application/octet-stream',
      });
      setFile({ url: URL.createObjectURL(blob), name: `${s.name}.parley-backup` });
      setError(undefined);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <dialog ref={ref} class="backup" aria-labelledby="backup-title" onClose={onClose}>
      <h2 id="backup-title">Back up this profile</h2>
      <p>
        One encrypted file with your keys, contacts and history. Anyone with the file and its
        passphrase can read it: keep both apart.
      </p>
      <form onSubmit={(e) => void make(e)}>
        <label for="backup-pass">Backup passphrase</label>
        <input
          id="backup-pass"
          type="password"
          autoComplete="new-password"
          value={pass}
          onInput={(e) => setPass(e.currentTarget.value)}
        />
        <label for="backup-pass-again">Backup passphrase again</label>
        <input
          id="backup-pass-again"
          type="password"
          autoComplete="new-password"
          value={again}
          onInput={(e) => setAgain(e.currentTarget.value)}
        />
        <p class="error" role="alert">
          {error ?? ''}
        </p>
        <div class="actions">
          <button type="submit" disabled={busy}>
            {busy ? 'Encrypting…' : 'Make backup'}
          </button>
          {file ? (
            <a class="save" href={file.url} download={file.name}>
              Save {file.name}
            </a>
          ) : null}
          <button type="button" onClick={() => ref.current?.close()}>
            Close
          </button>
        </div>
      </form>
    </dialog>
  );
}

export function BackupImport({
  gate,
  onImported,
}: {
  gate: ProfileGate;
  onImported: (r: ImportedBackup) => void;
}): JSX.Element | null {
  const [file, setFile] = useState<File | undefined>();
  const [secret, setSecret] = useState('');
  const [pass, setPass] = useState('');
  const [again, setAgain] = useState('');
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ error: boolean; text: string } | undefined>();
  // Rendered only when asked for, so the unlock form's fields stay the only ones.
  const [open, setOpen] = useState(false);
  const importBackup = gate.importBackup;
  if (!importBackup) return null;
  if (!open) {
    return (
      <div class="restore">
        <button type="button" onClick={() => setOpen(true)}>
          Restore from a backup file
        </button>
        {message ? (
          <p class="note" role="status">
            {message.text}
          </p>
        ) : null}
      </div>
    );
  }

  const run = async (e: Event): Promise<void> => {
    e.preventDefault();
    const fail = (text: string): void => setMessage({ error: true, text });
    if (!file) return fail('Choose a backup file.');
    if (pass.length === 0) return fail('Choose a passphrase for the profile in this browser.');
    if (pass !== again) return fail('The two passphrases differ.');
    setBusy(true);
    try {
      const r = await importBackup(new Uint8Array(await file.arrayBuffer()), secret, pass);
      setMessage({
        error: false,
        text: `Restored ${r.profile} (${r.contacts} contacts, ${r.messages} messages). Unlock it with the passphrase you just chose; sessions are re-secured on the first messages.`,
      });
      setOpen(false);
      onImported(r);
    } catch (err) {
      fail((err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="restore" aria-labelledby="restore-title">
      <h2 id="restore-title">Restore from a backup file</h2>
      <form onSubmit={(e) => void run(e)}>
        <label for="restore-file">Backup file</label>
        <input
          id="restore-file"
          type="file"
          onChange={(e) => setFile(e.currentTarget.files?.[0])}
        />
        <label for="restore-secret">Backup passphrase or recovery key</label>
        <input
          id="restore-secret"
          type="password"
          autoComplete="off"
          value={secret}
          onInput={(e) => setSecret(e.currentTarget.value)}
        />
        <label for="restore-pass">New passphrase for this browser</label>
        <input
          id="restore-pass"
          type="password"
          autoComplete="new-password"
          value={pass}
          onInput={(e) => setPass(e.currentTarget.value)}
        />
        <label for="restore-pass-again">New passphrase again</label>
        <input
          id="restore-pass-again"
          type="password"
          autoComplete="new-password"
          value={again}
          onInput={(e) => setAgain(e.currentTarget.value)}
        />
        <p class={message?.error ? 'error' : 'note'} role={message?.error ? 'alert' : 'status'}>
          {message?.text ?? ''}
        </p>
        <div class="actions">
          <button type="submit" disabled={busy}>
            {busy ? 'Restoring…' : 'Restore'}
          </button>
          <button type="button" onClick={() => setOpen(false)}>
            Cancel
          </button>
        </div>
      </form>
    </section>
  );
}
