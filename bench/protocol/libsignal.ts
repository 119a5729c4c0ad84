/**
 * The anchor: @signalapp/libsignal-client (Rust, via N-API) with minimal in-memory
 * stores, driven through its public async API exactly as an app would.
 */
import * as S from '@signalapp/libsignal-client';

class Identities extends S.IdentityKeyStore {
  private readonly known = new Map<string, S.PublicKey>();
  constructor(
    private readonly pair: S.IdentityKeyPair,
    private readonly registrationId: number,
  ) {
    super();
  }
  getIdentityKey(): Promise<S.PrivateKey> {
    return Promise.resolve(this.pair.privateKey);
  }
  getLocalRegistrationId(): Promise<number> {
    return Promise.resolve(this.registrationId);
  }
  saveIdentity(name: S.ProtocolAddress, key: S.PublicKey): Promise<S.IdentityChange> {
    const k = name.toString();
    const old = this.known.get(k);
    this.known.set(k, key);
    return Promise.resolve(
      old && !old.equals(key) ? S.IdentityChange.ReplacedExisting : S.IdentityChange.NewOrUnchanged,
    );
  }
  isTrustedIdentity(name: S.ProtocolAddress, key: S.PublicKey): Promise<boolean> {
    const old = this.known.get(name.toString());
    return Promise.resolve(!old || old.equals(key));
  }
  getIdentity(name: S.ProtocolAddress): Promise<S.PublicKey | null> {
    return Promise.resolve(this.known.get(name.toString()) ?? null);
  }
}

class Sessions extends S.SessionStore {
  private readonly records = new Map<string, S.SessionRecord>();
  saveSession(name: S.ProtocolAddress, record: S.SessionRecord): Promise<void> {
    this.records.set(name.toString(), record);
    return Promise.resolve();
  }
  getSession(name: S.ProtocolAddress): Promise<S.SessionRecord | null> {
    return Promise.resolve(this.records.get(name.toString()) ?? null);
  }
  getExistingSessions(addresses: S.ProtocolAddress[]): Promise<S.SessionRecord[]> {
    return Promise.resolve(
      addresses.flatMap((a) => {
        const r = this.records.get(a.toString());
        return r ? [r] : [];
      }),
    );
  }
}

class PreKeys extends S.PreKeyStore {
  private readonly keys = new Map<number, S.PreKeyRecord>();
  savePreKey(id: number, record: S.PreKeyRecord): Promise<void> {
    this.keys.set(id, record);
    return Promise.resolve();
  }
  getPreKey(id: number): Promise<S.PreKeyRecord> {
    const r = this.keys.get(id);
    return r ? Promise.resolve(r) : Promise.reject(new Error('no prekey'));
  }
  removePreKey(id: number): Promise<void> {
    this.keys.delete(id);
    return Promise.resolve();
  }
}

class SignedPreKeys extends S.SignedPreKeyStore {
  private readonly keys = new Map<number, S.SignedPreKeyRecord>();
  saveSignedPreKey(id: number, record: S.SignedPreKeyRecord): Promise<void> {
    this.keys.set(id, record);
    return Promise.resolve();
  }
  getSignedPreKey(id: number): Promise<S.SignedPreKeyRecord> {
    const r = this.keys.get(id);
    return r ? Promise.resolve(r) : Promise.reject(new Error('no signed prekey'));
  }
}

class KyberPreKeys extends S.KyberPreKeyStore {
  private readonly keys = new Map<number, S.KyberPreKeyRecord>();
  saveKyberPreKey(id: number, record: S.KyberPreKeyRecord): Promise<void> {
    this.keys.set(id, record);
    return Promise.resolve();
  }
  getKyberPreKey(id: number): Promise<S.KyberPreKeyRecord> {
    const r = this.keys.get(id);
    return r ? Promise.resolve(r) : Promise.reject(new Error('no kyber prekey'));
  }
  markKyberPreKeyUsed(): Promise<void> {
    return Promise.resolve();
  }
}

interface Party {
  address: S.ProtocolAddress;
  identity: Identities;
  sessions: Sessions;
  preKeys: PreKeys;
  signed: SignedPreKeys;
  kyber: KyberPreKeys;
}

function party(name: string, registrationId: number): Party {
  return {
    address: S.ProtocolAddress.new(name, 1),
    identity: new Identities(S.IdentityKeyPair.generate(), registrationId),
    sessions: new Sessions(),
    preKeys: new PreKeys(),
    signed: new SignedPreKeys(),
    kyber: new KyberPreKeys(),
  };
}

/** Bob with a signed prekey and a last-resort Kyber (ML-KEM-768) prekey, no one-time keys. */
export async function libsignalBob(): Promise<{ bob: Party; bundle: S.PreKeyBundle }> {
  const bob = party('bob', 2);
  const idPair = await bob.identity.getIdentityKeyPair();
  const spk = S.PrivateKey.generate();
  const spkSig = idPair.privateKey.sign(spk.getPublicKey().serialize());
  await bob.signed.saveSignedPreKey(
    1,
    S.SignedPreKeyRecord.new(1, Date.now(), spk.getPublicKey(), spk, spkSig),
  );
  const kem = S.KEMKeyPair.generate();
  const kemSig = idPair.privateKey.sign(kem.getPublicKey().serialize());
  await bob.kyber.saveKyberPreKey(1, S.KyberPreKeyRecord.new(1, Date.now(), kem, kemSig));
  const bundle = S.PreKeyBundle.new(
    2,
    1,
    null,
    null,
    1,
    spk.getPublicKey(),
    spkSig,
    idPair.publicKey,
    1,
    kem.getPublicKey(),
    kemSig,
  );
  return { bob, bundle };
}

/** One session setup: Alice processes the bundle and sends; Bob decrypts the prekey message. */
export async function libsignalSetup(
  bob: Party,
  bundle: S.PreKeyBundle,
  aliceName: string,
  plaintext: Uint8Array<ArrayBuffer>,
): Promise<{ alice: Party; bob: Party }> {
  const alice = party(aliceName, 1);
  await S.processPreKeyBundle(bundle, bob.address, alice.address, alice.sessions, alice.identity);
  const ct = await S.signalEncrypt(
    plaintext,
    bob.address,
    alice.address,
    alice.sessions,
    alice.identity,
  );
  const out = await S.signalDecryptPreKey(
    S.PreKeySignalMessage.deserialize(ct.serialize()),
    alice.address,
    bob.address,
    bob.sessions,
    bob.identity,
    bob.preKeys,
    bob.signed,
    bob.kyber,
  );
  if (out.length !== plaintext.length) throw new Error('libsignal setup: wrong plaintext');
  return { alice, bob };
}

/** Sends one message from `from` to `to` (encrypt + decrypt); returns the plaintext length. */
export async function libsignalSend(
  from: Party,
  to: Party,
  plaintext: Uint8Array<ArrayBuffer>,
): Promise<number> {
  const ct = await S.signalEncrypt(
    plaintext,
    to.address,
    from.address,
    from.sessions,
    from.identity,
  );
  const bytes = ct.serialize();
  const out =
    ct.type() === S.CiphertextMessageType.PreKey
      ? await S.signalDecryptPreKey(
          S.PreKeySignalMessage.deserialize(bytes),
          from.address,
          to.address,
          to.sessions,
          to.identity,
          to.preKeys,
          to.signed,
          to.kyber,
        )
      : await S.signalDecrypt(
          S.SignalMessage.deserialize(bytes),
          from.address,
          to.address,
          to.sessions,
          to.identity,
        );
  return out.length;
}

export type LibsignalParty = Party;
