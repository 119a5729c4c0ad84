/**
 * What the UI needs from the platform (apps/web/src/platform): a gate that creates or
 * unlocks this browser's profile, and the open session it yields. The UI shows only
 * what the client core's store and events say; it never opens a socket or IndexedDB.
 */
import type { AuthMode, ParleyClient, SearchOptions, StoredMessage } from '@parley/client';

/** The relay link as the platform's connection reports it (the banner shows it). */
export type LinkState =
  | { readonly kind: 'connecting' | 'online' | 'stopped' }
  | { readonly kind: 'offline'; readonly reason: string; readonly retryInMs: number }
  | { readonly kind: 'refused'; readonly reason: string };

/** An unlocked profile with its client core, connecting in the background. */
export interface ChatSession {
  readonly client: ParleyClient;
  /** Our name at the relay. */
  readonly name: string;
  readonly mode: AuthMode;
  /**
   * Calls `fn` now and on every change of the relay link; returns the unsubscribe
   * function. Without it the UI follows the core's `ready` and `disconnected` events.
   */
  onLink?(fn: (state: LinkState) => void): () => void;
  /** Stops the connection and closes the store (on sign-out or page hide). */
  close(): Promise<void>;
  /** Searches one's own history (the store's keyed index), newest first. */
  search?(query: string, options?: SearchOptions): Promise<StoredMessage[]>;
  /** An encrypted backup file of the whole profile, under a backup passphrase. */
  exportBackup?(passphrase: string): Promise<Uint8Array>;
}

/** What importing a backup made: a profile to unlock with the passphrase just chosen. */
export interface ImportedBackup {
  readonly profile: string;
  readonly messages: number;
  readonly contacts: number;
}

export interface NewProfile {
  readonly name: string;
  readonly passphrase: string;
}

/** Profile storage of this browser. Errors are `ClientError`s with stable codes. */
export interface ProfileGate {
  /** Whether a profile is stored in this browser (so the UI asks to unlock, not create). */
  exists(): Promise<boolean>;
  /** Name of the stored profile, readable before unlocking, if the platform keeps it in the clear. */
  storedName?(): Promise<string | undefined>;
  create(profile: NewProfile): Promise<ChatSession>;
  /**
   * Rejects with `WRONG_PASSPHRASE` and changes nothing if the passphrase is wrong, and
   * with `ProfileInUseError` if another tab has the profile, unless told to wait for it.
   */
  unlock(passphrase: string, options?: { waitForOtherTab?: AbortSignal }): Promise<ChatSession>;
  /**
   * Makes this browser's profile from a backup file (`WRONG_PASSPHRASE` for a wrong
   * backup secret; nothing is written then).
   */
  importBackup?(
    file: Uint8Array,
    backupSecret: string,
    passphrase: string,
  ): Promise<ImportedBackup>;
}

/**
 * An mtls profile without its certificate: `csr` goes to the administrator (`parley pki
 * sign`), and `submit` imports the signed certificate (PEM) and opens the session.
 * Rejects with a `ClientError` naming what is wrong with the certificate.
 */
export class CertificateNeeded extends Error {
  constructor(
    readonly profile: string,
    readonly csr: string,
    readonly submit: (certPem: string) => Promise<ChatSession>,
  ) {
    super(`profile ${profile} needs its certificate from the organisation`);
    this.name = 'CertificateNeeded';
  }
}

/** The profile is open in another tab of this browser, which alone may write to it. */
export class ProfileInUseError extends Error {
  constructor(readonly profile: string) {
    super(`profile ${profile} is open in another tab`);
    this.name = 'ProfileInUseError';
  }
}
