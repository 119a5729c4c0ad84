/**
 * Contacts and trust (docs/client.md, "Trust"): every identity key a peer presents goes
 * through here, from a `keys.bundle`, an `identity.lookup` or a handshake we received.
 * mtls: only a key our organisation's CA certifies for the name is used. Open mode:
 * trust on first use, a change is loud, and (for sending) held until the user accepts
 * it. The rules themselves are trust.ts's; this part applies them and asks the relay.
 *
 * Owns: the contact records (store) and the peer lookups. Knows nothing of sessions.
 */
import { constantTimeEqual } from '@parley/crypto';
import type { ClientFrame, IdentityResultFrame, KeysBundleFrame } from '@parley/wire';
import type { CoreContext } from './context.js';
import type { SafetyNumber } from './e2ee.js';
import { ClientError } from './errors.js';
import type { Requests } from './requests.js';
import type { Contact, StoreWrite } from './store/types.js';
import { holdsOutgoing, markVerified, observeIdentityKey } from './trust.js';
import type { AuthMode } from './trust.js';

/** mtls: checks a peer certificate (DER) against our CA; returns the Ed25519 key it certifies for `name`, or throws. */
export type PeerCertificateCheck = (certificate: Uint8Array, name: string) => Promise<Uint8Array>;

export interface ContactsContext extends Pick<
  CoreContext,
  'store' | 'e2ee' | 'clock' | 'account' | 'emit'
> {
  readonly requests: Requests;
  readonly verifyPeerCertificate: PeerCertificateCheck | undefined;
}

export class Contacts {
  constructor(private readonly ctx: ContactsContext) {}

  private get mode(): AuthMode {
    return this.ctx.account().info.mode;
  }

  /** Applies trust rules to a key presented for `name`; mtls refuses keys not certified by our CA. */
  async trustKey(
    name: string,
    deviceId: number,
    identityKey: Uint8Array,
    certificate: Uint8Array | undefined,
    writes: StoreWrite[],
  ): Promise<Contact> {
    const { ctx } = this;
    let attested = false;
    if (this.mode === 'mtls') {
      if (!certificate || !ctx.verifyPeerCertificate) {
        throw new ClientError(
          'UNTRUSTED_KEY',
          `${name}: the relay returned no certificate for this key`,
        );
      }
      let certified: Uint8Array;
      try {
        certified = await ctx.verifyPeerCertificate(certificate, name);
      } catch (err) {
        throw new ClientError(
          'UNTRUSTED_KEY',
          `${name}: certificate does not verify against the organisation CA`,
          { cause: err },
        );
      }
      if (!constantTimeEqual(certified, identityKey)) {
        throw new ClientError(
          'UNTRUSTED_KEY',
          `${name}: key differs from the one the certificate binds`,
        );
      }
      attested = true;
    }
    const outcome = observeIdentityKey(
      await ctx.store.getContact(name),
      name,
      deviceId,
      identityKey,
      attested,
      ctx.clock(),
    );
    if (outcome.changed) writes.push({ op: 'contact.put', contact: outcome.contact });
    if (outcome.keyChanged) ctx.emit({ type: 'key-changed', contact: outcome.contact });
    return outcome.contact;
  }

  /**
   * `trustKey` for a key we are about to encrypt to: a change the user has not accepted
   * is committed (so the warning and the new key persist for `markVerified`) and refused
   * with `KEY_CHANGED`, before anything is encrypted to it.
   */
  async trustForSending(
    name: string,
    deviceId: number,
    identityKey: Uint8Array,
    certificate: Uint8Array | undefined,
    writes: StoreWrite[],
  ): Promise<Contact> {
    const own: StoreWrite[] = [];
    const contact = await this.trustKey(name, deviceId, identityKey, certificate, own);
    if (holdsOutgoing(contact, this.mode)) {
      if (own.length > 0) await this.ctx.store.commit(own);
      throw keyChangedError(name);
    }
    writes.push(...own);
    return contact;
  }

  /** Whether messages to `peer` wait for the user to accept a changed key. */
  async holdsOutgoing(peer: string): Promise<boolean> {
    return holdsOutgoing(await this.ctx.store.getContact(peer), this.mode);
  }

  /** A peer's bundle (takes one of its one-time prekeys at the relay). */
  lookup(name: string): Promise<KeysBundleFrame> {
    return this.named(name, (requestId) => ({ type: 'keys.lookup', requestId, name }));
  }

  /** A peer's identity and certificate only: unlike `lookup`, it takes none of its prekeys. */
  lookupIdentity(name: string): Promise<IdentityResultFrame> {
    return this.named(name, (requestId) => ({ type: 'identity.lookup', requestId, name }));
  }

  /** mtls: the certificate the relay holds for `name`, to check a key that arrived in a handshake. */
  async certificateOf(name: string): Promise<Uint8Array | undefined> {
    return (await this.lookupIdentity(name)).certificate;
  }

  private async named<T extends KeysBundleFrame | IdentityResultFrame>(
    name: string,
    frame: (id: number) => ClientFrame,
  ): Promise<T> {
    try {
      return await this.ctx.requests.request<T>(frame);
    } catch (err) {
      // The relay answers every refusal with the same generic code (M13); say what it can mean.
      if (err instanceof ClientError && err.code === 'RELAY_ERROR') {
        throw new ClientError(
          'NOT_FOUND',
          `${name}: unknown to the relay, or has not published keys yet`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  /** Fetches and checks a peer's key from the relay (the caller runs it in the peer's queue). */
  async fetch(name: string): Promise<Contact> {
    const identity = await this.lookupIdentity(name);
    const writes: StoreWrite[] = [];
    const contact = await this.trustKey(
      name,
      identity.deviceId,
      identity.identityKey,
      identity.certificate,
      writes,
    );
    await this.ctx.store.commit(writes);
    return contact;
  }

  list(): Promise<Contact[]> {
    return this.ctx.store.listContacts();
  }

  async safetyNumber(name: string): Promise<{ contact: Contact; number: SafetyNumber }> {
    const { ctx } = this;
    const contact = await ctx.store.getContact(name);
    if (!contact) throw new ClientError('NOT_FOUND', `no contact named ${name}`);
    const account = ctx.account();
    const number = ctx.e2ee.safetyNumber(
      { name: account.name, identityKey: account.keyPair.publicKey },
      { name: contact.name, identityKey: contact.identityKey },
    );
    return { contact, number };
  }

  /** The user compared the safety number out of band and accepts the key. */
  async markVerified(name: string): Promise<Contact> {
    const contact = await this.ctx.store.getContact(name);
    if (!contact) throw new ClientError('NOT_FOUND', `no contact named ${name}`);
    const updated = markVerified(contact, this.ctx.clock());
    await this.ctx.store.commit([{ op: 'contact.put', contact: updated }]);
    return updated;
  }
}

/** A send refused until the user accepts a contact's changed key (it stays `sending`). */
export function isHeld(err: unknown): err is ClientError {
  return err instanceof ClientError && err.code === 'KEY_CHANGED';
}

export function keyChangedError(peer: string): ClientError {
  return new ClientError(
    'KEY_CHANGED',
    `${peer}'s identity key changed: messages to ${peer} wait until you compare the safety ` +
      `number and accept the new key (parley verify ${peer} --mark-verified)`,
  );
}
