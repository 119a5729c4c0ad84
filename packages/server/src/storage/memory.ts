/**
 * In-memory reference implementation of {@link RelayStore}: the executable
 * specification the contract suite is written against, and a backend for tests that
 * do not need durability. Not durable, by definition.
 */
import type {
  Address,
  CommitOutcome,
  DeviceRecord,
  EnqueueResult,
  GroupCopy,
  GroupSubmission,
  IdentityDhKey,
  MailItem,
  NewGroupMail,
  NewMail,
  OneTimePrekey,
  PrekeyBundle,
  PrekeyUpload,
  Receipt,
  RelayStore,
  SignedPrekey,
  StoredReceipt,
  Submission,
} from './types.js';
import { ServerError } from '../errors.js';
import { distinctRecipients, uploadKey } from './group-mail.js';

const key = (a: Address): string => `${a.deviceId}:${a.name}`;

interface KeyState {
  identityDh?: IdentityDhKey;
  signed?: SignedPrekey;
  pqLastResort?: SignedPrekey;
  oneTime: OneTimePrekey[];
  oneTimePq: SignedPrekey[];
}

export class MemoryStore implements RelayStore {
  readonly #devices = new Map<string, DeviceRecord>();
  readonly #keys = new Map<string, KeyState>();
  readonly #mail: MailItem[] = [];
  readonly #receipts = new Map<string, StoredReceipt[]>();
  /** Group uploads stored (upload key -> first copy's id and expiry), for retries. */
  readonly #uploads = new Map<string, { firstId: number; expiresAt: number }>();
  #nextMailId = 1;
  #nextReceiptId = 1;

  registerDevice(device: DeviceRecord): Promise<{ created: boolean; device: DeviceRecord }> {
    const existing = this.#devices.get(key(device));
    if (existing) return Promise.resolve({ created: false, device: existing });
    this.#devices.set(key(device), copyDevice(device));
    return Promise.resolve({ created: true, device });
  }

  upsertDevice(device: DeviceRecord): Promise<boolean> {
    const k = key(device);
    const current = this.#devices.get(k);
    const replaced =
      current !== undefined && Buffer.compare(current.identityKey, device.identityKey) !== 0;
    // Prekeys signed by the old identity key would not verify with the new one.
    if (replaced) this.#keys.delete(k);
    this.#devices.set(k, copyDevice(device));
    return Promise.resolve(replaced);
  }

  getDevice(address: Address): Promise<DeviceRecord | undefined> {
    return Promise.resolve(this.#devices.get(key(address)));
  }

  listDevices(name: string): Promise<DeviceRecord[]> {
    return Promise.resolve(
      [...this.#devices.values()]
        .filter((d) => d.name === name)
        .sort((a, b) => a.deviceId - b.deviceId),
    );
  }

  putPrekeys(address: Address, upload: PrekeyUpload): Promise<void> {
    const k = key(address);
    const state = this.#keys.get(k) ?? { oneTime: [], oneTimePq: [] };
    if (upload.identityDh) state.identityDh = upload.identityDh;
    if (upload.signedPrekey) state.signed = upload.signedPrekey;
    if (upload.pqLastResort) state.pqLastResort = upload.pqLastResort;
    for (const p of upload.oneTime ?? []) {
      if (!state.oneTime.some((q) => q.id === p.id)) state.oneTime.push(p);
    }
    for (const p of upload.oneTimePq ?? []) {
      if (!state.oneTimePq.some((q) => q.id === p.id)) state.oneTimePq.push(p);
    }
    this.#keys.set(k, state);
    return Promise.resolve();
  }

  takePrekeyBundle(address: Address): Promise<PrekeyBundle | undefined> {
    const device = this.#devices.get(key(address));
    const state = this.#keys.get(key(address));
    if (!device || !state?.identityDh || !state.signed || !state.pqLastResort) {
      return Promise.resolve(undefined);
    }
    const oneTime = state.oneTime.shift();
    const oneTimePq = state.oneTimePq.shift();
    return Promise.resolve({
      device,
      identityDh: state.identityDh,
      signedPrekey: state.signed,
      pqPrekey: oneTimePq ?? state.pqLastResort,
      pqPrekeyIsLastResort: oneTimePq === undefined,
      ...(oneTime ? { oneTimePrekey: oneTime } : {}),
      remainingOneTime: state.oneTime.length,
      remainingOneTimePq: state.oneTimePq.length,
    });
  }

  countPrekeys(address: Address): Promise<{ oneTime: number; oneTimePq: number }> {
    const s = this.#keys.get(key(address));
    return Promise.resolve({
      oneTime: s?.oneTime.length ?? 0,
      oneTimePq: s?.oneTimePq.length ?? 0,
    });
  }

  getIdentityDh(address: Address): Promise<IdentityDhKey | undefined> {
    return Promise.resolve(this.#keys.get(key(address))?.identityDh);
  }

  async enqueue(mail: NewMail, maxPerRecipient: number): Promise<EnqueueResult> {
    const { decision, committed } = await this.submit(mail, maxPerRecipient);
    await committed;
    return decision;
  }

  submit(mail: NewMail, maxPerRecipient: number): Promise<Submission> {
    const done = (decision: EnqueueResult): Promise<Submission> =>
      Promise.resolve({
        decision,
        committed: Promise.resolve<CommitOutcome>('stored'),
        idDurable: true,
      });
    const dup = this.#mail.find(
      (m) =>
        key(m.sender) === key(mail.sender) &&
        m.clientMessageId.length === mail.clientMessageId.length &&
        m.clientMessageId.every((b, i) => b === mail.clientMessageId[i]),
    );
    if (dup) return done({ ok: true, serverMessageId: dup.serverMessageId, duplicate: true });
    const count = this.#mail.filter((m) => key(m.recipient) === key(mail.recipient)).length;
    if (count >= maxPerRecipient) return done({ ok: false, reason: 'mailbox-full' });
    const serverMessageId = this.#nextMailId++;
    this.#mail.push({ ...mail, payload: mail.payload.slice(), serverMessageId });
    return done({ ok: true, serverMessageId, duplicate: false });
  }

  submitGroup(mail: NewGroupMail, maxPerRecipient: number): Promise<GroupSubmission> {
    const done = (decision: GroupSubmission['decision']): Promise<GroupSubmission> =>
      Promise.resolve({ decision, committed: Promise.resolve(), idDurable: true });
    const uk = uploadKey(mail.sender, mail.clientMessageId);
    const known = this.#uploads.get(uk);
    if (known) return done({ ok: true, duplicate: true, serverMessageId: known.firstId });
    let unknown = 0;
    let full = 0;
    const take: { recipient: Address }[] = [];
    for (const recipient of distinctRecipients(mail)) {
      if (!this.#devices.has(key(recipient))) unknown++;
      else if (
        this.#mail.filter((m) => key(m.recipient) === key(recipient)).length >= maxPerRecipient
      )
        full++;
      else take.push({ recipient });
    }
    if (take.length === 0) return done({ ok: false, reason: 'no-recipient', unknown, full });
    // As the SQL backends' unique index: one row per sender, client message id and
    // recipient. A clash refuses the whole upload, storing no copy.
    const clash = take.some(({ recipient }) =>
      this.#mail.some(
        (m) =>
          key(m.recipient) === key(recipient) &&
          key(m.sender) === key(mail.sender) &&
          Buffer.compare(m.clientMessageId, mail.clientMessageId) === 0,
      ),
    );
    if (clash) return Promise.reject(new ServerError('STORAGE', 'group copy already stored'));
    const copies: GroupCopy[] = take.map(({ recipient }) => {
      const serverMessageId = this.#nextMailId++;
      this.#mail.push({
        recipient,
        sender: mail.sender,
        clientMessageId: mail.clientMessageId.slice(),
        kind: 'group',
        payload: mail.payload.slice(),
        storedAt: mail.storedAt,
        expiresAt: mail.expiresAt,
        serverMessageId,
      });
      return { recipient, serverMessageId };
    });
    this.#uploads.set(uk, {
      firstId: (copies[0] as GroupCopy).serverMessageId,
      expiresAt: mail.expiresAt,
    });
    return done({ ok: true, duplicate: false, copies, unknown, full });
  }

  pending(recipient: Address, afterId: number, limit: number): Promise<MailItem[]> {
    const k = key(recipient);
    return Promise.resolve(
      this.#mail
        .filter((m) => key(m.recipient) === k && m.serverMessageId > afterId)
        .slice(0, limit),
    );
  }

  ack(recipient: Address, serverMessageId: number): Promise<MailItem | undefined> {
    const k = key(recipient);
    const i = this.#mail.findIndex(
      (m) => m.serverMessageId === serverMessageId && key(m.recipient) === k,
    );
    if (i < 0) return Promise.resolve(undefined);
    const [item] = this.#mail.splice(i, 1);
    return Promise.resolve(item);
  }

  mailboxCount(recipient: Address): Promise<number> {
    const k = key(recipient);
    return Promise.resolve(this.#mail.filter((m) => key(m.recipient) === k).length);
  }

  expire(now: number): Promise<number> {
    let removed = 0;
    for (let i = this.#mail.length - 1; i >= 0; i--) {
      if ((this.#mail[i] as MailItem).expiresAt <= now) {
        this.#mail.splice(i, 1);
        removed++;
      }
    }
    for (const [k, u] of this.#uploads) if (u.expiresAt <= now) this.#uploads.delete(k);
    return Promise.resolve(removed);
  }

  addReceipt(sender: Address, receipt: Receipt, maxPerSender: number): Promise<void> {
    const list = this.#receipts.get(key(sender)) ?? [];
    list.push({ ...receipt, receiptId: this.#nextReceiptId++ });
    while (list.length > maxPerSender) list.shift();
    this.#receipts.set(key(sender), list);
    return Promise.resolve();
  }

  pendingReceipts(
    sender: Address,
    afterReceiptId: number,
    limit: number,
  ): Promise<StoredReceipt[]> {
    const list = this.#receipts.get(key(sender)) ?? [];
    return Promise.resolve(list.filter((r) => r.receiptId > afterReceiptId).slice(0, limit));
  }

  settleReceipt(sender: Address, serverMessageId: number): Promise<number> {
    const list = this.#receipts.get(key(sender)) ?? [];
    const kept = list.filter((r) => r.serverMessageId !== serverMessageId);
    this.#receipts.set(key(sender), kept);
    return Promise.resolve(list.length - kept.length);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function copyDevice(d: DeviceRecord): DeviceRecord {
  return {
    name: d.name,
    deviceId: d.deviceId,
    identityKey: d.identityKey.slice(),
    ...(d.certificate ? { certificate: d.certificate.slice() } : {}),
    registeredAt: d.registeredAt,
  };
}
