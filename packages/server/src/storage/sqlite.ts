/**
 * SQLite backend of {@link RelayStore} (better-sqlite3), the embedded default.
 *
 * Durability (M11): WAL journal with `synchronous = FULL`, so a committed transaction
 * is on disk before a write resolves and before the sender hears "queued". Every write
 * that arrives while the previous commit is in flight (enqueues, acks, receipts, key
 * uploads) joins the next transaction (group commit): one fsync for many operations,
 * never an answer before the data is durable.
 *
 * Two writer modes:
 * - `thread` (what the relay uses, via {@link SqliteStore.open}): a worker thread owns
 *   the write connection, so fsyncs never block the event loop; reads run on the main
 *   thread's own connection (WAL lets them proceed during a commit).
 * - `inline` (the constructor): writes commit on the calling thread, at most every
 *   MIN_COMMIT_INTERVAL_MS under load. Simpler; used where blocking does not matter.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { ServerError } from '../errors.js';
import { MAX_HELD_BYTES } from './held-mail.js';
import {
  bytes,
  openDatabase,
  prepareStatements,
  runBatch,
  toDevice,
  toMail,
  toSigned,
  type Statements,
  type WriteArgs,
  type WriteOpName,
  type WriteOutcome,
  type WriteRequest,
  type WriteResult,
} from './sqlite-db.js';
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
  PrekeyBundle,
  PrekeyUpload,
  Receipt,
  RelayStore,
  StoredReceipt,
  Submission,
  SubmitOptions,
} from './types.js';
import { distinctRecipients, uploadKey } from './group-mail.js';

/**
 * Inline mode: least time between two group commits while writes keep coming. Each
 * commit's fsync blocks the event loop; 2 ms caps that at 500 fsyncs/s and adds at most
 * 2 ms before "queued", far below anything a person notices.
 */
const MIN_COMMIT_INTERVAL_MS = 2;

/**
 * Thread mode: how long the first write after a quiet spell waits for others before its
 * batch goes to the idle writer. Under load, writes already wait for the commit in
 * flight and this adds nothing; at low and moderate load it turns one commit (one fsync,
 * one thread round trip) per operation into one per window, and a recipient's ack that
 * arrives within it cancels the stored copy (see `runBatch`). The cost is at most 2 ms
 * more before "queued"; live delivery does not wait for commits at all.
 */
const GROUP_COMMIT_WINDOW_MS = 2;

/**
 * Server ids are reserved in blocks: the database records "ids up to N may be in use"
 * before any id above the previous mark is shown to a client, so a crash can never
 * lead to an id being reused (clients drop repeated ids as already seen). A block of
 * 100 000 costs one small write per 100 000 messages; a restart skips at most that many.
 */
const ID_RESERVATION_BLOCK = 100_000;

/**
 * Recipients whose mailbox-size upper bound is remembered (see `submit`). Past this the
 * map is emptied and bounds are recounted on demand: memory stays bounded, correctness
 * does not depend on it.
 */
const MAILBOX_BOUND_ENTRIES = 10_000;

/** How long `close` waits for queued writes and the writer thread before giving up. */
const CLOSE_DRAIN_MAX_MS = 10_000;

/** Options of {@link SqliteStore.open}. */
export interface SqliteStoreOptions {
  /**
   * `full` (default): every commit is fsynced before it is reported, surviving power
   * loss. `normal`: no fsync per commit; survives a crash of the relay process (the OS
   * still has the data) but not of the machine.
   */
  readonly synchronous?: 'full' | 'normal';
}

/** Mail kept in memory for a short while in case the recipient's ack makes writing it moot. */
interface HeldMail {
  readonly id: number;
  readonly mail: NewMail;
  readonly recipientKey: string;
  /** performance.now() after which it is written. */
  readonly releaseAt: number;
  readonly resolve: (outcome: CommitOutcome) => void;
  readonly reject: (err: unknown) => void;
}

interface PendingWrite extends WriteRequest {
  resolve: (r: unknown) => void;
  reject: (e: unknown) => void;
}

/**
 * Starts the writer thread. From compiled code it runs `sqlite-writer.js`; from the
 * TypeScript sources (tests, tsx) it first registers tsx inside the worker, since a
 * worker does not inherit the parent's module loader.
 */
function startWriter(): Worker {
  const ts = new URL('./sqlite-writer.ts', import.meta.url);
  if (import.meta.url.endsWith('.ts') && existsSync(fileURLToPath(ts))) {
    const tsxRoot = dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
    const tsxApi = pathToFileURL(join(tsxRoot, 'dist', 'esm', 'api', 'index.mjs')).href;
    const code = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(ts.href)}); });`;
    return new Worker(code, { eval: true, execArgv: [] });
  }
  // The parent's flags (e.g. --input-type, --import) are not meant for the writer.
  return new Worker(new URL('./sqlite-writer.js', import.meta.url), { execArgv: [] });
}

/** The relay database. */
export class SqliteStore implements RelayStore {
  readonly #db: Database.Database;
  readonly #s: Statements;
  #worker: Worker | undefined;
  #batch: PendingWrite[] = [];
  #scheduled = false;
  /** When the oldest write of `#batch` was queued (performance.now()). */
  #batchSince = 0;
  #inFlight: PendingWrite[] | undefined;
  #nextBatchId = 1;
  #lastCommit = 0;
  #closed = false;
  #failure: ServerError | undefined;
  /** Highest server message id handed out (committed or in flight). */
  #lastMailId: number;
  /** Ids up to this are durably reserved (safe to show before their mail commits). */
  #durableReserved: number;
  #requestedReserved: number;
  readonly #inFlightByClientId = new Map<
    string,
    { id: number; committed: Promise<CommitOutcome> }
  >();
  readonly #inFlightPerRecipient = new Map<string, number>();
  /** Group uploads handed to the writer and not yet committed (upload key -> first id). */
  readonly #inFlightUploads = new Map<string, { firstId: number; committed: Promise<void> }>();
  /**
   * Per recipient, an upper bound on stored plus in-flight mail: the exact count when it
   * was last taken plus what was accepted since (acks, expiry and failed inserts only
   * lower the true count). While it is below the limit no COUNT query is needed.
   */
  readonly #mailboxBound = new Map<string, number>();
  /**
   * Mail whose ack by its recipient is queued or committing ("device:name:id" -> number
   * of such acks). `pending` leaves it out: the recipient has it, and a reconnect must
   * not see it again just because the delete is still waiting for its group commit.
   * Keyed by recipient too, so nobody can hide another device's mail by acking its id.
   */
  readonly #acking = new Map<string, number>();
  /** Held mail by server id, in submission (= id) order. */
  readonly #held = new Map<number, HeldMail>();
  /** Held items per recipient ("device:name"), so an unheld write can release them first. */
  readonly #heldPerRecipient = new Map<string, number>();
  #heldBytes = 0;
  /**
   * Per sender ("device:name"), an upper bound on its mail in the database (counted at
   * open, +1 per insert handed to the writer, -1 per item deleted by ack or expiry).
   * A sender with none cannot be retrying stored mail, so `submit` skips the duplicate
   * lookup, a database read per message, for the usual sender whose mail was all
   * delivered live.
   */
  readonly #storedBySender = new Map<string, number>();
  #holdTimer: ReturnType<typeof setTimeout> | undefined;

  /** Opens (creating if needed) the database at `file`, committing on this thread. */
  constructor(file: string, synchronous: 'full' | 'normal' = 'full') {
    this.#db = openDatabase(file, synchronous);
    this.#s = prepareStatements(this.#db);
    this.#lastMailId = this.#s.lastMailId.get()?.seq ?? 0;
    for (const r of this.#s.storedBySender.all()) {
      this.#storedBySender.set(`${r.s_device}:${r.s_name}`, r.n);
    }
    this.#durableReserved = this.#lastMailId;
    this.#requestedReserved = this.#lastMailId;
    this.#reserveMore();
  }

  /** Asks for the next block of ids; they may be shown early once this commits. */
  #reserveMore(): void {
    this.#requestedReserved += ID_RESERVATION_BLOCK;
    const upTo = this.#requestedReserved;
    this.#write('reserveIds', upTo).then(
      () => {
        this.#durableReserved = Math.max(this.#durableReserved, upTo);
      },
      () => undefined, // the store is failing; every write reports it
    );
  }

  /** Opens the database with a writer thread (the relay's mode). */
  static async open(file: string, opts: SqliteStoreOptions = {}): Promise<SqliteStore> {
    const synchronous = opts.synchronous ?? 'full';
    const store = new SqliteStore(file, synchronous);
    const worker = startWriter();
    try {
      await new Promise<void>((resolve, reject) => {
        const onMessage = (m: { ready?: true; error?: string }): void => {
          worker.off('error', reject);
          if (m.ready) resolve();
          else reject(new ServerError('STORAGE', m.error ?? 'writer failed to open'));
        };
        worker.once('message', onMessage);
        worker.once('error', reject);
        worker.postMessage({ file, synchronous });
      });
    } catch (err) {
      await worker.terminate();
      await store.close();
      throw err instanceof ServerError ? err : new ServerError('STORAGE', (err as Error).message);
    }
    store.#attach(worker);
    return store;
  }

  #attach(worker: Worker): void {
    this.#worker = worker;
    worker.on('message', (m: { id?: number; outcomes?: WriteOutcome[] }) => {
      if (m.outcomes === undefined) return;
      const batch = this.#inFlight ?? [];
      this.#inFlight = undefined;
      this.#settle(batch, m.outcomes);
      this.#schedule();
    });
    worker.on('error', (err: Error) => this.#fail(new ServerError('STORAGE', err.message)));
    worker.on('exit', (code) => {
      if (!this.#closed) this.#fail(new ServerError('STORAGE', `writer thread exited (${code})`));
    });
  }

  /** The writer is gone: every pending and future write fails (the relay cannot promise durability). */
  #fail(err: ServerError): void {
    this.#failure = err;
    this.#releaseHeld(); // each held item now fails like any write
    const pending = [...(this.#inFlight ?? []), ...this.#batch];
    this.#inFlight = undefined;
    this.#batch = [];
    for (const w of pending) w.reject(err);
  }

  #run<T>(fn: () => T): Promise<T> {
    if (this.#closed) return Promise.reject(new ServerError('STORAGE', 'store is closed'));
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(
        err instanceof ServerError ? err : new ServerError('STORAGE', (err as Error).message),
      );
    }
  }

  /** Queues a write for the next group commit; resolves after that commit. */
  #write<K extends WriteOpName>(op: K, ...args: WriteArgs<K>): Promise<WriteResult<K>> {
    if (this.#closed) return Promise.reject(new ServerError('STORAGE', 'store is closed'));
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise<WriteResult<K>>((resolve, reject) => {
      if (this.#batch.length === 0) this.#batchSince = performance.now();
      this.#batch.push({ op, args, resolve: resolve as (r: unknown) => void, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled || this.#batch.length === 0 || this.#inFlight) return;
    this.#scheduled = true;
    if (this.#worker) {
      // Collect what arrives within the window (at least the rest of this turn's
      // writes), then hand the batch to the writer.
      const wait = this.#batchSince + GROUP_COMMIT_WINDOW_MS - performance.now();
      if (wait > 0) setTimeout(() => this.#flush(), wait);
      else setImmediate(() => this.#flush());
      return;
    }
    const wait = this.#lastCommit + MIN_COMMIT_INTERVAL_MS - performance.now();
    if (wait > 0) setTimeout(() => this.#flush(), wait);
    else setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#scheduled = false;
    if (this.#batch.length === 0 || this.#inFlight) return;
    const batch = this.#batch;
    this.#batch = [];
    const requests = batch.map(({ op, args }) => ({ op, args }));
    if (this.#worker) {
      this.#inFlight = batch;
      this.#worker.postMessage({ id: this.#nextBatchId++, batch: requests });
      return;
    }
    this.#lastCommit = performance.now();
    this.#settle(batch, runBatch(this.#db, this.#s, requests));
    this.#schedule();
  }

  #settle(batch: readonly PendingWrite[], outcomes: readonly WriteOutcome[]): void {
    batch.forEach((w, i) => {
      const o = outcomes[i];
      if (o?.ok) w.resolve(o.value);
      else w.reject(new ServerError('STORAGE', o?.message ?? 'write lost'));
    });
  }

  registerDevice(device: DeviceRecord): Promise<{ created: boolean; device: DeviceRecord }> {
    return this.#write('registerDevice', device);
  }

  upsertDevice(device: DeviceRecord): Promise<boolean> {
    const current = this.#s.getDevice.get(device.name, device.deviceId);
    if (
      current &&
      Buffer.compare(current.identity_key, device.identityKey) === 0 &&
      (current.certificate === null
        ? device.certificate === undefined
        : device.certificate !== undefined &&
          Buffer.compare(current.certificate, device.certificate) === 0)
    ) {
      // Unchanged (the usual reconnect): no write, no fsync.
      return Promise.resolve(false);
    }
    return this.#write('upsertDevice', device);
  }

  getDevice(address: Address): Promise<DeviceRecord | undefined> {
    return this.#run(() => {
      const row = this.#s.getDevice.get(address.name, address.deviceId);
      return row ? toDevice(row) : undefined;
    });
  }

  listDevices(name: string): Promise<DeviceRecord[]> {
    return this.#run(() => this.#s.listDevices.all(name).map(toDevice));
  }

  putPrekeys(address: Address, upload: PrekeyUpload): Promise<void> {
    return this.#write('putPrekeys', address, upload);
  }

  takePrekeyBundle(address: Address): Promise<PrekeyBundle | undefined> {
    return this.#write('takePrekeyBundle', address);
  }

  countPrekeys(address: Address): Promise<{ oneTime: number; oneTimePq: number }> {
    return this.#run(() => ({
      oneTime: (this.#s.countOneTime.get(address.name, address.deviceId, 'ec') as { n: number }).n,
      oneTimePq: (this.#s.countOneTime.get(address.name, address.deviceId, 'pq') as { n: number })
        .n,
    }));
  }

  getIdentityDh(address: Address): Promise<IdentityDhKey | undefined> {
    return this.#run(() => {
      const row = this.#s.getSigned.get(address.name, address.deviceId, 'idh');
      if (!row) return undefined;
      const k = toSigned(row);
      return { publicKey: k.publicKey, signature: k.signature };
    });
  }

  async enqueue(mail: NewMail, maxPerRecipient: number): Promise<EnqueueResult> {
    const { decision, committed } = await this.submit(mail, maxPerRecipient);
    await committed;
    return decision;
  }

  /**
   * Decides on this thread, in call order, from committed rows plus mail still in
   * flight to the writer: duplicates (same sender and client message id) get the
   * original id, a full mailbox is refused, anything else gets the next id. Only the
   * insert itself goes to the writer.
   */
  submit(mail: NewMail, maxPerRecipient: number, opts: SubmitOptions = {}): Promise<Submission> {
    if (this.#closed) return Promise.reject(new ServerError('STORAGE', 'store is closed'));
    if (this.#failure) return Promise.reject(this.#failure);
    const dedupKey = `${mail.sender.deviceId}:${mail.sender.name}:${Buffer.from(mail.clientMessageId).toString('hex')}`;
    const inFlight = this.#inFlightByClientId.get(dedupKey);
    if (inFlight) {
      return Promise.resolve({
        decision: { ok: true, serverMessageId: inFlight.id, duplicate: true },
        committed: inFlight.committed,
        idDurable: true,
      });
    }
    try {
      const senderKey = `${mail.sender.deviceId}:${mail.sender.name}`;
      const dup =
        (this.#storedBySender.get(senderKey) ?? 0) > 0
          ? this.#s.findMail.get(mail.sender.name, mail.sender.deviceId, mail.clientMessageId)
          : undefined;
      if (dup) {
        return Promise.resolve({
          decision: { ok: true, serverMessageId: dup.id, duplicate: true },
          committed: Promise.resolve<CommitOutcome>('stored'),
          idDurable: true,
        });
      }
      const rKey = `${mail.recipient.deviceId}:${mail.recipient.name}`;
      if (!this.#takeSlot(rKey, mail.recipient, maxPerRecipient)) {
        return Promise.resolve({
          decision: { ok: false, reason: 'mailbox-full' },
          committed: Promise.resolve<CommitOutcome>('stored'),
          idDurable: true,
        });
      }
      const id = this.#nextId();
      this.#inFlightPerRecipient.set(rKey, (this.#inFlightPerRecipient.get(rKey) ?? 0) + 1);
      const holdMs = opts.holdMs ?? 0;
      const hold =
        holdMs > 0 &&
        id <= this.#durableReserved &&
        this.#heldBytes + mail.payload.length <= MAX_HELD_BYTES;
      // Per recipient, commits resolve in id order: earlier held mail goes first.
      if (!hold) this.#releaseHeld(rKey);
      const outcome = hold ? this.#hold(id, mail, rKey, holdMs) : this.#insert(id, mail);
      const committed = outcome.finally(() => {
        this.#inFlightByClientId.delete(dedupKey);
        const n = (this.#inFlightPerRecipient.get(rKey) ?? 1) - 1;
        if (n === 0) this.#inFlightPerRecipient.delete(rKey);
        else this.#inFlightPerRecipient.set(rKey, n);
      });
      this.#inFlightByClientId.set(dedupKey, { id, committed });
      return Promise.resolve({
        decision: { ok: true, serverMessageId: id, duplicate: false },
        committed,
        idDurable: id <= this.#durableReserved,
        ...(hold ? { writeNow: () => this.#releaseHeld(rKey) } : {}),
      });
    } catch (err) {
      return Promise.reject(new ServerError('STORAGE', (err as Error).message));
    }
  }

  /**
   * Counts one more item for a recipient if its mailbox has room (see `#mailboxBound`);
   * false when it is full.
   */
  #takeSlot(rKey: string, recipient: Address, maxPerRecipient: number): boolean {
    let bound = this.#mailboxBound.get(rKey);
    if (bound === undefined || bound >= maxPerRecipient) {
      const stored = (this.#s.countMail.get(recipient.name, recipient.deviceId) as { n: number }).n;
      bound = stored + (this.#inFlightPerRecipient.get(rKey) ?? 0);
      if (this.#mailboxBound.size >= MAILBOX_BOUND_ENTRIES) this.#mailboxBound.clear();
      this.#mailboxBound.set(rKey, bound);
    }
    if (bound >= maxPerRecipient) return false;
    this.#mailboxBound.set(rKey, bound + 1);
    return true;
  }

  #nextId(): number {
    const id = ++this.#lastMailId;
    if (id > this.#requestedReserved - ID_RESERVATION_BLOCK / 2) this.#reserveMore();
    return id;
  }

  /**
   * Decides on this thread, in call order, like `submit`: a stored or in-flight upload
   * is a duplicate; otherwise each listed device gets a copy if it is registered and has
   * room, under the next ids in listed order. One write op stores every copy and the
   * upload record in one savepoint of the next group commit. Never held: held mail of
   * these recipients is written first, so each recipient's commits stay in id order.
   */
  submitGroup(mail: NewGroupMail, maxPerRecipient: number): Promise<GroupSubmission> {
    if (this.#closed) return Promise.reject(new ServerError('STORAGE', 'store is closed'));
    if (this.#failure) return Promise.reject(this.#failure);
    const uk = uploadKey(mail.sender, mail.clientMessageId);
    const inFlight = this.#inFlightUploads.get(uk);
    if (inFlight) {
      return Promise.resolve({
        decision: { ok: true, duplicate: true, serverMessageId: inFlight.firstId },
        committed: inFlight.committed,
        idDurable: true,
      });
    }
    try {
      const stored = this.#s.findUpload.get(
        mail.sender.name,
        mail.sender.deviceId,
        mail.clientMessageId,
      );
      if (stored) {
        return Promise.resolve({
          decision: { ok: true, duplicate: true, serverMessageId: stored.first_id },
          committed: Promise.resolve(),
          idDurable: true,
        });
      }
      let unknown = 0;
      let full = 0;
      const taken: { recipient: Address; rKey: string }[] = [];
      for (const recipient of distinctRecipients(mail)) {
        const rKey = `${recipient.deviceId}:${recipient.name}`;
        if (!this.#s.getDevice.get(recipient.name, recipient.deviceId)) unknown++;
        else if (!this.#takeSlot(rKey, recipient, maxPerRecipient)) full++;
        else taken.push({ recipient, rKey });
      }
      if (taken.length === 0) {
        return Promise.resolve({
          decision: { ok: false, reason: 'no-recipient', unknown, full },
          committed: Promise.resolve(),
          idDurable: true,
        });
      }
      const copies: GroupCopy[] = taken.map(({ recipient }) => ({
        recipient,
        serverMessageId: this.#nextId(),
      }));
      for (const { rKey } of taken) {
        this.#inFlightPerRecipient.set(rKey, (this.#inFlightPerRecipient.get(rKey) ?? 0) + 1);
        this.#releaseHeld(rKey);
      }
      this.#countStored(mail.sender, copies.length);
      const firstId = (copies[0] as GroupCopy).serverMessageId;
      const committed = this.#write('insertGroup', copies, mail).finally(() => {
        this.#inFlightUploads.delete(uk);
        for (const { rKey } of taken) {
          const n = (this.#inFlightPerRecipient.get(rKey) ?? 1) - 1;
          if (n === 0) this.#inFlightPerRecipient.delete(rKey);
          else this.#inFlightPerRecipient.set(rKey, n);
        }
      });
      committed.catch(() => this.#countStored(mail.sender, -copies.length));
      this.#inFlightUploads.set(uk, { firstId, committed });
      return Promise.resolve({
        decision: { ok: true, duplicate: false, copies, unknown, full },
        committed,
        idDurable:
          (copies[copies.length - 1] as GroupCopy).serverMessageId <= this.#durableReserved,
      });
    } catch (err) {
      return Promise.reject(new ServerError('STORAGE', (err as Error).message));
    }
  }

  #insert(id: number, mail: NewMail): Promise<CommitOutcome> {
    return new Promise<CommitOutcome>((resolve, reject) => {
      this.#queueInsert(id, mail, resolve, reject);
    });
  }

  /**
   * Queues an insert whose commit settles the given callbacks directly, so held and
   * unheld mail settle in batch (= id) order, with no extra promise hop for either.
   */
  #queueInsert(
    id: number,
    mail: NewMail,
    resolve: (o: CommitOutcome) => void,
    reject: (e: unknown) => void,
  ): void {
    if (this.#closed) {
      reject(new ServerError('STORAGE', 'store is closed'));
      return;
    }
    if (this.#failure) {
      reject(this.#failure);
      return;
    }
    this.#countStored(mail.sender, 1);
    if (this.#batch.length === 0) this.#batchSince = performance.now();
    this.#batch.push({
      op: 'insertMail',
      args: [id, mail],
      resolve: () => resolve('stored'),
      reject,
    });
    this.#schedule();
  }

  #countStored(sender: Address, delta: number): void {
    const k = `${sender.deviceId}:${sender.name}`;
    const n = (this.#storedBySender.get(k) ?? 0) + delta;
    if (n > 0) this.#storedBySender.set(k, n);
    else this.#storedBySender.delete(k);
  }

  #hold(id: number, mail: NewMail, recipientKey: string, holdMs: number): Promise<CommitOutcome> {
    return new Promise<CommitOutcome>((resolve, reject) => {
      this.#held.set(id, {
        id,
        mail,
        recipientKey,
        releaseAt: performance.now() + holdMs,
        resolve,
        reject,
      });
      this.#heldBytes += mail.payload.length;
      this.#heldPerRecipient.set(recipientKey, (this.#heldPerRecipient.get(recipientKey) ?? 0) + 1);
      this.#armHoldTimer();
    });
  }

  /** Takes one item out of the held set (it is then written or was acked). */
  #unhold(h: HeldMail): void {
    this.#held.delete(h.id);
    this.#heldBytes -= h.mail.payload.length;
    const n = (this.#heldPerRecipient.get(h.recipientKey) ?? 1) - 1;
    if (n === 0) this.#heldPerRecipient.delete(h.recipientKey);
    else this.#heldPerRecipient.set(h.recipientKey, n);
  }

  /**
   * Writes held mail: all of it (`recipientKey` undefined, `dueOnly` false), one
   * recipient's, or what is due. Ids only grow along the map's order, so releasing a
   * prefix keeps every recipient's commits in id order.
   */
  #releaseHeld(recipientKey?: string, dueOnly = false): void {
    if (this.#held.size === 0) return;
    if (recipientKey !== undefined && !this.#heldPerRecipient.has(recipientKey)) return;
    const now = performance.now();
    // Deleting the entry being visited is safe while iterating a Map.
    for (const h of this.#held.values()) {
      if (dueOnly && h.releaseAt > now) break;
      if (recipientKey !== undefined && h.recipientKey !== recipientKey) continue;
      this.#unhold(h);
      this.#queueInsert(h.id, h.mail, h.resolve, h.reject);
    }
  }

  /** One timer for all held mail, set for the oldest item's release time. */
  #armHoldTimer(): void {
    if (this.#holdTimer !== undefined) return;
    const first = this.#held.values().next();
    if (first.done === true) return;
    const wait = Math.max(0, first.value.releaseAt - performance.now());
    this.#holdTimer = setTimeout(() => {
      this.#holdTimer = undefined;
      this.#releaseHeld(undefined, true);
      this.#armHoldTimer();
    }, wait);
    this.#holdTimer.unref();
  }

  pending(recipient: Address, afterId: number, limit: number): Promise<MailItem[]> {
    return this.#run(() => {
      // Read enough extra rows that leaving out acked ones still fills `limit`
      // (a short batch means "no more mail" to the caller).
      const rows = this.#s.pending.all(
        recipient.name,
        recipient.deviceId,
        afterId,
        limit + this.#acking.size,
      );
      const items: MailItem[] = [];
      const prefix = `${recipient.deviceId}:${recipient.name}:`;
      for (const r of rows) {
        if (items.length === limit) break;
        if (this.#acking.size === 0 || !this.#acking.has(prefix + String(r.id))) {
          items.push(toMail(r));
        }
      }
      return items;
    });
  }

  ack(recipient: Address, serverMessageId: number): Promise<MailItem | undefined> {
    const held = this.#held.get(serverMessageId);
    if (
      held &&
      held.mail.recipient.name === recipient.name &&
      held.mail.recipient.deviceId === recipient.deviceId
    ) {
      // Acked before it needed writing: nothing to store, nothing to delete.
      this.#unhold(held);
      held.resolve('acked');
      return Promise.resolve({ ...held.mail, serverMessageId });
    }
    const key = `${recipient.deviceId}:${recipient.name}:${String(serverMessageId)}`;
    this.#acking.set(key, (this.#acking.get(key) ?? 0) + 1);
    return this.#write('ack', recipient, serverMessageId)
      .then((item) => {
        if (item) this.#countStored(item.sender, -1);
        return item;
      })
      .finally(() => {
        const n = (this.#acking.get(key) ?? 1) - 1;
        if (n === 0) this.#acking.delete(key);
        else this.#acking.set(key, n);
      });
  }

  mailboxCount(recipient: Address): Promise<number> {
    return this.#run(
      () => (this.#s.countMail.get(recipient.name, recipient.deviceId) as { n: number }).n,
    );
  }

  expire(now: number): Promise<number> {
    return this.#write('expire', now).then((senders) => {
      for (const sender of senders) this.#countStored(sender, -1);
      return senders.length;
    });
  }

  addReceipt(sender: Address, receipt: Receipt, maxPerSender: number): Promise<void> {
    return this.#write('addReceipt', sender, receipt, maxPerSender);
  }

  pendingReceipts(
    sender: Address,
    afterReceiptId: number,
    limit: number,
  ): Promise<StoredReceipt[]> {
    return this.#run(() =>
      this.#s.pendingReceipts.all(sender.name, sender.deviceId, afterReceiptId, limit).map((r) => ({
        receiptId: r.id,
        clientMessageId: bytes(r.client_id),
        status: r.status as 'queued' | 'delivered',
        serverMessageId: r.server_id,
        timestamp: r.ts,
      })),
    );
  }

  settleReceipt(sender: Address, serverMessageId: number): Promise<number> {
    return this.#write('settleReceipt', sender, serverMessageId);
  }

  /** Commits what is queued, stops the writer thread, closes the database. */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#holdTimer !== undefined) clearTimeout(this.#holdTimer);
    this.#holdTimer = undefined;
    this.#releaseHeld();
    // Let queued and in-flight writes finish, for a bounded time.
    const giveUpAt = performance.now() + CLOSE_DRAIN_MAX_MS;
    while ((this.#batch.length > 0 || this.#inFlight) && !this.#failure) {
      if (performance.now() > giveUpAt) {
        this.#fail(new ServerError('STORAGE', 'store closed before its writes committed'));
        break;
      }
      if (!this.#inFlight) this.#flush();
      await new Promise((r) => setTimeout(r, 1));
    }
    this.#closed = true;
    const worker = this.#worker;
    if (worker) {
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.postMessage({ close: true });
      const timer = setTimeout(() => void worker.terminate(), CLOSE_DRAIN_MAX_MS);
      worker.once('message', () => void worker.terminate());
      await exited;
      clearTimeout(timer);
    }
    this.#db.close();
  }
}
