/**
 * Certificate revocation and expiry as an mtls client sees them.
 *
 * The client learns the organisation's CRL from the relay (`crl.fetch` on every
 * connection; a `crl` push whenever the relay reloads it) and believes it only after its
 * signature verifies against the CA in the profile, so the relay cannot forge a
 * revocation. It keeps the newest verified CRL in the profile (by thisUpdate: an older
 * one offered later is ignored, so a relay cannot roll a revocation back once seen;
 * it can only withhold a newer CRL).
 *
 * - Own certificate on the CRL: the client reports "your certificate was revoked" and
 *   stops connecting (the relay would refuse every handshake anyway).
 * - A contact's certificate on it: the contact is shown revoked and sends to it are
 *   refused with that reason. The serial of each contact's certificate is recorded when
 *   its key bundle is verified.
 */
import { certificateSerial, verifyCrl, type VerifiedCrl } from '@parley/pki';
import { utf8Decode, utf8Encode } from '@parley/crypto';
import type { ClientFrame } from '@parley/wire';
import { ClientError } from '@parley/client';
import type { ClientStore, RevocationHooks } from '@parley/client';

/** Meta key: the newest verified CRL (PEM). */
export const META_TLS_CRL = 'tls.crl';
/** Meta key: JSON `{ [name]: serial }` of each contact's certificate as last verified. */
export const META_PEER_SERIALS = 'pki.peer-serials';
/** Warn this many days before our own certificate expires: time enough to ask for a renewal. */
export const CERT_EXPIRY_WARNING_DAYS = 30;
/**
 * How long a send waits for the CRL asked for at connect before it goes by the stored
 * one: the answer is one round trip; a relay that does not answer must not block sends.
 */
export const CRL_FETCH_WAIT_MS = 5_000;

const DAY_MS = 86_400_000;

/** What a revocation check found about a contact. */
export interface PeerRevocation {
  readonly serial: string;
}

export class RevocationWatch implements RevocationHooks {
  #crl: VerifiedCrl | undefined;
  #peerSerials: Record<string, string> = {};
  #fetching: Promise<void> | undefined;
  #fetched: (() => void) | undefined;
  readonly #ownSerial: string;
  readonly #ownNotAfter: Date;
  readonly #listeners = new Set<(err: ClientError) => void>();
  #refresh: ((peer: string) => Promise<unknown>) | undefined;

  private constructor(
    private readonly store: ClientStore,
    private readonly caPem: string,
    ownCertPem: string,
    private readonly clock: () => number,
  ) {
    const own = certificateSerial(ownCertPem);
    this.#ownSerial = own.serial;
    this.#ownNotAfter = own.notAfter;
  }

  /** Loads the stored CRL (verified again) and contact serials from the profile. */
  static async load(
    store: ClientStore,
    caPem: string,
    ownCertPem: string,
    clock: () => number,
  ): Promise<RevocationWatch> {
    const w = new RevocationWatch(store, caPem, ownCertPem, clock);
    const crl = await store.getMeta(META_TLS_CRL);
    if (crl) {
      try {
        w.#crl = await verifyCrl(caPem, utf8Decode(crl));
      } catch {
        // A stored CRL that no longer verifies (CA replaced in the profile) is ignored.
      }
    }
    const serials = await store.getMeta(META_PEER_SERIALS);
    if (serials) {
      try {
        w.#peerSerials = JSON.parse(utf8Decode(serials)) as Record<string, string>;
      } catch {
        w.#peerSerials = {};
      }
    }
    return w;
  }

  /** The verified CRL as PEM, for checking certificates in new key bundles. */
  get crlPem(): string | undefined {
    return this.#crl?.pem;
  }

  /** Our own certificate's serial. */
  get ownSerial(): string {
    return this.#ownSerial;
  }

  /** Set when the verified CRL lists our own certificate. */
  get ownRevocation(): ClientError | undefined {
    if (!this.#crl?.revoked.has(this.#ownSerial)) return undefined;
    return new ClientError(
      'CERT_REVOKED',
      `your certificate was revoked by your organisation (serial ${this.#ownSerial}); ask your administrator for a new one`,
    );
  }

  /** A warning while our certificate expires within {@link CERT_EXPIRY_WARNING_DAYS}. */
  expiryWarning(): string | undefined {
    const left = this.#ownNotAfter.getTime() - this.clock();
    if (left > CERT_EXPIRY_WARNING_DAYS * DAY_MS) return undefined;
    if (left <= 0) {
      return `your certificate expired on ${this.#ownNotAfter.toISOString()}; ask your administrator to renew it (parley pki renew)`;
    }
    return `your certificate expires in ${Math.ceil(left / DAY_MS)} days (${this.#ownNotAfter.toISOString()}); ask your administrator to renew it (parley pki renew)`;
  }

  /**
   * How to re-read a contact's certificate from the relay (a key lookup). Used before
   * refusing a send: the revoked certificate may have been replaced by a renewed one
   * for the same key, which the lookup records.
   */
  setRefresher(fn: (peer: string) => Promise<unknown>): void {
    this.#refresh = fn;
  }

  /** Calls `fn` once our own revocation is learnt (from a verified CRL). */
  onOwnRevoked(fn: (err: ClientError) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Whether a certificate serial (normalized hex) is on the verified CRL. */
  serialRevoked(serial: string): boolean {
    return this.#crl?.revoked.has(serial) ?? false;
  }

  /** The contact's certificate as recorded is on the verified CRL. */
  peerRevoked(name: string): PeerRevocation | undefined {
    const serial = this.#peerSerials[name];
    return serial !== undefined && this.#crl?.revoked.has(serial) ? { serial } : undefined;
  }

  /** Records the serial of a contact's certificate that just verified. */
  async notePeerCertificate(name: string, certificateDer: Uint8Array): Promise<void> {
    const { serial } = certificateSerial(certificateDer);
    if (this.#peerSerials[name] === serial) return;
    this.#peerSerials = { ...this.#peerSerials, [name]: serial };
    await this.store.commit([
      {
        op: 'meta.put',
        key: META_PEER_SERIALS,
        value: utf8Encode(JSON.stringify(this.#peerSerials)),
      },
    ]);
  }

  async onCrl(der: Uint8Array): Promise<void> {
    try {
      await this.#accept(der);
    } finally {
      this.#fetched?.();
    }
  }

  async #accept(der: Uint8Array): Promise<void> {
    let crl: VerifiedCrl;
    try {
      crl = await verifyCrl(this.caPem, der);
    } catch {
      return; // not signed by our CA: a relay's word alone proves nothing
    }
    if (this.#crl && crl.thisUpdate.getTime() <= this.#crl.thisUpdate.getTime()) return;
    this.#crl = crl;
    await this.store.commit([{ op: 'meta.put', key: META_TLS_CRL, value: utf8Encode(crl.pem) }]);
    const own = this.ownRevocation;
    if (own) for (const fn of [...this.#listeners]) fn(own);
  }

  connected(send: (frame: ClientFrame) => boolean): void {
    this.#fetching = new Promise<void>((resolve) => {
      const t = setTimeout(resolve, CRL_FETCH_WAIT_MS);
      this.#fetched = () => {
        clearTimeout(t);
        resolve();
      };
    });
    if (!send({ type: 'crl.fetch', requestId: 0 })) this.#fetched?.();
  }

  async assertSendable(peer: string): Promise<void> {
    // The CRL asked for at connect decides, not one from an earlier connection.
    await this.#fetching;
    const own = this.ownRevocation;
    if (own) throw own;
    if (this.peerRevoked(peer) && this.#refresh) {
      // Whatever the lookup finds is recorded by it; a failure leaves the verdict as is.
      await this.#refresh(peer).catch(() => undefined);
    }
    const r = this.peerRevoked(peer);
    if (r) {
      throw new ClientError(
        'PEER_REVOKED',
        `${peer}'s certificate was revoked by your organisation (serial ${r.serial}); not sending`,
      );
    }
  }
}
