/**
 * The duress passphrase (M40): a second passphrase whose use erases the profile's keys
 * and history and opens a plausible empty profile in their place.
 *
 * Every profile header carries a duress slot `{check, sealed}` of fixed size. When no
 * duress passphrase is set the slot is random bytes; when one is set, `check` is an HMAC
 * of a fixed label under the key the duress passphrase derives (same Argon2id
 * parameters and salt as the real passphrase) and `sealed` is the decoy template (the
 * account's name, relay and CA: what an empty profile of this person would still
 * hold) encrypted under a key derived from it. The two are indistinguishable without
 * the passphrase, so the header does not say whether a duress passphrase exists.
 *
 * Unlocking runs one Argon2id and compares the result against both check values in
 * constant time, whichever passphrase was typed: the costly work is the same on both
 * paths. This module owns the slot format, the wipe and the decoy; profile.ts decides
 * when to call them.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { createHmac, randomFillSync } from 'node:crypto';
import { join } from 'node:path';
import {
  asAeadKey,
  constantTimeEqual,
  fromHex,
  toHex,
  utf8Decode,
  utf8Encode,
  zeroize,
} from '@parley/crypto';
import type { CryptoProvider } from '@parley/crypto';
import { ed25519SeedFromPkcs8Pem, generateDeviceKeyPem } from '@parley/pki';
import { Account, ClientError } from '@parley/client';
import type { AccountInfo, StoreWrite } from '@parley/client';

/** The header's duress slot: hex HMAC and base64 sealed template (or random filler). */
export interface DuressSlot {
  readonly check: string;
  readonly sealed: string;
}

/** What the decoy keeps: nothing secret, only what makes it look like this person's profile. */
export interface DecoyTemplate {
  readonly account: Pick<AccountInfo, 'name' | 'deviceId' | 'server' | 'mode' | 'createdAt'>;
  /** Public meta records to keep (open mode: the CA), as UTF-8 text by key. */
  readonly meta: Readonly<Record<string, string>>;
  /** mtls: the meta key under which a new device key is stored (keygen's layout). */
  readonly deviceKeyMeta?: string;
}

/**
 * Plaintext size of the sealed template, fixed so the slot's length never depends on
 * what it holds (a CA certificate is well under 3 KiB).
 */
export const DECOY_TEMPLATE_BYTES = 4096;
const NONCE_BYTES = 24;
const TAG_BYTES = 16;
/** Length of the sealed slot in bytes: nonce, padded template, tag. */
export const DURESS_SEALED_BYTES = NONCE_BYTES + DECOY_TEMPLATE_BYTES + TAG_BYTES;
const CHECK_LABEL = utf8Encode('parley/profile/duress-check/v1');
const SEAL_INFO = utf8Encode('parley/profile/duress-seal/v1');
const SEAL_AAD = utf8Encode('parley-profile duress slot v1');
/** Overwrite chunk: big enough to be quick, small enough not to hold a big file in memory. */
const WIPE_CHUNK_BYTES = 1024 * 1024;

/** A slot that holds no duress passphrase: random bytes shaped like a real one. */
export function emptyDuressSlot(crypto: CryptoProvider): DuressSlot {
  return {
    check: toHex(crypto.randomBytes(32)),
    sealed: Buffer.from(crypto.randomBytes(DURESS_SEALED_BYTES)).toString('base64'),
  };
}

/** Validates a slot read from an untrusted header; throws `PROFILE_CORRUPT`. */
export function checkDuressSlot(v: unknown): DuressSlot {
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  const check = o['check'];
  const sealed = o['sealed'];
  if (
    typeof check !== 'string' ||
    !/^[0-9a-f]{64}$/.test(check) ||
    typeof sealed !== 'string' ||
    Buffer.from(sealed, 'base64').length !== DURESS_SEALED_BYTES
  ) {
    throw new ClientError('PROFILE_CORRUPT', 'profile header: duress slot malformed');
  }
  return { check, sealed };
}

/**
 * Constant-time: does `key` open the duress slot? Computes the HMAC even without a slot,
 * so an unlock costs the same whether or not one is set.
 */
export function duressMatches(
  crypto: CryptoProvider,
  key: Uint8Array,
  slot: DuressSlot | undefined,
): boolean {
  const mac = crypto.hmacSha256(key, CHECK_LABEL);
  const expected = slot ? fromHex(slot.check) : new Uint8Array(32);
  return constantTimeEqual(mac, expected) && slot !== undefined;
}

function sealKey(crypto: CryptoProvider, key: Uint8Array): Uint8Array {
  return crypto.hkdfSha256(key, new Uint8Array(0), SEAL_INFO, 32);
}

/** The slot for a duress passphrase whose derived key is `key`. */
export function makeDuressSlot(
  crypto: CryptoProvider,
  key: Uint8Array,
  template: DecoyTemplate,
): DuressSlot {
  const json = utf8Encode(JSON.stringify(template));
  if (json.length > DECOY_TEMPLATE_BYTES) {
    throw new ClientError(
      'INVALID_ARGUMENT',
      `the profile's CA certificate is too large for the duress slot (${DECOY_TEMPLATE_BYTES} bytes)`,
    );
  }
  // Padded with spaces, which JSON.parse ignores after the value.
  const padded = new Uint8Array(DECOY_TEMPLATE_BYTES).fill(0x20);
  padded.set(json);
  const nonce = crypto.randomBytes(NONCE_BYTES);
  const k = sealKey(crypto, key);
  try {
    const sealed = crypto.xchacha20poly1305.encrypt(asAeadKey(k), nonce, padded, SEAL_AAD);
    return {
      check: toHex(crypto.hmacSha256(key, CHECK_LABEL)),
      sealed: Buffer.concat([nonce, sealed]).toString('base64'),
    };
  } finally {
    zeroize(k);
  }
}

/** Opens the template of a slot that `duressMatches`; `PROFILE_CORRUPT` if it was altered. */
export function openDecoyTemplate(
  crypto: CryptoProvider,
  key: Uint8Array,
  slot: DuressSlot,
): DecoyTemplate {
  const raw = new Uint8Array(Buffer.from(slot.sealed, 'base64'));
  const k = sealKey(crypto, key);
  try {
    const plain = crypto.xchacha20poly1305.decrypt(
      asAeadKey(k),
      raw.subarray(0, NONCE_BYTES),
      raw.subarray(NONCE_BYTES),
      SEAL_AAD,
    );
    return JSON.parse(utf8Decode(plain)) as DecoyTemplate;
  } catch (err) {
    throw new ClientError('PROFILE_CORRUPT', 'profile header: duress slot damaged', { cause: err });
  } finally {
    zeroize(k);
  }
}

/**
 * Overwrites a file with random bytes over its whole length, syncs, then unlinks it.
 * On a disk that rewrites in place this destroys the old bytes; on flash and copy-on-write
 * file systems the old blocks may survive outside the file (docs/client.md says so).
 */
export function overwriteAndUnlink(path: string): void {
  if (!existsSync(path)) return;
  const size = statSync(path).size;
  const fd = openSync(path, 'r+');
  try {
    const chunk = Buffer.alloc(Math.min(WIPE_CHUNK_BYTES, Math.max(size, 1)));
    for (let at = 0; at < size; at += chunk.length) {
      randomFillSync(chunk);
      writeSync(fd, chunk, 0, Math.min(chunk.length, size - at), at);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  unlinkSync(path);
}

/** SQLCipher 4's default page size: the unit of its per-page decrypt-and-verify work. */
const SQLCIPHER_PAGE_BYTES = 4096;

/**
 * Stand-in for the per-page work that opening the real store costs, done on the bytes
 * about to be destroyed: read every page and compute an HMAC-SHA512 over it, as
 * SQLCipher does when `quick_check` on the real path reads, verifies and decrypts every
 * page. Its only purpose is timing: without it the duress path of a large profile is
 * faster than the real one by a margin that grows with the store (measured: 120 ms at
 * 50 000 messages), and the overwrite alone does not make up for it. The key is
 * throwaway and the result is discarded.
 */
export function spendOpenWork(paths: readonly string[]): void {
  const key = Buffer.alloc(32);
  randomFillSync(key);
  let sink = 0;
  for (const path of paths) {
    if (!existsSync(path)) continue;
    const fd = openSync(path, 'r');
    try {
      const chunk = Buffer.alloc(WIPE_CHUNK_BYTES);
      for (let n = readSync(fd, chunk); n > 0; n = readSync(fd, chunk)) {
        for (let at = 0; at + SQLCIPHER_PAGE_BYTES <= n; at += SQLCIPHER_PAGE_BYTES) {
          const page = chunk.subarray(at, at + SQLCIPHER_PAGE_BYTES);
          sink ^= createHmac('sha512', key).update(page).digest()[0] as number;
        }
      }
    } finally {
      closeSync(fd);
    }
  }
  key.fill(0);
  // Keeps the loop observable so it cannot be optimised away; never true.
  if (sink > 255) throw new Error('unreachable');
}

/** Every file of a profile's database, including SQLite's side files. */
export function databaseFiles(dir: string, dbFile: string): string[] {
  return ['', '-wal', '-shm', '-journal'].map((suffix) => join(dir, dbFile + suffix));
}

/**
 * The records of the decoy, the same writes the commands that make a new profile make:
 * open mode, `init` (the template's account, unregistered, a fresh identity key, the CA);
 * mtls, `keygen` (a fresh device key stored where `keygen` stores it, no certificate,
 * no CA), since an mtls device without its certificate looks like one awaiting
 * enrolment. The real identity key is gone either way.
 */
export async function decoyWrites(
  crypto: CryptoProvider,
  template: DecoyTemplate,
): Promise<StoreWrite[]> {
  let seed: Uint8Array;
  const extra: StoreWrite[] = [];
  if (template.account.mode === 'mtls' && template.deviceKeyMeta !== undefined) {
    const keyPem = await generateDeviceKeyPem();
    seed = ed25519SeedFromPkcs8Pem(keyPem);
    extra.push({ op: 'meta.put', key: template.deviceKeyMeta, value: utf8Encode(keyPem) });
  } else {
    seed = crypto.randomBytes(32);
  }
  const writes = Account.creationWrites({ ...template.account, registered: false }, seed);
  for (const [key, value] of Object.entries(template.meta)) {
    writes.push({ op: 'meta.put', key, value: utf8Encode(value) });
  }
  return [...writes, ...extra];
}
