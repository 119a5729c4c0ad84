/**
 * The key directory: prekey uploads (checked against the device's registered identity
 * key), bundle lookups (one one-time prekey handed out per lookup), identity lookups,
 * and the `prekeys.low` warning to the owner when its stock runs low.
 *
 * Owns: the answers to those requests. It must not know connections: it returns the
 * answer frame, and warnings to the owner's connections go through the mailbox router
 * (which reaches them on any node).
 */
import {
  asEd25519PublicKey,
  asEd25519Signature,
  asMlKem768PublicKey,
  asX25519PublicKey,
  CryptoError,
  type CryptoProvider,
} from '@parley/crypto';
import {
  ProtocolError,
  verifyKemPreKey,
  verifyPublicIdentity,
  verifySignedPreKey,
  type KemPreKey,
  type SignedPreKey,
} from '@parley/protocol';
import type { ClientFrame, ServerFrame } from '@parley/wire';
import type { AuditEvent } from './audit.js';
import type { HostDeps, KeyDirectoryApi, MailRouting } from './host.js';
import { answerIdentityLookup } from './identity-lookup.js';
import { MAX_ONE_TIME_PREKEYS_PER_DEVICE } from './limits.js';
import type { Address } from './storage/types.js';

type Upload = Extract<ClientFrame, { type: 'prekeys.upload' }>;

const FAILED = { type: 'error', code: 'failed' } as const;

export class KeyDirectory implements KeyDirectoryApi {
  readonly #deps: HostDeps;
  readonly #audit: (event: AuditEvent) => void;
  readonly #router: Pick<MailRouting, 'prekeysLow'>;

  constructor(
    deps: HostDeps,
    audit: (event: AuditEvent) => void,
    router: Pick<MailRouting, 'prekeysLow'>,
  ) {
    this.#deps = deps;
    this.#audit = audit;
    this.#router = router;
  }

  async upload(me: Address, remote: string, frame: Upload): Promise<ServerFrame> {
    const { store, crypto } = this.#deps;
    // Peers verify bundles anyway; checking here keeps keys that no peer would accept
    // (a buggy or hostile client) out of the directory. Nothing of a bad upload is kept.
    const device = await store.getDevice(me);
    const fault = device ? prekeySignatureFault(crypto, device.identityKey, frame) : 'no-device';
    if (fault !== undefined) {
      this.#audit({ type: 'prekeys.rejected', remote, identity: me.name, code: fault });
      return FAILED;
    }
    const stock = await store.countPrekeys(me);
    if (
      stock.oneTime + frame.oneTime.length > MAX_ONE_TIME_PREKEYS_PER_DEVICE ||
      stock.oneTimePq + frame.oneTimePq.length > MAX_ONE_TIME_PREKEYS_PER_DEVICE
    ) {
      this.#audit({ type: 'prekeys.rejected', remote, identity: me.name, code: 'too-many' });
      return { type: 'error', code: 'too_large' };
    }
    await store.putPrekeys(me, {
      ...(frame.identityDh ? { identityDh: frame.identityDh } : {}),
      ...(frame.signedPrekey ? { signedPrekey: frame.signedPrekey } : {}),
      ...(frame.pqLastResort ? { pqLastResort: frame.pqLastResort } : {}),
      oneTime: frame.oneTime,
      oneTimePq: frame.oneTimePq,
    });
    const after = await store.countPrekeys(me);
    return {
      type: 'prekeys.stored',
      remainingOneTime: after.oneTime,
      remainingOneTimePq: after.oneTimePq,
    };
  }

  /** Answers through `reply` first, then warns the owner if its stock ran low. */
  async lookup(
    frame: Extract<ClientFrame, { type: 'keys.lookup' }>,
    reply: (frame: ServerFrame) => void,
  ): Promise<void> {
    const { store, config } = this.#deps;
    const target = { name: frame.name, deviceId: frame.deviceId ?? 1 };
    const bundle = await store.takePrekeyBundle(target);
    if (!bundle) {
      reply({ ...FAILED, requestId: frame.requestId });
      return;
    }
    reply({
      type: 'keys.bundle',
      requestId: frame.requestId,
      name: bundle.device.name,
      deviceId: bundle.device.deviceId,
      identityKey: bundle.device.identityKey,
      identityDh: bundle.identityDh,
      ...(bundle.device.certificate ? { certificate: bundle.device.certificate } : {}),
      signedPrekey: bundle.signedPrekey,
      pqPrekey: bundle.pqPrekey,
      ...(bundle.oneTimePrekey
        ? {
            oneTimePrekey: {
              id: bundle.oneTimePrekey.id,
              publicKey: bundle.oneTimePrekey.publicKey,
            },
          }
        : {}),
    });
    if (bundle.remainingOneTime < config.limits.lowPrekeyThreshold) {
      this.#router.prekeysLow(target, bundle.remainingOneTime, bundle.remainingOneTimePq);
    }
  }

  identity(frame: Extract<ClientFrame, { type: 'identity.lookup' }>): Promise<ServerFrame> {
    return answerIdentityLookup(this.#deps.store, frame);
  }

  async lowOnLogin(device: Address): Promise<ServerFrame | undefined> {
    const stock = await this.#deps.store.countPrekeys(device);
    if (stock.oneTime >= this.#deps.config.limits.lowPrekeyThreshold) return undefined;
    return {
      type: 'prekeys.low',
      remainingOneTime: stock.oneTime,
      remainingOneTimePq: stock.oneTimePq,
    };
  }
}

/**
 * Checks every signature of a prekey upload against the device's registered identity
 * key, as the protocol defines them (docs/protocol.md §4.1, `@parley/protocol`). Returns
 * the audit code of the first part that fails, or undefined if all verify.
 */
function prekeySignatureFault(
  crypto: CryptoProvider,
  identityKey: Uint8Array,
  frame: Upload,
): string | undefined {
  const signingKey = asEd25519PublicKey(identityKey);
  let part = 'identity-dh';
  try {
    if (frame.identityDh) {
      verifyPublicIdentity(crypto, {
        signingKey,
        dhKey: asX25519PublicKey(frame.identityDh.publicKey),
        dhSignature: asEd25519Signature(frame.identityDh.signature),
      });
    }
    part = 'signed-prekey';
    if (frame.signedPrekey)
      verifySignedPreKey(crypto, signingKey, signedX25519(frame.signedPrekey));
    part = 'pq-prekey';
    if (frame.pqLastResort) verifyKemPreKey(crypto, signingKey, signedKem(frame.pqLastResort));
    part = 'pq-one-time-prekey';
    for (const k of frame.oneTimePq) verifyKemPreKey(crypto, signingKey, signedKem(k));
  } catch (err) {
    if (err instanceof ProtocolError || err instanceof CryptoError) return `bad-signature:${part}`;
    throw err;
  }
  return undefined;
}

type WireSigned = { id: number; publicKey: Uint8Array; signature: Uint8Array };

const signedX25519 = (k: WireSigned): SignedPreKey => ({
  id: k.id,
  publicKey: asX25519PublicKey(k.publicKey),
  signature: asEd25519Signature(k.signature),
});

const signedKem = (k: WireSigned): KemPreKey => ({
  id: k.id,
  publicKey: asMlKem768PublicKey(k.publicKey),
  signature: asEd25519Signature(k.signature),
});
