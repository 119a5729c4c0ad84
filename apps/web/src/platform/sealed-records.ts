/**
 * How one store record is kept at rest in the browser: the IndexedDB key is
 * HMAC-SHA256(indexKey, logical key) (so peer names, message ids and record kinds are
 * not readable from the database), the value is nonce ‖ XChaCha20-Poly1305(encKey,
 * record) with the IndexedDB key as associated data (so a value moved to another slot
 * fails to open). Both subkeys come from the Argon2id store key through HKDF.
 *
 * Owns the byte layout of records; knows nothing of IndexedDB or of the store's logic.
 */
import { asAeadKey, concatBytes, fromHex, toHex, utf8Decode, utf8Encode } from '@parley/crypto';
import type { AeadKey, CryptoProvider } from '@parley/crypto';
import { ClientError } from '@parley/client';

const ENC_INFO = utf8Encode('parley/web-store/enc/v1');
const INDEX_INFO = utf8Encode('parley/web-store/index/v1');

/** A record as the store holds it in memory: its logical key and its value. */
export interface PlainRecord {
  readonly key: string;
  readonly value: unknown;
}

export class RecordSealer {
  private readonly encKey: AeadKey;
  private readonly indexKey: Uint8Array;

  constructor(
    private readonly crypto: CryptoProvider,
    storeKey: Uint8Array,
  ) {
    const empty = new Uint8Array(0);
    this.encKey = asAeadKey(crypto.hkdfSha256(storeKey, empty, ENC_INFO, 32));
    this.indexKey = crypto.hkdfSha256(storeKey, empty, INDEX_INFO, 32);
  }

  /** The IndexedDB key of a logical record key. */
  slot(key: string): string {
    return toHex(this.crypto.hmacSha256(this.indexKey, utf8Encode(key)));
  }

  seal(record: PlainRecord): { slot: string; value: Uint8Array } {
    const slot = this.slot(record.key);
    const aead = this.crypto.xchacha20poly1305;
    const nonce = this.crypto.randomBytes(aead.nonceBytes);
    const plain = utf8Encode(JSON.stringify([record.key, record.value], bytesReplacer));
    return {
      slot,
      value: concatBytes(nonce, aead.encrypt(this.encKey, nonce, plain, utf8Encode(slot))),
    };
  }

  /** Opens a stored value; `PROFILE_CORRUPT` if it does not authenticate or parse. */
  open(slot: string, sealed: unknown): PlainRecord {
    const aead = this.crypto.xchacha20poly1305;
    if (!(sealed instanceof Uint8Array) || sealed.length < aead.nonceBytes + 16) {
      throw new ClientError('PROFILE_CORRUPT', 'web store: a record is malformed');
    }
    let parsed: unknown;
    try {
      const plain = aead.decrypt(
        this.encKey,
        sealed.subarray(0, aead.nonceBytes),
        sealed.subarray(aead.nonceBytes),
        utf8Encode(slot),
      );
      parsed = JSON.parse(utf8Decode(plain), bytesReviver);
    } catch (err) {
      throw new ClientError('PROFILE_CORRUPT', 'web store: a record does not decrypt', {
        cause: err,
      });
    }
    if (!Array.isArray(parsed) || typeof parsed[0] !== 'string' || this.slot(parsed[0]) !== slot) {
      throw new ClientError('PROFILE_CORRUPT', 'web store: a record is in the wrong slot');
    }
    return { key: parsed[0], value: parsed[1] as unknown };
  }
}

// Byte strings travel through JSON as {"$b": hex}; no record field is named "$b".
function bytesReplacer(_k: string, v: unknown): unknown {
  return v instanceof Uint8Array ? { $b: toHex(v) } : v;
}

function bytesReviver(_k: string, v: unknown): unknown {
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    const b = o['$b'];
    if (typeof b === 'string' && Object.keys(o).length === 1) return fromHex(b);
  }
  return v;
}
