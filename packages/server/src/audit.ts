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
 * What this does not detect: truncation of the newest records (there is no later record
 * to miss them). An operator who needs that ships lines off-box as they are written.
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
  | 'conn.cap'
  | 'conn.idle'
  | 'prekeys.rejected'
  | 'crl.reloaded'
  | 'relay.start'
  | 'relay.stop';

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
}

/** A decrypted, verified record. */
export interface AuditRecord extends AuditEvent {
  readonly seq: number;
  /** Milliseconds since the epoch. */
  readonly time: number;
}

const GENESIS = '0'.repeat(64);
/** Bytes of the audit key (XChaCha20-Poly1305). */
export const AUDIT_KEY_BYTES = 32;
/** Bytes read from the end of an existing log to find the last record on restart. */
const TAIL_READ_BYTES = 64 * 1024;

const aad = (seq: number, prev: string): Uint8Array => utf8Encode(`parley-audit-v1|${seq}|${prev}`);
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const unb64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));

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
  /** Records written by this process (metrics). */
  written = 0;

  constructor(file: string, key: AeadKey, crypto: CryptoProvider, now: () => number = Date.now) {
    this.#key = key;
    this.#crypto = crypto;
    this.#now = now;
    this.#fd = openSync(file, 'a+', 0o600);
    const { seq, prev } = this.#readTail();
    this.#seq = seq;
    this.#prev = prev;
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
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeSync(this.#fd);
  }
}

/** Outcome of {@link verifyAuditLog}. */
export type AuditVerification =
  | { readonly ok: true; readonly records: AuditRecord[] }
  | {
      readonly ok: false;
      /** 1-based line number of the first record that does not verify. */
      readonly line: number;
      readonly reason: 'malformed' | 'sequence' | 'chain' | 'decrypt';
      /** Records that verified before the break. */
      readonly records: AuditRecord[];
    };

/**
 * Checks the whole chain and decrypts every record. Any edit, insertion, deletion or
 * reordering of lines is reported with the first line where the chain breaks.
 */
export function verifyAuditLog(
  text: string,
  key: AeadKey,
  crypto: CryptoProvider,
): AuditVerification {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const records: AuditRecord[] = [];
  let prev = GENESIS;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const rec = parseLine(line);
    const fail = (reason: 'malformed' | 'sequence' | 'chain' | 'decrypt'): AuditVerification => ({
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
    records.push({ ...event, seq: rec.seq });
    prev = toHex(crypto.sha256(utf8Encode(line)));
  }
  return { ok: true, records };
}
