/** @jsxImportSource preact */
/**
 * The safety-number dialog: 60 digits and a QR code, identical on both sides, and
 * "Mark verified" for after the user compared them. It is also where a changed key is
 * accepted: accepting means comparing, so the warning leads here.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { JSX } from 'preact';
import { describeTrust } from '@parley/client';
import type { Contact, SafetyNumber } from '@parley/client';
import type { ChatSession } from './session.js';
import { safetyGroups } from './format.js';
import { Qr } from './Qr.js';

export function Safety({
  s,
  peer,
  onClose,
  onVerified,
}: {
  s: ChatSession;
  peer: string;
  onClose: () => void;
  onVerified: () => void;
}): JSX.Element {
  const [data, setData] = useState<{ contact: Contact; number: SafetyNumber } | undefined>();
  const [error, setError] = useState<string | undefined>();
  const ref = useRef<HTMLDialogElement>(null);

  useEffect(() => {
    ref.current?.showModal();
    void (async () => {
      if (!(await s.client.contacts()).some((c) => c.name === peer))
        await s.client.fetchContact(peer);
      setData(await s.client.safetyNumber(peer));
    })().catch((err: unknown) => setError(`Safety number for ${peer}: ${(err as Error).message}`));
  }, [s, peer]);

  const verify = async (): Promise<void> => {
    try {
      await s.client.markVerified(peer);
      onVerified();
    } catch (err) {
      setError((err as Error).message);
    }
  };

  return (
    <dialog ref={ref} class="safety" aria-labelledby="safety-title" onClose={onClose}>
      <h2 id="safety-title">Safety number with {peer}</h2>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      {data ? (
        <>
          <p class={data.contact.trust === 'key-changed' ? 'trust danger' : 'trust'}>
            {describeTrust(data.contact.trust, s.mode)}
          </p>
          <div class="safety-body">
            <Qr text={data.number.qrPayload} label={`QR code of the safety number with ${peer}`} />
            <p class="digits" aria-label="safety number">
              {safetyGroups(data.number.digits).map((g, i) => (
                <span key={i}>{g}</span>
              ))}
            </p>
          </div>
          <p>
            Compare these digits (or scan the code) with {peer} in person or on a trusted call. Mark
            verified only if they match.
          </p>
        </>
      ) : error ? null : (
        <p aria-busy="true">Loading…</p>
      )}
      <div class="actions">
        {data && data.contact.trust !== 'verified' ? (
          <button type="button" onClick={() => void verify()}>
            They match: mark verified
          </button>
        ) : null}
        <button type="button" onClick={() => ref.current?.close()}>
          Close
        </button>
      </div>
    </dialog>
  );
}
