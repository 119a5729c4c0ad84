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
  LEGACY_OUTBOX_META_PREFIX,
  searchLimit,
  selectMessages,
  summarise,
  typedOutbox,
} from '@parley/client';
import type {
  ClientStore,
  Contact,
  ConversationSummary,
  KdfParams,
  LegacyOutboxEntry,
  ListMessagesOptions,
  OutboxEntry,
  SearchOptions,
  StoreWrite,
  StoredMessage,
} from '@parley/client';
import { done, openDatabase, request } from './idb.js';
import { RecordSealer } from './sealed-records.js';
import { SearchTokens } from './search-tokens.js';
import type { IndexEntry } from './search-tokens.js';

/** Database names are `parley-profile:<profile>`, so other apps' databases are never touched. */
export const DB_PREFIX = 'parley-profile:';
/**
 * 1: header and records; 2: the keyed-token search index (search-tokens.ts); 3: typed
 * outbox records (converted on the first unlock, `IdbStore.typeOutboxRecords`).
 */
const DB_VERSION = 3;
const HEADER_STORE = 'header';
const RECORD_STORE = 'records';
const SEARCH_STORE = 'search';
const HEADER_KEY = 'profile';
/** Header entry present once the search index holds every message (absent after the v2 upgrade). */
const SEARCH_BUILT_KEY = 'search-index';
const SEARCH_BUILT = 1;
const PROFILE_FORMAT = 'parley-web-profile';
const PROFILE_VERSION = 1;

/**
 * The schema steps after the header and record stores, run in the version-change
 * transaction. Version 2's index cannot be filled here (no key before the passphrase):
 * the store fills it on the first unlock (`IdbStore.load`).
 */
function upgradeSchema(db: IDBDatabase, oldVersion: number): void {
  if (oldVersion < 2) db.createObjectStore(SEARCH_STORE);
}

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
    case 'outbox.sent': {
      const e = r.get(k('o', w.id)) as OutboxEntry | undefined;
      if (e === undefined || e.state !== 'pending') return;
      return put(k('o', w.id), { ...e, state: 'sent', payload: new Uint8Array(0) });
    }
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
    private readonly tokens: SearchTokens,
    private records: Records,
  ) {}

  /** @internal Built by `createIdbProfile` / `openIdbProfile`. */
  static async load(
    db: IDBDatabase,
    sealer: RecordSealer,
    tokens: SearchTokens,
  ): Promise<IdbStore> {
    const tx = db.transaction([RECORD_STORE, HEADER_STORE], 'readonly');
    const store = tx.objectStore(RECORD_STORE);
    const [slots, values, built] = await Promise.all([
      request(store.getAllKeys()),
      request(store.getAll()),
      request(tx.objectStore(HEADER_STORE).get(SEARCH_BUILT_KEY)) as Promise<unknown>,
    ]);
    const records: Records = new Map();
    slots.forEach((slot, i) => {
      const rec = sealer.open(String(slot), values[i]);
      records.set(rec.key, rec.value);
    });
    const loaded = new IdbStore(db, sealer, tokens, records);
    if (built !== SEARCH_BUILT) await loaded.rebuildSearchIndex();
    await loaded.typeOutboxRecords();
    return loaded;
  }

  /**
   * Version 3: untyped outbox entries and their JSON meta records `outbox:<wire id>`
   * become typed records. Sealed records cannot be read in the version-change
   * transaction (no key before the passphrase), so this runs on unlock; it finds
   * nothing to do once done.
   */
  private async typeOutboxRecords(): Promise<void> {
    const metaPrefix = k('m', LEGACY_OUTBOX_META_PREFIX);
    const records = new Map<string, Uint8Array>();
    for (const [key, v] of this.records)
      if (key.startsWith(metaPrefix)) records.set(key.slice(metaPrefix.length), v as Uint8Array);
    const entries = this.values<LegacyOutboxEntry>('o').sort((a, b) => a.createdAt - b.createdAt);
    if (records.size === 0 && entries.every((e) => e.state !== undefined)) return;
    const outgoing = new Map<string, string>();
    for (const m of this.values<StoredMessage>('g'))
      if (m.direction === 'out' && !outgoing.has(m.id)) outgoing.set(m.id, m.peer);
    const typed = typedOutbox({ entries, records, outgoingPeer: (id) => outgoing.get(id) });
    await this.commit([
      ...[...records.keys()].map((id): StoreWrite => ({
        op: 'meta.delete',
        key: LEGACY_OUTBOX_META_PREFIX + id,
      })),
      ...typed.map((entry): StoreWrite => ({ op: 'outbox.put', entry })),
    ]);
  }

  /** Fills the search index from every stored message (a profile made before it existed). */
  private async rebuildSearchIndex(): Promise<void> {
    const entries = this.values<StoredMessage>('g').flatMap((m) => this.tokens.entries(m));
    const tx = this.db.transaction([SEARCH_STORE, HEADER_STORE], 'readwrite');
    const finished = done(tx);
    const search = tx.objectStore(SEARCH_STORE);
    search.clear();
    for (const e of entries) search.put(0, e);
    tx.objectStore(HEADER_STORE).put(SEARCH_BUILT, SEARCH_BUILT_KEY);
    await finished;
  }

  /** Index entries to drop and to add for the messages a batch changed. */
  private indexChanges(next: Records, dirty: ReadonlySet<string>) {
    const drop: IndexEntry[] = [];
    const add: IndexEntry[] = [];
    for (const key of dirty) {
      if (!key.startsWith(k('g', ''))) continue;
      const before = this.records.get(key) as StoredMessage | undefined;
      const after = next.get(key) as StoredMessage | undefined;
      if (before && after && before.text === after.text && before.seq === after.seq) continue;
      if (before) drop.push(...this.tokens.entries(before));
      if (after) add.push(...this.tokens.entries(after));
    }
    return { drop, add };
  }

  /**
   * Every record as the writes that rebuild it (messages in conversation order, without
   * their seq): what a backup holds (the client core's backup-format.ts).
   */
  exportRecords(): StoreWrite[] {
    const writes: StoreWrite[] = [];
    const messages: StoredMessage[] = [];
    for (const [key, v] of this.live()) {
      const [kind, ...parts] = key.split(SEP) as [string, ...string[]];
      const bytes = v as Uint8Array;
      switch (kind) {
        case 'm':
          writes.push({ op: 'meta.put', key: parts.join(SEP), value: copy(bytes) });
          break;
        case 's':
          writes.push({
            op: 'session.put',
            peer: parts[0] as string,
            deviceId: Number(parts[1]),
            state: copy(bytes),
          });
          break;
        case 'k':
          writes.push({
            op: 'secret.put',
            kind: parts[0] as string,
            id: Number(parts[1]),
            value: copy(bytes),
          });
          break;
        case 'c':
          writes.push({ op: 'contact.put', contact: copyContact(v as Contact) });
          break;
        case 'g':
          messages.push(v as StoredMessage);
          break;
        case 'n':
          writes.push({ op: 'seen.add', key: parts.join(SEP) });
          break;
        case 'o': {
          const e = v as OutboxEntry;
          writes.push({ op: 'outbox.put', entry: { ...e, payload: copy(e.payload) } });
          break;
        }
        default:
          // The seq counter: the restoring store numbers messages itself.
          break;
      }
    }
    messages.sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
    for (const { seq: _seq, ...m } of messages) writes.push({ op: 'message.put', message: m });
    return writes;
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
    const tokens = this.tokens.queryTokens(query);
    searchLimit(options);
    const live = this.live();
    const tx = this.db.transaction(SEARCH_STORE, 'readonly');
    const store = tx.objectStore(SEARCH_STORE);
    const lists = await Promise.all(
      tokens.map((t) =>
        request(store.getAllKeys(IDBKeyRange.bound([t, -Infinity], [t, Infinity]))),
      ),
    );
    const sets = lists.map((l) => new Set(l.map((key) => (key as IndexEntry)[1])));
    const [first, ...rest] = sets;
    const seqs = [...(first ?? [])].filter((q) => rest.every((r) => r.has(q)));
    if (seqs.length === 0) return [];
    const wanted = new Set(seqs);
    const candidates: StoredMessage[] = [];
    for (const [key, v] of live) {
      if (!key.startsWith(k('g', ''))) continue;
      const m = v as StoredMessage;
      if (m.seq !== undefined && wanted.has(m.seq)) candidates.push(m);
    }
    // The core's matcher checks each candidate against its text (long prefixes are
    // looked up by their first characters only), filters the peer, orders and limits.
    return searchInMessages(candidates, query, options);
  }
  async hasSeen(key: string): Promise<boolean> {
    return this.live().has(k('n', key));
  }
  async listOutbox(): Promise<OutboxEntry[]> {
    return this.values<OutboxEntry>('o')
      .filter((e) => e.state === 'pending')
      .sort((a, b) => a.createdAt - b.createdAt)
      .map((e) => ({ ...e, payload: copy(e.payload) }));
  }
  async getOutbox(id: string): Promise<OutboxEntry | undefined> {
    const e = this.live().get(k('o', id)) as OutboxEntry | undefined;
    return e && { ...e, payload: copy(e.payload) };
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
    const index = this.indexChanges(next, dirty);
    const ops = [...dirty].map((key) =>
      next.has(key)
        ? { put: true as const, ...this.sealer.seal({ key, value: next.get(key) }) }
        : { put: false as const, slot: this.sealer.slot(key) },
    );
    let tx: IDBTransaction;
    try {
      tx = this.db.transaction([RECORD_STORE, SEARCH_STORE], 'readwrite', {
        durability: 'strict',
      });
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
      const search = tx.objectStore(SEARCH_STORE);
      for (const e of index.drop) search.delete(e);
      for (const e of index.add) search.put(0, e);
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
    return await openDatabase(dbName(profile), DB_VERSION, (db, tx, oldVersion) => {
      if (oldVersion === 0) {
        missing = true;
        tx.abort();
        return;
      }
      upgradeSchema(db, oldVersion);
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
      const headers = d.createObjectStore(HEADER_STORE);
      headers.put(header, HEADER_KEY);
      // An empty profile's index is complete.
      headers.put(SEARCH_BUILT, SEARCH_BUILT_KEY);
      d.createObjectStore(RECORD_STORE);
      upgradeSchema(d, 0);
      created = true;
    }).catch((err: unknown) => {
      throw new ClientError('STORE', `profile ${profile} could not be created`, { cause: err });
    });
    if (!created) {
      db.close();
      throw new ClientError('PROFILE_EXISTS', `a profile named ${profile} already exists`);
    }
    return await IdbStore.load(
      db,
      new RecordSealer(options.crypto, key),
      new SearchTokens(options.crypto, key),
    );
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
    return await IdbStore.load(
      db,
      new RecordSealer(options.crypto, key),
      new SearchTokens(options.crypto, key),
    );
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
