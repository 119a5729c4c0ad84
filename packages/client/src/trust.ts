/**
 * Trust decisions for a contact's identity key (M30 and the trust rules):
 * - mtls mode: a key is trusted only if a certificate from our organisation's CA binds it
 *   to the name (`ca-attested`); otherwise the caller must refuse it.
 * - open mode: trust on first use (`unverified`), upgraded to `verified` by comparing
 *   safety numbers; a different key later is `key-changed`, loudly, until re-verified.
 * Pure functions: the caller commits the returned contact.
 */
import { constantTimeEqual } from '@parley/crypto';
import type { Contact } from './store/types.js';

export type AuthMode = 'mtls' | 'open';

export interface TrustOutcome {
  readonly contact: Contact;
  /** The stored key differed from the presented one. */
  readonly keyChanged: boolean;
  /** Whether anything changed and must be committed. */
  readonly changed: boolean;
}

/**
 * Folds a presented identity key into the contact record. `attested` says the key came
 * with a certificate that verified against our CA (mtls mode only).
 */
export function observeIdentityKey(
  existing: Contact | undefined,
  name: string,
  deviceId: number,
  identityKey: Uint8Array,
  attested: boolean,
  now: number,
): TrustOutcome {
  if (!existing) {
    const contact: Contact = {
      name,
      deviceId,
      identityKey: identityKey.slice(),
      trust: attested ? 'ca-attested' : 'unverified',
      addedAt: now,
      updatedAt: now,
    };
    return { contact, keyChanged: false, changed: true };
  }
  if (constantTimeEqual(existing.identityKey, identityKey)) {
    // A CA attestation upgrades TOFU trust, but never overrides a user's own verification.
    if (attested && (existing.trust === 'unverified' || existing.trust === 'key-changed')) {
      return {
        contact: { ...existing, trust: 'ca-attested', updatedAt: now },
        keyChanged: false,
        changed: true,
      };
    }
    return { contact: existing, keyChanged: false, changed: false };
  }
  // mtls: the new key is CA-attested, so the change is the organisation's (re-issued
  // credentials); still flagged, because the user should know.
  const contact: Contact = {
    name,
    deviceId,
    identityKey: identityKey.slice(),
    trust: 'key-changed',
    previousIdentityKey: existing.identityKey,
    addedAt: existing.addedAt,
    updatedAt: now,
  };
  return { contact, keyChanged: true, changed: true };
}

/**
 * Whether nothing may be encrypted to this contact's key until the user accepts it.
 * Open mode: a changed key is the relay's easiest attack (it hands out its own key), so
 * a `key-changed` contact gets no message until `markVerified`. mtls: the new key carries
 * our CA's certificate, so the change is the organisation's; it is flagged, not held.
 */
export function holdsOutgoing(contact: Contact | undefined, mode: AuthMode): boolean {
  return mode === 'open' && contact?.trust === 'key-changed';
}

/** The user compared safety numbers and accepts the current key. */
export function markVerified(contact: Contact, now: number): Contact {
  const { previousIdentityKey: _prev, ...rest } = contact;
  return { ...rest, trust: 'verified', updatedAt: now };
}

/** Human wording for a trust state, shared by the CLI and the chat UI. */
export function describeTrust(trust: Contact['trust'], mode: AuthMode): string {
  switch (trust) {
    case 'ca-attested':
      return 'key certified by your organisation CA';
    case 'verified':
      return 'safety number verified';
    case 'unverified':
      return mode === 'mtls' ? 'not certified' : 'not verified (trusted on first use)';
    case 'key-changed':
      return 'WARNING: identity key changed; verify the safety number again';
  }
}
