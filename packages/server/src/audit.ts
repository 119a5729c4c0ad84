/**
 * Tamper-evident, encrypted audit log of security events (M14).
 *
 * One JSON line per record: `{"seq":N,"prev":HEX,"nonce":B64,"data":B64}`.
 * - `data` is the event, encrypted with XChaCha20-Poly1305 under a 32-byte key kept in
 *   the data directory (`audit.key`, mode 0600), with a fresh random nonce per record
 *   and `seq ‖ prev` as associated data, so a record cannot be moved or altered unseen.
 * - `prev` is SHA-256 of the previous line's bytes (64 zero hex digits for the first),
 *   so deleting, inserting or reordering records breaks the chain.
 * Events carry types, codes, addresses and identity names only: never message content,
 * payloads or key material (callers pass a closed set of fields, see {@link AuditEvent}).
 *
 * The chain alone cannot show that the newest records were cut off (no later record
 * misses them). Checkpoints close that gap: every {@link AUDIT_CHECKPOINT_RECORDS}
 * records, at most every {@link AUDIT_CHECKPOINT_INTERVAL_MS} while records arrive, and at
 * close, the log hands `{seq, hash}` of its newest record to a callback (the relay writes
 * it to its structured log, a different sink). Given such a checkpoint the verifier
 * fails when the file no longer reaches it (`truncated`) or holds another record there
 * (`checkpoint`). Records newer than the last checkpoint the operator kept remain
 * removable unseen.
 */
import {
  closeSync,
  existsSync,
  fstatSync,
  openSync,
  readFileSync,
  readSync,
  writeSync,
} from 'node:fs';
import {
  asAeadKey,
  toHex,
  utf8Decode,
  utf8Encode,
  type AeadKey,
  type CryptoProvider,
} from '@parley/crypto';
import { ServerError } from './errors.js';

/** Security events the relay records. */
export type AuditEventType =
  | 'tls.rejected'
  | 'tls.timeout'
  | 'auth.ok'
  | 'auth.failed'
  | 'auth.timeout'
  | 'auth.register'
  | 'frame.oversize'
  | 'frame.wrong-size'
  | 'frame.text'
  | 'frame.malformed'
  | 'frame.unexpected'
  | 'sender.spoofed'
  | 'rate.flood'
  | 'rate.limited'
  | 'group.skipped'
  | 'conn.cap'
  | 'conn.idle'
  | 'prekeys.rejected'
  | 'blob.refused'
  | 'crl.reloaded'
  | 'relay.start'
  | 'relay.stop'
  | 'relay.restored'
  | 'identity.replaced';

/** One audit event. Only these fields exist, so content or keys cannot slip in. */
export interface AuditEvent {
  readonly type: AuditEventType;
  /** Remote IP:port. */
  readonly remote?: string;
  /** Authenticated or claimed identity name. */
  readonly identity?: string;
  /** Machine-readable reason (TLS error code, wire error code, limit name). */
  readonly code?: string;
  /** A count or size related to the event (bytes of a wrong-size message, blocks in window). */
  readonly value?: number;
  /** Serial (lowercase hex) of the client certificate the event is about. */
  readonly serial?: string;
}

/** A decrypted, verified record. */
export interface AuditRecord extends AuditEvent {
  readonly seq: number;
  /** Milliseconds since the epoch. */
  readonly time: number;
}

/**
 * A point of the chain kept outside the audit file: the sequence number of a record and
 * the SHA-256 (hex) of its line, which is also the next record's `prev`.
 */
export interface AuditCheckpoint {
  readonly seq: number;
  readonly hash: string;
}

/**
 * A checkpoint every 100 records: at the relay's usual event rates (a few security
 * events a minute, bursts of hundreds under attack) this is a log line every few
 * minutes, and under a burst it bounds the unanchored tail to 100 records.
 */
export const AUDIT_CHECKPOINT_RECORDS = 100;

/**
 * A quiet relay still anchors what it wrote within a minute: records written since the
 * last checkpoint get one at most this long after (nothing is logged when nothing was
 * written). One line a minute is negligible next to the relay's own logging.
 */
export const AUDIT_CHECKPOINT_INTERVAL_MS = 60_000;

/** Options of {@link AuditLog}. */
export interface AuditLogOptions {
  /**
   * Receives each checkpoint. It must write somewhere other than the audit file (the
   * relay uses its pino log); errors it throws are swallowed, like write errors.
   */
  readonly onCheckpoint?: (checkpoint: AuditCheckpoint) => void;
  /** Records between checkpoints; default {@link AUDIT_CHECKPOINT_RECORDS}. */
  readonly checkpointEveryRecords?: number;
}

const GENESIS = '0'.repeat(64);
/** Bytes of the audit key (XChaCha20-Poly1305). */
export const AUDIT_KEY_BYTES = 32;
/** Bytes read from the end of an existing log to find the last record on restart. */
const TAIL_READ_BYTES = 64 * 1024;

const aad = (seq: number, prev: string): Uint8Array => utf8Encode(`parley-audit-v1|${seq}|${prev}`);
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const unb64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));

/** Reads an existing audit key (for verifying); never creates one. */
export function loadAuditKey(file: string): AeadKey {
  let raw: Uint8Array;
  try {
    raw = new Uint8Array(readFileSync(file));
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'unreadable';
    throw new ServerError('STARTUP', `${file}: cannot read the audit key (${code})`);
  }
  if (raw.length !== AUDIT_KEY_BYTES) {
    throw new ServerError('STARTUP', `${file}: expected ${AUDIT_KEY_BYTES} bytes`);
  }
  return asAeadKey(raw);
}

/** Loads the audit key from `file`, creating it (mode 0600) on first use. */
export function loadOrCreateAuditKey(file: string, crypto: CryptoProvider): AeadKey {
  if (existsSync(file)) {
    const raw = new Uint8Array(readFileSync(file));
    if (raw.length !== AUDIT_KEY_BYTES) {
      throw new ServerError('STARTUP', `${file}: expected ${AUDIT_KEY_BYTES} bytes`);
    }
    return asAeadKey(raw);
  }
  const key = crypto.randomBytes(AUDIT_KEY_BYTES);
  const fd = openSync(file, 'wx', 0o600);
  try {
    writeSync(fd, key);
  } finally {
    closeSync(fd);
  }
  return asAeadKey(key);
}

interface RawRecord {
  seq: number;
  prev: string;
  nonce: string;
  data: string;
}

function parseLine(line: string): RawRecord | undefined {
  try {
    const r = JSON.parse(line) as Partial<RawRecord>;
    if (
      typeof r.seq === 'number' &&
      typeof r.prev === 'string' &&
      typeof r.nonce === 'string' &&
      typeof r.data === 'string'
    ) {
      return r as RawRecord;
    }
  } catch {
    // fall through: reported as tampering by the caller
  }
  return undefined;
}

/** Appends audit records; synchronous so that the record order is the event order. */
export class AuditLog {
  readonly #fd: number;
  readonly #key: AeadKey;
  readonly #crypto: CryptoProvider;
  readonly #now: () => number;
  #seq: number;
  #prev: string;
  #closed = false;
  readonly #onCheckpoint: ((c: AuditCheckpoint) => void) | undefined;
  readonly #checkpointEvery: number;
  /** Sequence number of the last checkpoint handed out (or found on open). */
  #checkpointed: number;
  /** Records written by this process (metrics). */
  written = 0;

  constructor(
    file: string,
    key: AeadKey,
    crypto: CryptoProvider,
    now: () => number = Date.now,
    options: AuditLogOptions = {},
  ) {
    this.#key = key;
    this.#crypto = crypto;
    this.#now = now;
    this.#onCheckpoint = options.onCheckpoint;
    this.#checkpointEvery = options.checkpointEveryRecords ?? AUDIT_CHECKPOINT_RECORDS;
    this.#fd = openSync(file, 'a+', 0o600);
    const { seq, prev } = this.#readTail();
    this.#seq = seq;
    this.#prev = prev;
    this.#checkpointed = 0;
  }

  /** The newest record as a checkpoint; undefined while the log is empty. */
  get head(): AuditCheckpoint | undefined {
    return this.#seq === 0 ? undefined : { seq: this.#seq, hash: this.#prev };
  }

  /**
   * Hands the newest record to `onCheckpoint` unless it already went out. The relay
   * calls this on a timer; {@link close} calls it last. On a freshly opened log the
   * first call anchors the existing tail, so a restart also re-anchors.
   */
  checkpoint(): AuditCheckpoint | undefined {
    const head = this.head;
    if (head === undefined || head.seq === this.#checkpointed) return undefined;
    this.#checkpointed = head.seq;
    try {
      this.#onCheckpoint?.(head);
    } catch {
      // a failing log sink must not stop auditing
    }
    return head;
  }

  /** Continues the chain after the last complete line already in the file. */
  #readTail(): { seq: number; prev: string } {
    const size = fstatSync(this.#fd).size;
    if (size === 0) return { seq: 0, prev: GENESIS };
    const len = Math.min(size, TAIL_READ_BYTES);
    const buf = Buffer.alloc(len);
    readSync(this.#fd, buf, 0, len, size - len);
    const lines = buf
      .toString('utf8')
      .split('\n')
      .filter((l) => l.length > 0);
    const last = lines[lines.length - 1];
    const rec = last === undefined ? undefined : parseLine(last);
    if (!last || !rec) {
      throw new ServerError('AUDIT_TAMPERED', 'audit log: last record unreadable');
    }
    return { seq: rec.seq, prev: toHex(this.#crypto.sha256(utf8Encode(last))) };
  }

  /** Writes one event. Never throws into the caller's path once open (errors are counted). */
  write(event: AuditEvent): void {
    if (this.#closed) return;
    const seq = this.#seq + 1;
    const body = utf8Encode(JSON.stringify({ ...event, time: this.#now() }));
    const nonce = this.#crypto.randomBytes(this.#crypto.xchacha20poly1305.nonceBytes);
    const data = this.#crypto.xchacha20poly1305.encrypt(
      this.#key,
      nonce,
      body,
      aad(seq, this.#prev),
    );
    const line = JSON.stringify({ seq, prev: this.#prev, nonce: b64(nonce), data: b64(data) });
    writeSync(this.#fd, `${line}\n`);
    this.#seq = seq;
    this.#prev = toHex(this.#crypto.sha256(utf8Encode(line)));
    this.written++;
    if (seq % this.#checkpointEvery === 0) this.checkpoint();
  }

  /** Emits a final checkpoint and closes the file. */
  close(): void {
    if (this.#closed) return;
    this.checkpoint();
    this.#closed = true;
    closeSync(this.#fd);
  }
}

/**
 * Why a log does not verify. `malformed`, `sequence`, `chain`, `decrypt`: a line was
 * edited, inserted, removed or reordered. `checkpoint`: the record at a checkpoint's
 * sequence number is not the one the checkpoint recorded (rewritten, or cut and
 * continued). `truncated`: the file ends before a checkpoint's record.
 */
export type AuditFailureReason =
  'malformed' | 'sequence' | 'chain' | 'decrypt' | 'checkpoint' | 'truncated';

/** Outcome of {@link verifyAuditLog}. */
export type AuditVerification =
  | {
      readonly ok: true;
      readonly records: AuditRecord[];
      /** The newest record, to keep as a checkpoint; undefined for an empty log. */
      readonly head: AuditCheckpoint | undefined;
    }
  | {
      readonly ok: false;
      /**
       * 1-based line number of the first record that does not verify; for `truncated`,
       * the first missing line (one past the end of the file).
       */
      readonly line: number;
      readonly reason: AuditFailureReason;
      /** The checkpoint that failed (`checkpoint` and `truncated` only). */
      readonly checkpoint?: AuditCheckpoint;
      /** Records that verified before the break. */
      readonly records: AuditRecord[];
    };

/** Options of {@link verifyAuditLog}. */
export interface VerifyAuditOptions {
  /**
   * Checkpoints kept outside the audit file (from the relay's log). The file must reach
   * each of them and hold exactly the recorded line there.
   */
  readonly checkpoints?: readonly AuditCheckpoint[];
}

/**
 * Checks the whole chain and decrypts every record. Any edit, insertion, deletion or
 * reordering of lines is reported with the first line where the chain breaks; with
 * checkpoints, so is the removal of records up to the newest checkpoint.
 */
export function verifyAuditLog(
  text: string,
  key: AeadKey,
  crypto: CryptoProvider,
  options: VerifyAuditOptions = {},
): AuditVerification {
  const expected = new Map<number, AuditCheckpoint>();
  for (const c of options.checkpoints ?? []) expected.set(c.seq, c);
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const records: AuditRecord[] = [];
  let prev = GENESIS;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const rec = parseLine(line);
    const fail = (reason: AuditFailureReason): AuditVerification => ({
      ok: false,
      line: i + 1,
      reason,
      records,
    });
    if (!rec) return fail('malformed');
    if (rec.seq !== i + 1) return fail('sequence');
    if (rec.prev !== prev) return fail('chain');
    let event: AuditEvent & { time: number };
    try {
      const plain = crypto.xchacha20poly1305.decrypt(
        key,
        unb64(rec.nonce),
        unb64(rec.data),
        aad(rec.seq, rec.prev),
      );
      event = JSON.parse(utf8Decode(plain)) as AuditEvent & { time: number };
    } catch {
      return fail('decrypt');
    }
    prev = toHex(crypto.sha256(utf8Encode(line)));
    const anchor = expected.get(rec.seq);
    if (anchor !== undefined && anchor.hash.toLowerCase() !== prev) {
      return { ok: false, line: i + 1, reason: 'checkpoint', checkpoint: anchor, records };
    }
    records.push({ ...event, seq: rec.seq });
  }
  const last = records.length;
  const beyond = [...expected.values()]
    .filter((c) => c.seq > last)
    .sort((a, b) => a.seq - b.seq)[0];
  if (beyond !== undefined) {
    return { ok: false, line: last + 1, reason: 'truncated', checkpoint: beyond, records };
  }
  return { ok: true, records, head: last === 0 ? undefined : { seq: last, hash: prev } };
}

/** One sentence for an operator about a failed verification. */
export function describeAuditFailure(v: Extract<AuditVerification, { ok: false }>): string {
  const cp = v.checkpoint;
  switch (v.reason) {
    case 'truncated':
      return `audit log truncated: it ends at record ${v.records.length}, but checkpoint ${cp?.seq} (hash ${cp?.hash}) was recorded`;
    case 'checkpoint':
      return `audit log record ${cp?.seq} (line ${v.line}) is not the one checkpoint ${cp?.seq} recorded (hash ${cp?.hash}): rewritten or cut and continued`;
    default:
      return `audit log does not verify at line ${v.line}: ${v.reason}`;
  }
}

/**
 * Checkpoints found in a relay's structured (pino) log: lines whose `auditCheckpoint`
 * field holds `{seq, hash}`. Other lines are skipped, so the whole log can be passed.
 */
export function readAuditCheckpoints(logText: string): AuditCheckpoint[] {
  const out: AuditCheckpoint[] = [];
  for (const line of logText.split('\n')) {
    if (!line.includes('auditCheckpoint')) continue;
    try {
      const c = (JSON.parse(line) as { auditCheckpoint?: Partial<AuditCheckpoint> })
        .auditCheckpoint;
      if (
        c !== undefined &&
        Number.isSafeInteger(c.seq) &&
        (c.seq as number) > 0 &&
        typeof c.hash === 'string' &&
        /^[0-9a-f]{64}$/i.test(c.hash)
      ) {
        out.push({ seq: c.seq as number, hash: c.hash.toLowerCase() });
      }
    } catch {
      // not a JSON line: not a checkpoint
    }
  }
  return out;
}

/**
 * Parses `SEQ:HASH` (as an operator notes it from the log) into a checkpoint; throws a
 * `CONFIG_INVALID` {@link ServerError} quoting the text when it is not one.
 */
export function parseAuditCheckpoint(text: string): AuditCheckpoint {
  const m = /^(\d+):([0-9a-fA-F]{64})$/.exec(text.trim());
  const seq = m ? Number(m[1]) : NaN;
  if (!m || !Number.isSafeInteger(seq) || seq < 1) {
    throw new ServerError(
      'CONFIG_INVALID',
      `checkpoint "${text}": expected SEQ:HASH (64 hex digits)`,
    );
  }
  return { seq, hash: (m[2] as string).toLowerCase() };
}
