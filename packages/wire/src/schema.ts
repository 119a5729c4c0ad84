/**
 * The declarative field schema and its codec: a handful of bounded field types from
 * which every frame is built, and one reader and one writer that interpret them.
 *
 * Encoding (all integers big-endian, docs/wire.md §3):
 * - `u8`/`u16`/`u32`: 1/2/4 bytes; `u64`: 8 bytes, limited to 2^53-1 so it is a JS number;
 * - `bool`: one byte, 0 or 1; `enum`: one byte, the index into its value list;
 * - `bytes(n)`: exactly n bytes; `varbytes(max)`, `utf8(max)`, `list(max)`: a length
 *   (bytes or items) prefix whose width follows from `max` (u8 if max <= 255, u16 if
 *   <= 65535, else u32), then the content;
 * - `name`: a `utf8(64)` restricted to /^[a-z0-9][a-z0-9._-]{0,63}$/;
 * - `optional(T)`: one byte 0 (absent) or 1 (present, then T);
 * - `struct`: its fields in declaration order, no tags, no padding.
 * There is exactly one encoding of each value: the decoder rejects anything else.
 *
 * This module knows nothing about frame types or blocks.
 */
import { WireError, type WireErrorCode } from './errors.js';
import { MAX_NAME_BYTES } from './limits.js';

/* ---------- field types ---------- */

export interface U8Field {
  readonly kind: 'u8';
}
export interface U16Field {
  readonly kind: 'u16';
}
export interface U32Field {
  readonly kind: 'u32';
}
/** 8 bytes on the wire; values above `Number.MAX_SAFE_INTEGER` are rejected. */
export interface U64Field {
  readonly kind: 'u64';
}
export interface BoolField {
  readonly kind: 'bool';
}
export interface FixedBytesField {
  readonly kind: 'bytes';
  readonly length: number;
}
export interface VarBytesField {
  readonly kind: 'varbytes';
  readonly max: number;
}
export interface Utf8Field {
  readonly kind: 'utf8';
  /** Maximum length in UTF-8 bytes. */
  readonly max: number;
}
export interface NameField {
  readonly kind: 'name';
}
export interface EnumField<V extends string = string> {
  readonly kind: 'enum';
  readonly values: readonly V[];
}
export interface OptionalField<F extends FieldSchema = FieldSchema> {
  readonly kind: 'optional';
  readonly inner: F;
}
export interface ListField<F extends FieldSchema = FieldSchema> {
  readonly kind: 'list';
  readonly max: number;
  readonly item: F;
}
export interface StructField<S extends StructShape = StructShape> {
  readonly kind: 'struct';
  readonly fields: S;
}

export type FieldSchema =
  | U8Field
  | U16Field
  | U32Field
  | U64Field
  | BoolField
  | FixedBytesField
  | VarBytesField
  | Utf8Field
  | NameField
  | EnumField
  | OptionalField
  | ListField
  | StructField;

/** Fields of a struct, encoded in declaration (property insertion) order. */
export interface StructShape {
  readonly [field: string]: FieldSchema;
}

/** Field constructors. */
export const t = {
  u8: (): U8Field => ({ kind: 'u8' }),
  u16: (): U16Field => ({ kind: 'u16' }),
  u32: (): U32Field => ({ kind: 'u32' }),
  u64: (): U64Field => ({ kind: 'u64' }),
  bool: (): BoolField => ({ kind: 'bool' }),
  bytes: (length: number): FixedBytesField => ({ kind: 'bytes', length }),
  varbytes: (max: number): VarBytesField => ({ kind: 'varbytes', max }),
  utf8: (max: number): Utf8Field => ({ kind: 'utf8', max }),
  name: (): NameField => ({ kind: 'name' }),
  enum: <const V extends string>(values: readonly V[]): EnumField<V> => ({
    kind: 'enum',
    values,
  }),
  optional: <F extends FieldSchema>(inner: F): OptionalField<F> => ({ kind: 'optional', inner }),
  list: <F extends FieldSchema>(max: number, item: F): ListField<F> => ({
    kind: 'list',
    max,
    item,
  }),
  struct: <const S extends StructShape>(fields: S): StructField<S> => ({ kind: 'struct', fields }),
};

/* ---------- static types ---------- */

type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** The TypeScript value type of a field schema. */
export type Infer<F> = F extends U8Field | U16Field | U32Field | U64Field
  ? number
  : F extends BoolField
    ? boolean
    : F extends FixedBytesField | VarBytesField
      ? Uint8Array
      : F extends Utf8Field | NameField
        ? string
        : F extends EnumField<infer V>
          ? V
          : F extends ListField<infer I>
            ? readonly Infer<I>[]
            : F extends StructField<infer S>
              ? InferStruct<S>
              : F extends OptionalField<infer I>
                ? Infer<I> | undefined
                : never;

/**
 * Object type of a struct: optional fields become optional properties. They also
 * accept an explicit `undefined` (encoded as absent), so callers can pass through a
 * maybe-value under `exactOptionalPropertyTypes`; decoded frames omit absent keys.
 */
export type InferStruct<S extends StructShape> = Simplify<
  {
    readonly [K in keyof S as S[K] extends OptionalField ? never : K]: Infer<S[K]>;
  } & {
    readonly [K in keyof S as S[K] extends OptionalField ? K : never]?: S[K] extends OptionalField<
      infer I
    >
      ? Infer<I> | undefined
      : never;
  }
>;

/* ---------- helpers ---------- */

const MAX_U64_HIGH = 0x1fffff; // high 32 bits of Number.MAX_SAFE_INTEGER

/** Width in bytes of the length prefix for a field whose maximum is `max`. */
export function prefixBytes(max: number): 1 | 2 | 4 {
  return max <= 0xff ? 1 : max <= 0xffff ? 2 : 4;
}

/** Byte values allowed in a name after the first: a-z 0-9 . _ - */
function isNameByte(b: number, first: boolean): boolean {
  if ((b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39)) return true;
  return !first && (b === 0x2e || b === 0x5f || b === 0x2d);
}

/** The identity-name rule of the shared contract (same as the certificate CN rule). */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** True if `name` is a valid identity name. */
export function isValidName(name: unknown): name is string {
  return typeof name === 'string' && NAME_PATTERN.test(name);
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/* ---------- field paths ---------- */

/**
 * The path of the field being read or written ("send.to.deviceId"), kept as a stack
 * of keys and rendered only when an error is raised, so the hot path builds no strings.
 */
class Trail {
  private readonly keys: (string | number)[] = [];
  constructor(public root: string) {}
  push(key: string | number): void {
    this.keys.push(key);
  }
  pop(): void {
    this.keys.pop();
  }
  toString(): string {
    let s = this.root;
    for (const k of this.keys) s += typeof k === 'number' ? `[${k}]` : `.${k}`;
    return s;
  }
}

const entriesCache = new WeakMap<StructShape, readonly (readonly [string, FieldSchema])[]>();

/** A struct's fields in declaration order, computed once per shape. */
function entriesOf(shape: StructShape): readonly (readonly [string, FieldSchema])[] {
  let entries = entriesCache.get(shape);
  if (entries === undefined) {
    entries = Object.keys(shape).map((k) => [k, shape[k] as FieldSchema] as const);
    entriesCache.set(shape, entries);
  }
  return entries;
}

/* ---------- writer ---------- */

/** Growable big-endian byte writer. @internal */
export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  private pos = 0;
  /** Path of the field being written, for error messages. */
  readonly trail: Trail;

  /**
   * @param start bytes reserved (left zero) at the front of the buffer, so a caller can
   * encode straight into a block behind its header without another copy.
   */
  constructor(
    root = '',
    initialBytes = 512,
    private readonly start = 0,
  ) {
    this.trail = new Trail(root);
    this.buf = new Uint8Array(Math.max(initialBytes, start));
    this.view = new DataView(this.buf.buffer);
    this.pos = start;
  }

  /** Bytes written after the reserved start. */
  get length(): number {
    return this.pos - this.start;
  }

  /** The underlying buffer (reserved start, written bytes, then unused space). */
  get buffer(): Uint8Array {
    return this.buf;
  }

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.reserve(1);
    this.buf[this.pos++] = v;
  }
  u16(v: number): void {
    this.reserve(2);
    this.view.setUint16(this.pos, v);
    this.pos += 2;
  }
  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.pos, v);
    this.pos += 4;
  }
  u64(v: number): void {
    this.reserve(8);
    this.view.setUint32(this.pos, Math.floor(v / 0x100000000));
    this.view.setUint32(this.pos + 4, v >>> 0);
    this.pos += 8;
  }
  raw(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }
  prefix(width: 1 | 2 | 4, n: number): void {
    if (width === 1) this.u8(n);
    else if (width === 2) this.u16(n);
    else this.u32(n);
  }
  /** The written bytes, without the reserved start (a copy sized exactly). */
  finish(): Uint8Array {
    return this.buf.slice(this.start, this.pos);
  }
}

function invalid(w: ByteWriter, what: string): WireError {
  return new WireError('INVALID_ARGUMENT', `${w.trail.toString()}: ${what}`);
}

function checkInt(w: ByteWriter, v: unknown, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) {
    throw invalid(w, `expected an integer in 0..${max}`);
  }
  return v;
}

/**
 * Validates `value` against `field` and appends its encoding. Throws
 * `INVALID_ARGUMENT` naming the field path for any value the decoder would reject,
 * so an encoder can never produce bytes its own decoder refuses.
 */
export function writeField(w: ByteWriter, field: FieldSchema, value: unknown): void {
  switch (field.kind) {
    case 'u8':
      return w.u8(checkInt(w, value, 0xff));
    case 'u16':
      return w.u16(checkInt(w, value, 0xffff));
    case 'u32':
      return w.u32(checkInt(w, value, 0xffffffff));
    case 'u64':
      return w.u64(checkInt(w, value, Number.MAX_SAFE_INTEGER));
    case 'bool':
      if (typeof value !== 'boolean') throw invalid(w, 'expected a boolean');
      return w.u8(value ? 1 : 0);
    case 'bytes':
      if (!(value instanceof Uint8Array) || value.length !== field.length) {
        throw invalid(w, `expected Uint8Array of ${field.length} bytes`);
      }
      return w.raw(value);
    case 'varbytes':
      if (!(value instanceof Uint8Array) || value.length > field.max) {
        throw invalid(w, `expected Uint8Array of at most ${field.max} bytes`);
      }
      w.prefix(prefixBytes(field.max), value.length);
      return w.raw(value);
    case 'utf8': {
      if (typeof value !== 'string') throw invalid(w, 'expected a string');
      const bytes = utf8Encoder.encode(value);
      // A lone surrogate would be replaced by U+FFFD and not round-trip.
      if (bytes.length > field.max || utf8Decoder.decode(bytes) !== value) {
        throw invalid(w, `expected well-formed text of at most ${field.max} UTF-8 bytes`);
      }
      w.prefix(prefixBytes(field.max), bytes.length);
      return w.raw(bytes);
    }
    case 'name': {
      if (!isValidName(value)) {
        throw invalid(w, 'expected a name of 1..64 characters [a-z0-9._-], starting [a-z0-9]');
      }
      w.u8(value.length);
      for (let i = 0; i < value.length; i++) w.u8(value.charCodeAt(i));
      return;
    }
    case 'enum': {
      const index = typeof value === 'string' ? field.values.indexOf(value) : -1;
      if (index < 0) throw invalid(w, `expected one of ${field.values.join(', ')}`);
      return w.u8(index);
    }
    case 'optional':
      if (value === undefined) return w.u8(0);
      w.u8(1);
      return writeField(w, field.inner, value);
    case 'list': {
      if (!Array.isArray(value) || value.length > field.max) {
        throw invalid(w, `expected an array of at most ${field.max} items`);
      }
      w.prefix(prefixBytes(field.max), value.length);
      for (let i = 0; i < value.length; i++) {
        w.trail.push(i);
        writeField(w, field.item, value[i]);
        w.trail.pop();
      }
      return;
    }
    case 'struct':
      return writeStruct(w, field.fields, value);
  }
}

/** Appends the fields of `shape`, in declaration order, taken from `value`. */
export function writeStruct(w: ByteWriter, shape: StructShape, value: unknown): void {
  if (typeof value !== 'object' || value === null) throw invalid(w, 'expected an object');
  const record = value as Record<string, unknown>;
  for (const [key, field] of entriesOf(shape)) {
    w.trail.push(key);
    writeField(w, field, record[key]);
    w.trail.pop();
  }
}

/* ---------- reader ---------- */

/** Bounds-checked big-endian reader over untrusted bytes. @internal */
export class ByteReader {
  private pos = 0;
  private readonly view: DataView;
  /** Path of the field being read, for error messages. */
  readonly trail: Trail;

  constructor(
    private readonly bytes: Uint8Array,
    root = '',
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.trail = new Trail(root);
  }

  get remaining(): number {
    return this.bytes.length - this.pos;
  }

  /** A `WireError` whose message starts with the current field path. */
  error(code: WireErrorCode, what: string): WireError {
    return new WireError(code, `${this.trail.toString()}: ${what}`);
  }

  private need(n: number): void {
    if (this.bytes.length - this.pos < n)
      throw this.error('FRAME_TRUNCATED', `needs ${n} more bytes`);
  }
  u8(): number {
    this.need(1);
    return this.bytes[this.pos++] as number;
  }
  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): number {
    this.need(8);
    const high = this.view.getUint32(this.pos);
    const low = this.view.getUint32(this.pos + 4);
    if (high > MAX_U64_HIGH) throw this.error('FIELD_INVALID', 'u64 above 2^53-1');
    this.pos += 8;
    return high * 0x100000000 + low;
  }
  /** A copy, so decoded values never alias the (possibly pooled) input buffer. */
  raw(n: number): Uint8Array {
    this.need(n);
    const out = this.bytes.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  /** A view, for callers that only inspect the bytes before copying what they keep. */
  borrow(n: number): Uint8Array {
    this.need(n);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  prefix(width: 1 | 2 | 4): number {
    return width === 1 ? this.u8() : width === 2 ? this.u16() : this.u32();
  }
  /** Reads a length or count prefix and checks it against `max` before anything is allocated. */
  length(max: number): number {
    const n = this.prefix(prefixBytes(max));
    if (n > max) throw this.error('FIELD_TOO_LONG', `length ${n} exceeds ${max}`);
    return n;
  }
}

/** Reads one value of `field`, enforcing every bound before allocating. */
export function readField(r: ByteReader, field: FieldSchema): unknown {
  switch (field.kind) {
    case 'u8':
      return r.u8();
    case 'u16':
      return r.u16();
    case 'u32':
      return r.u32();
    case 'u64':
      return r.u64();
    case 'bool': {
      const b = r.u8();
      if (b > 1) throw r.error('FIELD_INVALID', `bool byte ${b}`);
      return b === 1;
    }
    case 'bytes':
      return r.raw(field.length);
    case 'varbytes':
      return r.raw(r.length(field.max));
    case 'utf8': {
      const bytes = r.borrow(r.length(field.max));
      try {
        return utf8Decoder.decode(bytes);
      } catch {
        throw r.error('FIELD_INVALID', 'invalid UTF-8');
      }
    }
    case 'name': {
      const n = r.u8();
      if (n < 1 || n > MAX_NAME_BYTES)
        throw r.error('FIELD_INVALID', `name length ${n} outside 1..64`);
      const bytes = r.borrow(n);
      let s = '';
      for (let i = 0; i < n; i++) {
        const b = bytes[i] as number;
        if (!isNameByte(b, i === 0))
          throw r.error('FIELD_INVALID', `byte ${i} not allowed in a name`);
        s += String.fromCharCode(b);
      }
      return s;
    }
    case 'enum': {
      const i = r.u8();
      const v = field.values[i];
      if (v === undefined) throw r.error('FIELD_INVALID', `enum index ${i}`);
      return v;
    }
    case 'optional': {
      const tag = r.u8();
      if (tag === 0) return undefined;
      if (tag !== 1) throw r.error('FIELD_INVALID', `presence byte ${tag}`);
      return readField(r, field.inner);
    }
    case 'list': {
      const n = r.length(field.max);
      const out: unknown[] = [];
      for (let i = 0; i < n; i++) {
        r.trail.push(i);
        out.push(readField(r, field.item));
        r.trail.pop();
      }
      return out;
    }
    case 'struct':
      return readStruct(r, field.fields);
  }
}

/** Reads the fields of `shape` into `into` (a fresh object by default); absent optionals are omitted. */
export function readStruct(
  r: ByteReader,
  shape: StructShape,
  into: Record<string, unknown> = {},
): Record<string, unknown> {
  for (const [key, field] of entriesOf(shape)) {
    r.trail.push(key);
    const v = readField(r, field);
    r.trail.pop();
    if (v !== undefined) into[key] = v;
  }
  return into;
}

/** Largest number of bytes any value of `field` can encode to (for limit checks and docs). */
export function maxEncodedBytes(field: FieldSchema): number {
  switch (field.kind) {
    case 'u8':
    case 'bool':
    case 'enum':
      return 1;
    case 'u16':
      return 2;
    case 'u32':
      return 4;
    case 'u64':
      return 8;
    case 'bytes':
      return field.length;
    case 'varbytes':
    case 'utf8':
      return prefixBytes(field.max) + field.max;
    case 'name':
      return 1 + MAX_NAME_BYTES;
    case 'optional':
      return 1 + maxEncodedBytes(field.inner);
    case 'list':
      return prefixBytes(field.max) + field.max * maxEncodedBytes(field.item);
    case 'struct':
      return maxStructBytes(field.fields);
  }
}

/** Largest encoding of a struct with fields `shape`. */
export function maxStructBytes(shape: StructShape): number {
  let total = 0;
  for (const [, field] of entriesOf(shape)) total += maxEncodedBytes(field);
  return total;
}
