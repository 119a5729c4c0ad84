/** @jsxImportSource preact */
/**
 * The web client's UI: the profile gate until a profile is open, then the chat. The
 * platform (storage, socket, lock) comes in as a `ProfileGate`; the default is this
 * browser's IndexedDB profile on the relay that served the page.
 */
import { useEffect, useState } from 'preact/hooks';
import type { JSX } from 'preact';
import type { ChatSession, ProfileGate } from './session.js';
import { Unlock } from './Unlock.js';
import { Chat } from './Chat.js';
import { browserGate } from './browser-gate.js';
import { BackupImport } from './Backup.js';
import './styles.css';

export function App({ gate }: { gate?: ProfileGate } = {}): JSX.Element {
  const [g] = useState<ProfileGate>(() => gate ?? browserGate());
  const [session, setSession] = useState<ChatSession | undefined>();
  // Bumped by a restored backup, so the gate reads again which profile it holds.
  const [gateVersion, setGateVersion] = useState(0);

  useEffect(() => {
    if (!session) return;
    // Leaving the page closes the store cleanly, which releases the single-writer lock.
    const onHide = (): void => void session.close();
    // A page restored from the back-forward cache has a closed session: start afresh.
    const onShow = (e: PageTransitionEvent): void => {
      if (e.persisted) location.reload();
    };
    window.addEventListener('pagehide', onHide);
    window.addEventListener('pageshow', onShow);
    return () => {
      window.removeEventListener('pagehide', onHide);
      window.removeEventListener('pageshow', onShow);
    };
  }, [session]);

  if (!session) {
    return (
      <>
        <Unlock key={gateVersion} gate={g} onOpen={setSession} />
        <BackupImport gate={g} onImported={() => setGateVersion((v) => v + 1)} />
      </>
    );
  }
  return (
    <Chat
      s={session}
      onLock={() => {
        void session.close().finally(() => setSession(undefined));
      }}
    />
  );
}
