/**
 * The anchor for groups: @signalapp/libsignal-client's sender-key group cipher
 * (SenderKeyDistributionMessage, groupEncrypt, groupDecrypt) with a minimal in-memory
 * SenderKeyStore per member, driven through its public async API as an app would.
 */
import { randomUUID } from 'node:crypto';
import * as S from '@signalapp/libsignal-client';

class SenderKeys extends S.SenderKeyStore {
  private readonly records = new Map<string, S.SenderKeyRecord>();
  saveSenderKey(sender: S.ProtocolAddress, id: S.Uuid, record: S.SenderKeyRecord): Promise<void> {
    this.records.set(`${sender.toString()}|${id}`, record);
    return Promise.resolve();
  }
  getSenderKey(sender: S.ProtocolAddress, id: S.Uuid): Promise<S.SenderKeyRecord | null> {
    return Promise.resolve(this.records.get(`${sender.toString()}|${id}`) ?? null);
  }
}

export interface LibsignalGroup {
  readonly sender: S.ProtocolAddress;
  readonly senderStore: SenderKeys;
  readonly receivers: SenderKeys[];
  readonly distributionId: S.Uuid;
}

/**
 * A group of `members` (the sender and members − 1 receivers), each receiver having
 * processed the sender's distribution.
 */
export async function libsignalGroup(members: number): Promise<LibsignalGroup> {
  const sender = S.ProtocolAddress.new('sender', 1);
  const senderStore = new SenderKeys();
  const distributionId = randomUUID();
  const skdm = await S.SenderKeyDistributionMessage.create(sender, distributionId, senderStore);
  const bytes = skdm.serialize();
  const receivers: SenderKeys[] = [];
  for (let i = 1; i < members; i++) {
    const store = new SenderKeys();
    await S.processSenderKeyDistributionMessage(
      sender,
      S.SenderKeyDistributionMessage.deserialize(bytes),
      store,
    );
    receivers.push(store);
  }
  return { sender, senderStore, receivers, distributionId };
}

/** One group message: encrypt once, every receiver decrypts. */
export async function libsignalGroupMessage(
  g: LibsignalGroup,
  plaintext: Uint8Array<ArrayBuffer>,
): Promise<void> {
  const ct = await S.groupEncrypt(g.sender, g.distributionId, g.senderStore, plaintext);
  const bytes = ct.serialize();
  for (const r of g.receivers) {
    const out = await S.groupDecrypt(g.sender, r, bytes);
    if (out.length !== plaintext.length) throw new Error('libsignal group: wrong plaintext');
  }
}

/**
 * A fresh sender key and its distribution processed by `receivers` members; with
 * `pairwise`, each copy also goes through the sender's session with that member
 * (encrypt + decrypt) first.
 */
export async function libsignalDistribute(
  receivers: number,
  pairwise?: (i: number, bytes: Uint8Array<ArrayBuffer>) => Promise<Uint8Array<ArrayBuffer>>,
): Promise<void> {
  const sender = S.ProtocolAddress.new('sender', 1);
  const senderStore = new SenderKeys();
  const skdm = await S.SenderKeyDistributionMessage.create(sender, randomUUID(), senderStore);
  const bytes = skdm.serialize();
  for (let i = 0; i < receivers; i++) {
    const got = pairwise ? await pairwise(i, bytes) : bytes;
    await S.processSenderKeyDistributionMessage(
      sender,
      S.SenderKeyDistributionMessage.deserialize(got),
      new SenderKeys(),
    );
  }
}
