/** @jsxImportSource preact */
/**
 * First screen: create this browser's profile (name and passphrase, typed twice) or
 * unlock the stored one. A wrong passphrase says so and changes nothing (the gate
 * checks the key before it touches any record).
 */
import { useEffect, useState } from 'preact/hooks';
import type { JSX } from 'preact';
import { ClientError } from '@parley/client';
import { CertificateNeeded, ProfileInUseError } from './session.js';
import { Enrol } from './Enrol.js';
import type { ChatSession, ProfileGate } from './session.js';

/** Shortest passphrase the form accepts; Argon2id makes each guess costly, length does the rest. */
export const MIN_PASSPHRASE_CHARS = 8;

function explain(err: unknown): string {
  if (err instanceof ProfileInUseError)
    return 'This profile is open in another tab of this browser. Close it there, then try again.';
  if (err instanceof ClientError) {
    switch (err.code) {
      case 'WRONG_PASSPHRASE':
        return 'Wrong passphrase. Nothing was changed; try again.';
      case 'PROFILE_CORRUPT':
        return 'The stored profile is damaged and cannot be opened. Nothing was changed.';
      case 'INVALID_ARGUMENT':
        return err.message;
      default:
        return `Could not open the profile: ${err.message}`;
    }
  }
  return `Could not open the profile: ${(err as Error).message}`;
}

export function Unlock({
  gate,
  onOpen,
}: {
  gate: ProfileGate;
  onOpen: (s: ChatSession) => void;
}): JSX.Element {
  const [mode, setMode] = useState<'loading' | 'create' | 'unlock'>('loading');
  const [storedName, setStoredName] = useState<string | undefined>(undefined);
  const [name, setName] = useState('');
  const [pass, setPass] = useState('');
  const [pass2, setPass2] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  /** Set while waiting for another tab to let go of the profile; aborting stops waiting. */
  const [waiting, setWaiting] = useState<AbortController | undefined>(undefined);
  const [inUse, setInUse] = useState(false);
  /** An mtls profile waiting for its certificate. */
  const [enrol, setEnrol] = useState<CertificateNeeded | undefined>(undefined);

  useEffect(() => {
    void (async () => {
      const exists = await gate.exists();
      setStoredName(exists ? await gate.storedName?.() : undefined);
      setMode(exists ? 'unlock' : 'create');
    })().catch((err: unknown) => setError(explain(err)));
  }, [gate]);

  const waitForOtherTab = async (): Promise<void> => {
    const ctl = new AbortController();
    setWaiting(ctl);
    setError(undefined);
    try {
      const session = await gate.unlock(pass, { waitForOtherTab: ctl.signal });
      setPass('');
      onOpen(session);
    } catch (err) {
      if (!ctl.signal.aborted) setError(explain(err));
    } finally {
      setWaiting(undefined);
    }
  };

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(undefined);
    setInUse(false);
    if (mode === 'create') {
      if (pass.length < MIN_PASSPHRASE_CHARS)
        return setError(`Use a passphrase of at least ${MIN_PASSPHRASE_CHARS} characters.`);
      if (pass !== pass2) return setError('The two passphrases differ.');
    }
    setBusy(true);
    try {
      const session =
        mode === 'create'
          ? await gate.create({ name: name.trim().toLowerCase(), passphrase: pass })
          : await gate.unlock(pass);
      setPass('');
      setPass2('');
      onOpen(session);
    } catch (err) {
      if (err instanceof CertificateNeeded) return setEnrol(err);
      setError(explain(err));
      setInUse(err instanceof ProfileInUseError && mode === 'unlock');
    } finally {
      setBusy(false);
    }
  };

  if (mode === 'loading') return <main class="unlock" aria-busy="true" />;
  if (enrol) return <Enrol need={enrol} onOpen={onOpen} />;
  return (
    <main class="unlock">
      <h1>Parley</h1>
      <form class="unlock-form" onSubmit={(e) => void submit(e)} aria-describedby="unlock-error">
        {mode === 'create' ? (
          <>
            <p>Create your profile. Its keys and history stay in this browser, encrypted.</p>
            <label for="unlock-name">Name</label>
            <input
              id="unlock-name"
              name="name"
              autoComplete="username"
              required
              value={name}
              onInput={(e) => setName(e.currentTarget.value)}
            />
          </>
        ) : (
          <p>Unlock {storedName ?? 'your profile'}.</p>
        )}
        <label for="unlock-pass">Passphrase</label>
        <input
          id="unlock-pass"
          name="passphrase"
          type="password"
          autoComplete={mode === 'create' ? 'new-password' : 'current-password'}
          required
          value={pass}
          onInput={(e) => setPass(e.currentTarget.value)}
        />
        {mode === 'create' ? (
          <>
            <label for="unlock-pass2">Passphrase again</label>
            <input
              id="unlock-pass2"
              name="passphrase2"
              type="password"
              autoComplete="new-password"
              required
              value={pass2}
              onInput={(e) => setPass2(e.currentTarget.value)}
            />
          </>
        ) : null}
        <p id="unlock-error" class="error" role="alert">
          {error ?? ''}
        </p>
        <button type="submit" disabled={busy || waiting !== undefined}>
          {busy ? 'Opening…' : mode === 'create' ? 'Create profile' : 'Unlock'}
        </button>
        {waiting ? (
          <p role="status">
            Waiting for the other tab to close this profile…{' '}
            <button type="button" onClick={() => waiting.abort()}>
              Stop waiting
            </button>
          </p>
        ) : inUse ? (
          <button type="button" onClick={() => void waitForOtherTab()}>
            Open here when the other tab closes it
          </button>
        ) : null}
      </form>
    </main>
  );
}
