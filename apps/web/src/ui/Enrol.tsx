/** @jsxImportSource preact */
/**
 * Enrolment of a browser profile on an mtls relay: the certificate request to hand to
 * the administrator (copy or download `NAME.csr`; they run `parley pki sign NAME.csr`
 * where the CA key is kept), then the signed certificate to paste or upload. The page
 * checks it (from this organisation's CA, for this profile's own key) before keeping it.
 */
import { useEffect, useState } from 'preact/hooks';
import type { JSX } from 'preact';
import { ClientError } from '@parley/client';
import type { CertificateNeeded, ChatSession } from './session.js';

export function Enrol({
  need,
  onOpen,
}: {
  need: CertificateNeeded;
  onOpen: (s: ChatSession) => void;
}): JSX.Element {
  const [pem, setPem] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const [csrUrl, setCsrUrl] = useState<string | undefined>(undefined);

  useEffect(() => {
    const url = URL.createObjectURL(new Blob([need.csr], { type: 'application/pkcs10' }));
    setCsrUrl(url);
    return () => URL.revokeObjectURL(url);
  }, [need]);

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(undefined);
    setBusy(true);
    try {
      onOpen(await need.submit(pem));
    } catch (err) {
      setError(
        err instanceof ClientError ? err.message : `Import failed: ${(err as Error).message}`,
      );
    } finally {
      setBusy(false);
    }
  };

  const upload = async (file: File | undefined): Promise<void> => {
    if (file) setPem(await file.text());
  };

  return (
    <main class="unlock">
      <h1>Parley</h1>
      <form class="unlock-form" onSubmit={(e) => void submit(e)} aria-describedby="enrol-error">
        <p>
          This relay signs in devices certified by your organisation. Give this request to your
          administrator, who signs it with <code>parley pki sign {need.profile}.csr</code>, then
          import the certificate they send back.
        </p>
        <label for="enrol-csr">Certificate request</label>
        <textarea id="enrol-csr" readOnly rows={6} value={need.csr} />
        <p>
          <button type="button" onClick={() => void navigator.clipboard?.writeText(need.csr)}>
            Copy request
          </button>{' '}
          {csrUrl ? (
            <a href={csrUrl} download={`${need.profile}.csr`}>
              Download {need.profile}.csr
            </a>
          ) : null}
        </p>
        <label for="enrol-cert">Signed certificate (PEM)</label>
        <textarea
          id="enrol-cert"
          rows={6}
          value={pem}
          placeholder="-----BEGIN CERTIFICATE-----"
          onInput={(e) => setPem(e.currentTarget.value)}
        />
        <label for="enrol-file">or upload {need.profile}.crt</label>
        <input
          id="enrol-file"
          type="file"
          accept=".crt,.pem,application/x-pem-file"
          onChange={(e) => void upload(e.currentTarget.files?.[0])}
        />
        <p id="enrol-error" class="error" role="alert">
          {error ?? ''}
        </p>
        <button type="submit" disabled={busy || pem.trim() === ''}>
          {busy ? 'Checking…' : 'Import certificate and sign in'}
        </button>
      </form>
    </main>
  );
}
