/** Shared fixtures: two devices with identities, prekeys and a deterministic context. */
import { createPortableCrypto, createSeededRandom, type CryptoProvider } from '@parley/crypto';
import {
  IdentityKeyPair,
  MemoryPreKeyStore,
  ProtocolError,
  assemblePreKeyBundle,
  generateKemPreKey,
  generateOneTimeKemPreKeys,
  generateOneTimePreKeys,
  generateSignedPreKey,
  publicKemPreKey,
  publicOneTimePreKey,
  publicSignedPreKey,
  type Address,
  type MessageMeta,
  type PreKeyBundle,
  type ProtocolContext,
} from '@parley/protocol';

export const ALICE: Address = { userId: 'alice', deviceId: 1 };
export const BOB: Address = { userId: 'bob', deviceId: 1 };

export function seeded(seedByte: number): CryptoProvider {
  return createPortableCrypto({ random: createSeededRandom(new Uint8Array(32).fill(seedByte)) });
}

export function fakeClock(start = 1_750_000_000_000): {
  now: () => number;
  advance(ms: number): void;
} {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}

export function ctxOf(
  crypto: CryptoProvider,
  now: () => number = () => 1_750_000_000_000,
): ProtocolContext {
  return { crypto, now };
}

export function meta(
  from: Address,
  to: Address,
  timestampMs = 1_750_000_000_000,
  messageType = 1,
): MessageMeta {
  return { sender: from, recipient: to, messageType, timestampMs };
}

export interface Device {
  identity: IdentityKeyPair;
  store: MemoryPreKeyStore;
}

/** A device with a signed prekey (id 1), a last-resort KEM key (id 1) and one-time keys. */
export function makeDevice(
  crypto: CryptoProvider,
  opts: { oneTime?: number; oneTimeKem?: number } = {},
): Device {
  const identity = IdentityKeyPair.generate(crypto);
  const store = new MemoryPreKeyStore();
  store.addSignedPreKey(generateSignedPreKey(crypto, identity, 1, 0));
  store.addKemPreKey(generateKemPreKey(crypto, identity, 1, 'last-resort', 0));
  for (const k of generateOneTimePreKeys(crypto, 100, opts.oneTime ?? 0)) store.addOneTimePreKey(k);
  for (const k of generateOneTimeKemPreKeys(crypto, identity, 200, opts.oneTimeKem ?? 0, 0)) {
    store.addKemPreKey(k);
  }
  return { identity, store };
}

/** The bundle the relay would hand out: one one-time key of each kind if any remain. */
export function bundleOf(d: Device): PreKeyBundle {
  const otk = [...d.store.oneTime.values()][0];
  const kems = [...d.store.kem.values()];
  const kem = kems.find((k) => k.kind === 'one-time') ?? kems.find((k) => k.kind === 'last-resort');
  const spk = d.store.signed.get(1);
  if (!kem || !spk) throw new Error('fixture: no last-resort or signed prekey');
  return assemblePreKeyBundle({
    identity: d.identity.publicIdentity,
    signedPreKey: publicSignedPreKey(spk),
    kemPreKey: publicKemPreKey(kem),
    oneTimePreKey: otk ? publicOneTimePreKey(otk) : undefined,
  });
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);
export const untext = (b: Uint8Array): string => new TextDecoder().decode(b);

/** The `ProtocolError` code `run` throws, or undefined if it returns; other errors propagate. */
export function code(run: () => unknown): string | undefined {
  try {
    run();
  } catch (e) {
    if (e instanceof ProtocolError) return e.code;
    throw e;
  }
  return undefined;
}
