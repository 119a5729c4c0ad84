/**
 * The browser `ClientStore`: one IndexedDB database per profile, every record sealed
 * (sealed-records.ts) under a key derived from the passphrase with Argon2id (the client
 * core's passphrase.ts, so both clients mean the same by a profile's cost parameters).
 *
 * The whole profile is decrypted into memory when it is unlocked and reads are served
 * from there; a `commit` applies its batch to a copy, writes every changed record in
 * ONE IndexedDB readwrite transaction, and swaps the copy in only after that
 * transaction completes. So a decrypted message and the ratchet state it advanced land
 * together or not at all, and a failed batch leaves memory and disk as they were.
 *
 * The plaintext header (format, Argon2id parameters, key-check value) lets a wrong
 * passphrase be refused before any record is read; nothing is written then.
 */
import { zeroize } from '@parley/crypto';
import type { CryptoProvider } from '@parley/crypto';
import {
  ClientError,
  checkKdfParams,
  deriveStoreKey,
  keyCheckValue,
  keyMatchesCheck,
  newKdfParams,
  searchInMessages,
  selectMessages,
  summarise,
} from '@parley/client';
import type {
  ClientStore,
  Contact,
  ConversationSummary,
  KdfParams,
  ListMessagesOptions,
  OutboxEntry,
  SearchOptions,
  StoreWrite,
  StoredMessage,
} from '@parley/client';
import { done, openDatabase, request } from './idb.js';
import { RecordSealer } from './sealed-records.js';

/** Database names are `parley-profile:<profile>`, so other apps' databases are never touched. */
export const DB_PREFIX = 'parley-profile:';
const DB_VERSION = 1;
const HEADER_STORE = 'header';
const RECORD_STORE = 'records';
const HEADER_KEY = 'profile';
const PROFILE_FORMAT = 'parley-web-profile';
const PROFILE_VERSION = 1;

interface Header {
  readonly format: typeof PROFILE_FORMAT;
  readonly version: number;
  readonly kdf: KdfParams;
  readonly keyCheck: string;
}

export interface IdbProfileOptions {
  readonly crypto: CryptoProvider;
  /** Argon2id cost overrides (tests use the minimum to stay fast). */
  readonly kdf?: Partial<Pick<KdfParams, 'memoryKiB' | 'iterations' | 'parallelism'>>;
}

// Logical record keys: a kind letter, then the fields, NUL-separated.
const SEP = '\u0000';
const k = (...parts: (string | number)[]): string => parts.join(SEP);
const SEQ_KEY = 'q';

const copy = (b: Uint8Array): Uint8Array => b.slice();
function copyContact(c: Contact): Contact {
  return {
    ...c,
    identityKey: copy(c.identityKey),
    ...(c.previousIdentityKey ? { previousIdentityKey: copy(c.previousIdentityKey) } : {}),
  };
}

/** The records in memory, by logical key. Values are never handed out without a copy. */
type Records = Map<string, unknown>;

function applyWrite(r: Records, w: StoreWrite, dirty: Set<string>): void {
  const put = (key: string, value: unknown): void => {
    r.set(key, value);
    dirty.add(key);
  };
  const del = (key: string): void => {
    r.delete(key);
    dirty.add(key);
  };
  switch (w.op) {
    case 'meta.put':
      return put(k('m', w.key), copy(w.value));
    case 'meta.delete':
      return del(k('m', w.key));
    case 'session.put':
      return put(k('s', w.peer, w.deviceId), copy(w.state));
    case 'session.delete':
      return del(k('s', w.peer, w.deviceId));
    case 'secret.put':
      return put(k('k', w.kind, w.id), copy(w.value));
    case 'secret.delete':
      return del(k('k', w.kind, w.id));
    case 'contact.put':
      return put(k('c', w.contact.name), copyContact(w.contact));
    case 'message.put': {
      const key = k('g', w.message.peer, w.message.direction, w.message.id);
      const existing = r.get(key) as StoredMessage | undefined;
      let seq = existing?.seq;
      if (seq === undefined) {
        seq = (r.get(SEQ_KEY) as number | undefined) ?? 1;
        put(SEQ_KEY, seq + 1);
      }
      return put(key, { ...w.message, seq });
    }
    case 'message.status': {
      const key = [k('g', w.peer, 'out', w.id), k('g', w.peer, 'in', w.id)].find((x) => r.has(x));
      if (key === undefined)
        throw new ClientError('NOT_FOUND', `message.status: no message ${w.id}`);
      return put(key, { ...(r.get(key) as StoredMessage), status: w.status });
    }
    case 'message.shown':
      for (const [key, v] of r) {
        if (!key.startsWith(k('g', w.peer, 'in', ''))) continue;
        const m = v as StoredMessage;
        if ((m.seq ?? 0) <= w.uptoSeq && !m.shown) put(key, { ...m, shown: true });
      }
      return;
    case 'message.delete':
      return del(k('g', w.peer, w.direction, w.id));
    case 'conversation.delete': {
      const prefix = k('g', w.peer, '');
      for (const key of [...r.keys()]) if (key.startsWith(prefix)) del(key);
      return;
    }
    case 'seen.add':
      return put(k('n', w.key), true);
    case 'outbox.put':
      return put(k('o', w.entry.id), { ...w.entry, payload: copy(w.entry.payload) });
    case 'outbox.delete':
      return del(k('o', w.id));
    default: {
      // A write kind added to the contract must be handled here before this compiles.
      const unknown: never = w;
      throw new ClientError('STORE', `web store: unknown write ${JSON.stringify(unknown)}`);
    }
  }
}

export class IdbStore implements ClientStore {
  private closed = false;
  /** Commits run one after another, each against the state the previous one left. */
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly db: IDBDatabase,
    private readonly sealer: RecordSealer,
    private records: Records,
  ) {}

  /** @internal Built by `createIdbProfile` / `openIdbProfile`. */
  static async load(db: IDBDatabase, sealer: RecordSealer): Promise<IdbStore> {
    const tx = db.transaction(RECORD_STORE, 'readonly');
    const store = tx.objectStore(RECORD_STORE);
    const [slots, values] = await Promise.all([
      request(store.getAllKeys()),
      request(store.getAll()),
    ]);
    const records: Records = new Map();
    slots.forEach((slot, i) => {
      const rec = sealer.open(String(slot), values[i]);
      records.set(rec.key, rec.value);
    });
    return new IdbStore(db, sealer, records);
  }

  private live(): Records {
    if (this.closed) throw new ClientError('CLOSED', 'store is closed');
    return this.records;
  }

  private values<T>(kind: string): T[] {
    const prefix = k(kind, '');
    const out: T[] = [];
    for (const [key, v] of this.live()) if (key.startsWith(prefix)) out.push(v as T);
    return out;
  }

  async getMeta(key: string): Promise<Uint8Array | undefined> {
    const v = this.live().get(k('m', key)) as Uint8Array | undefined;
    return v && copy(v);
  }
  async getSession(peer: string, deviceId: number): Promise<Uint8Array | undefined> {
    const v = this.live().get(k('s', peer, deviceId)) as Uint8Array | undefined;
    return v && copy(v);
  }
  async getSecret(kind: string, id: number): Promise<Uint8Array | undefined> {
    const v = this.live().get(k('k', kind, id)) as Uint8Array | undefined;
    return v && copy(v);
  }
  async listSecretIds(kind: string): Promise<number[]> {
    const prefix = k('k', kind, '');
    return [...this.live().keys()]
      .filter((key) => key.startsWith(prefix))
      .map((key) => Number(key.slice(prefix.length)))
      .sort((a, b) => a - b);
  }
  async getContact(name: string): Promise<Contact | undefined> {
    const c = this.live().get(k('c', name)) as Contact | undefined;
    return c && copyContact(c);
  }
  async listContacts(): Promise<Contact[]> {
    return this.values<Contact>('c')
      .map(copyContact)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
  async getMessage(
    peer: string,
    direction: 'in' | 'out',
    id: string,
  ): Promise<StoredMessage | undefined> {
    return this.live().get(k('g', peer, direction, id)) as StoredMessage | undefined;
  }
  async listMessages(peer?: string, options?: ListMessagesOptions): Promise<StoredMessage[]> {
    return selectMessages(this.values<StoredMessage>('g'), peer, options);
  }
  async listConversations(): Promise<ConversationSummary[]> {
    return summarise(this.values<StoredMessage>('g'));
  }
  async searchMessages(query: string, options?: SearchOptions): Promise<StoredMessage[]> {
    // Decrypted history is in memory already: the core's reference matcher serves it,
    // so an index of words (which would itself have to be encrypted) is not needed.
    return searchInMessages(this.values<StoredMessage>('g'), query, options);
  }
  async hasSeen(key: string): Promise<boolean> {
    return this.live().has(k('n', key));
  }
  async listOutbox(): Promise<OutboxEntry[]> {
    return this.values<OutboxEntry>('o')
      .sort((a, b) => a.createdAt - b.createdAt)
      .map((e) => ({ ...e, payload: copy(e.payload) }));
  }

  commit(writes: readonly StoreWrite[]): Promise<void> {
    const run = this.chain.then(() => this.commitNow(writes));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async commitNow(writes: readonly StoreWrite[]): Promise<void> {
    const next: Records = new Map(this.live());
    const dirty = new Set<string>();
    for (const w of writes) applyWrite(next, w, dirty);
    if (dirty.size === 0) return;
    // Seal before the transaction opens: an IndexedDB transaction commits by itself once
    // its task yields with no request pending, so nothing slow may run inside it.
    const ops = [...dirty].map((key) =>
      next.has(key)
        ? { put: true as const, ...this.sealer.seal({ key, value: next.get(key) }) }
        : { put: false as const, slot: this.sealer.slot(key) },
    );
    let tx: IDBTransaction;
    try {
      tx = this.db.transaction(RECORD_STORE, 'readwrite', { durability: 'strict' });
    } catch (err) {
      // The database was closed under us (another tab deleted or upgraded the profile).
      throw new ClientError('STORE', 'web store: the profile database is no longer open', {
        cause: err,
      });
    }
    const finished = done(tx);
    try {
      const store = tx.objectStore(RECORD_STORE);
      for (const op of ops) {
        if (op.put) store.put(op.value, op.slot);
        else store.delete(op.slot);
      }
    } catch (err) {
      // A request refused on the spot must not leave the ones before it to auto-commit.
      tx.abort();
      await finished.catch(() => undefined);
      throw new ClientError('STORE', 'web store: the batch was not written', { cause: err });
    }
    try {
      await finished;
    } catch (err) {
      throw new ClientError('STORE', 'web store: the batch was not written', { cause: err });
    }
    this.records = next;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chain;
    this.db.close();
  }
}

function dbName(profile: string): string {
  if (profile.length === 0) throw new ClientError('INVALID_ARGUMENT', 'profile: must not be empty');
  return `${DB_PREFIX}${profile}`;
}

/** Names of the profiles kept in this browser. */
export async function listIdbProfiles(): Promise<string[]> {
  const dbs = await indexedDB.databases();
  return dbs
    .map((d) => d.name ?? '')
    .filter((n) => n.startsWith(DB_PREFIX))
    .map((n) => n.slice(DB_PREFIX.length))
    .sort();
}

/** Opens a profile's database only if it exists (creating nothing otherwise). */
async function openExisting(profile: string): Promise<IDBDatabase> {
  let missing = false;
  try {
    return await openDatabase(dbName(profile), DB_VERSION, (_db, tx) => {
      missing = true;
      tx.abort();
    });
  } catch (err) {
    if (missing) throw new ClientError('PROFILE_NOT_FOUND', `no profile named ${profile}`);
    throw new ClientError('PROFILE_CORRUPT', `profile ${profile} cannot be opened`, { cause: err });
  }
}

async function readHeader(db: IDBDatabase, profile: string): Promise<Header> {
  const tx = db.transaction(HEADER_STORE, 'readonly');
  const raw = (await request(tx.objectStore(HEADER_STORE).get(HEADER_KEY))) as unknown;
  const o = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  if (o['format'] !== PROFILE_FORMAT || o['version'] !== PROFILE_VERSION) {
    throw new ClientError('PROFILE_CORRUPT', `profile ${profile}: unknown format or version`);
  }
  const keyCheck = o['keyCheck'];
  if (typeof keyCheck !== 'string' || !/^[0-9a-f]{64}$/.test(keyCheck)) {
    throw new ClientError('PROFILE_CORRUPT', `profile ${profile}: key check malformed`);
  }
  return {
    format: PROFILE_FORMAT,
    version: PROFILE_VERSION,
    kdf: checkKdfParams(o['kdf']),
    keyCheck,
  };
}

/** Creates a profile; `PROFILE_EXISTS` if one of that name is already in this browser. */
export async function createIdbProfile(
  profile: string,
  passphrase: string,
  options: IdbProfileOptions,
): Promise<IdbStore> {
  if (passphrase.length === 0) {
    throw new ClientError('INVALID_ARGUMENT', 'passphrase: must not be empty');
  }
  const name = dbName(profile);
  if ((await listIdbProfiles()).includes(profile)) {
    throw new ClientError('PROFILE_EXISTS', `a profile named ${profile} already exists`);
  }
  const kdf = newKdfParams(options.crypto, options.kdf);
  const key = await deriveStoreKey(passphrase, kdf);
  try {
    const header: Header = {
      format: PROFILE_FORMAT,
      version: PROFILE_VERSION,
      kdf,
      keyCheck: keyCheckValue(options.crypto, key),
    };
    let created = false;
    // The stores and the header are made in the one version-change transaction, so a
    // profile either exists whole or not at all.
    const db = await openDatabase(name, DB_VERSION, (d, tx, oldVersion) => {
      if (oldVersion !== 0) return tx.abort();
      d.createObjectStore(HEADER_STORE).put(header, HEADER_KEY);
      d.createObjectStore(RECORD_STORE);
      created = true;
    }).catch((err: unknown) => {
      throw new ClientError('STORE', `profile ${profile} could not be created`, { cause: err });
    });
    if (!created) {
      db.close();
      throw new ClientError('PROFILE_EXISTS', `a profile named ${profile} already exists`);
    }
    return await IdbStore.load(db, new RecordSealer(options.crypto, key));
  } finally {
    zeroize(key);
  }
}

/**
 * Unlocks a profile. Errors: `PROFILE_NOT_FOUND`, `WRONG_PASSPHRASE` (only the header
 * was read; nothing written), `PROFILE_CORRUPT` (nothing modified).
 */
export async function openIdbProfile(
  profile: string,
  passphrase: string,
  options: Pick<IdbProfileOptions, 'crypto'>,
): Promise<IdbStore> {
  const db = await openExisting(profile);
  let key: Uint8Array | undefined;
  try {
    const header = await readHeader(db, profile);
    key = await deriveStoreKey(passphrase, header.kdf);
    if (!keyMatchesCheck(options.crypto, key, header.keyCheck)) {
      throw new ClientError('WRONG_PASSPHRASE', 'wrong passphrase for this profile');
    }
    return await IdbStore.load(db, new RecordSealer(options.crypto, key));
  } catch (err) {
    db.close();
    throw err;
  } finally {
    if (key) zeroize(key);
  }
}

/** Deletes a profile and everything in it. */
export async function deleteIdbProfile(profile: string): Promise<void> {
  await request(indexedDB.deleteDatabase(dbName(profile)));
}
