/**
 * Byte layout helpers (big-endian integers, length-checked reads) and the canonical
 * encodings of addresses and message metadata that go into associated data.
 * Owns no protocol logic; every reader failure is `INVALID_MESSAGE` (or the caller's
 * chosen code) so that malformed input never escapes as a RangeError.
 */
import { utf8Decode, utf8Encode } from '@parley/crypto';
import { MAX_USER_ID_BYTES, PROTOCOL_VERSION } from './constants.js';
import { ProtocolError, type ProtocolErrorCode } from './errors.js';

/** A device address: the contract shared with the relay, the PKI and the client. */
export interface Address {
  /** UTF-8, 1..64 bytes. */
  readonly userId: string;
  /** u32; a user's first device is 1. */
  readonly deviceId: number;
}

/**
 * Routing metadata bound into every message's associated data. Both sides must pass
 * the same values (the relay delivers sender, recipient and timestamp alongside the
 * envelope), so changing any of them in transit makes decryption fail.
 */
export interface MessageMeta {
  readonly sender: Address;
  readonly recipient: Address;
  /** Application message type, u8 (e.g. text, receipt); opaque to this package. */
  readonly messageType: number;
  /** Sender's timestamp in milliseconds since the epoch (0..2^53-1). */
  readonly timestampMs: number;
}

export class ByteWriter {
  private buf: Uint8Array;
  private len = 0;
  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
  }
  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
  u8(v: number): this {
    this.ensure(1);
    this.buf[this.len++] = v & 0xff;
    return this;
  }
  u16(v: number): this {
    this.ensure(2);
    this.buf[this.len++] = (v >>> 8) & 0xff;
    this.buf[this.len++] = v & 0xff;
    return this;
  }
  u32(v: number): this {
    this.ensure(4);
    this.buf[this.len++] = (v >>> 24) & 0xff;
    this.buf[this.len++] = (v >>> 16) & 0xff;
    this.buf[this.len++] = (v >>> 8) & 0xff;
    this.buf[this.len++] = v & 0xff;
    return this;
  }
  /** Unsigned 64-bit from a non-negative safe integer. */
  u64(v: number): this {
    return this.u32(Math.floor(v / 0x1_0000_0000)).u32(v >>> 0);
  }
  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }
  /** u32 length prefix, then the bytes. */
  varBytes(b: Uint8Array): this {
    return this.u32(b.length).bytes(b);
  }
  /** The written bytes; no copy when the initial size was exact (the writer is done). */
  finish(): Uint8Array {
    return this.len === this.buf.length ? this.buf : this.buf.slice(0, this.len);
  }
}

export class ByteReader {
  private pos = 0;
  constructor(
    private readonly buf: Uint8Array,
    private readonly code: ProtocolErrorCode = 'INVALID_MESSAGE',
  ) {}
  private fail(): never {
    throw new ProtocolError(
      this.code,
      this.code === 'INVALID_MESSAGE' ? 'invalid message' : 'truncated or malformed input',
    );
  }
  private need(n: number): void {
    if (this.pos + n > this.buf.length) this.fail();
  }
  get offset(): number {
    return this.pos;
  }
  get remaining(): number {
    return this.buf.length - this.pos;
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++] as number;
  }
  u16(): number {
    this.need(2);
    const v = ((this.buf[this.pos] as number) << 8) | (this.buf[this.pos + 1] as number);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const b = this.buf;
    const p = this.pos;
    const v =
      (((b[p] as number) << 24) >>> 0) +
      ((b[p + 1] as number) << 16) +
      ((b[p + 2] as number) << 8) +
      (b[p + 3] as number);
    this.pos += 4;
    return v;
  }
  u64(): number {
    const hi = this.u32();
    const lo = this.u32();
    if (hi > 0x1fffff) this.fail();
    return hi * 0x1_0000_0000 + lo;
  }
  /** A copy (never a view), so stored keys do not pin or alias the input buffer. */
  bytes(n: number): Uint8Array {
    this.need(n);
    const out = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  varBytes(max: number): Uint8Array {
    const n = this.u32();
    if (n > max) this.fail();
    return this.bytes(n);
  }
  rest(): Uint8Array {
    return this.bytes(this.remaining);
  }
  end(): void {
    if (this.pos !== this.buf.length) this.fail();
  }
}

export function checkU32(arg: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) {
    throw new ProtocolError('INVALID_ARGUMENT', `${arg}: expected an integer 0..2^32-1`);
  }
}

/**
 * UTF-8 of recently seen user ids: every message encodes two addresses into its AD,
 * and a conversation repeats the same few. Bounded; cleared when full.
 */
const USER_ID_CACHE_ENTRIES = 1024;
const userIdBytes = new Map<string, Uint8Array>();
function encodeUserId(userId: string): Uint8Array {
  let b = userIdBytes.get(userId);
  if (!b) {
    if (userIdBytes.size >= USER_ID_CACHE_ENTRIES) userIdBytes.clear();
    b = utf8Encode(userId);
    userIdBytes.set(userId, b);
  }
  return b;
}

/** Validates an address and returns its userId as UTF-8 (shared: do not modify). */
export function checkAddress(arg: string, a: Address): Uint8Array {
  const id = encodeUserId(a.userId);
  if (id.length < 1 || id.length > MAX_USER_ID_BYTES) {
    throw new ProtocolError(
      'INVALID_ARGUMENT',
      `${arg}.userId: expected 1..${MAX_USER_ID_BYTES} bytes of UTF-8`,
    );
  }
  checkU32(`${arg}.deviceId`, a.deviceId);
  return id;
}

export function writeAddress(w: ByteWriter, a: Address): void {
  const id = checkAddress('address', a);
  w.u8(id.length).bytes(id).u32(a.deviceId);
}

export function readAddress(r: ByteReader): Address {
  const n = r.u8();
  const userId = utf8Decode(r.bytes(n));
  return { userId, deviceId: r.u32() };
}

/** Two addresses are the same device. */
export function sameAddress(a: Address, b: Address): boolean {
  return a.userId === b.userId && a.deviceId === b.deviceId;
}

/**
 * AD part 1 (protocol.md §Associated data): version ‖ envelope type ‖ sender ‖
 * recipient ‖ message type ‖ timestamp.
 */
export function encodeMetaAd(envelopeType: number, meta: MessageMeta): Uint8Array {
  if (!Number.isInteger(meta.messageType) || meta.messageType < 0 || meta.messageType > 255) {
    throw new ProtocolError('INVALID_ARGUMENT', 'meta.messageType: expected an integer 0..255');
  }
  if (
    !Number.isInteger(meta.timestampMs) ||
    meta.timestampMs < 0 ||
    meta.timestampMs > Number.MAX_SAFE_INTEGER
  ) {
    throw new ProtocolError(
      'INVALID_ARGUMENT',
      'meta.timestampMs: expected a non-negative safe integer',
    );
  }
  const sender = checkAddress('meta.sender', meta.sender);
  const recipient = checkAddress('meta.recipient', meta.recipient);
  const w = new ByteWriter(2 + 5 + sender.length + 5 + recipient.length + 1 + 8);
  w.u8(PROTOCOL_VERSION).u8(envelopeType);
  w.u8(sender.length).bytes(sender).u32(meta.sender.deviceId);
  w.u8(recipient.length).bytes(recipient).u32(meta.recipient.deviceId);
  w.u8(meta.messageType).u64(meta.timestampMs);
  return w.finish();
}
