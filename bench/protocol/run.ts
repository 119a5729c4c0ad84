/**
 * `npm run bench:protocol`: Parley's protocol against @signalapp/libsignal-client on
 * the same workloads, in one process, medians of several repetitions.
 *   setup       — Alice verifies Bob's bundle, starts a session and encrypts a first
 *                 256-byte message; Bob answers the initial message and decrypts it
 *                 (no one-time prekeys on either side: signed + last-resort PQ keys).
 *   burst       — 256-byte messages in one direction, each encrypted and decrypted.
 *   alternating — the direction changes every message (a DH ratchet turn each time,
 *                 plus both libraries' post-quantum ratchets), each encrypt + decrypt.
 * Ratio = Parley throughput ÷ libsignal throughput (> 1 means Parley is faster).
 * Parley uses the Node provider (`@parley/crypto/node`) when it loads, else portable.
 */
import { createPortableCrypto, type CryptoProvider } from '@parley/crypto';
import {
  IdentityKeyPair,
  assemblePreKeyBundle,
  decrypt,
  encrypt,
  generateKemPreKey,
  generateSignedPreKey,
  initiateSession,
  publicKemPreKey,
  publicSignedPreKey,
  respondToPreKeyMessage,
  verifyPreKeyBundle,
  type Address,
  type ProtocolContext,
  type Session,
} from '@parley/protocol';
import { libsignalBob, libsignalSend, libsignalSetup, type LibsignalParty } from './libsignal.js';

const REPETITIONS = Number(process.env.BENCH_REPS ?? 7);
const SETUPS_PER_REP = Number(process.env.BENCH_SETUPS ?? 60);
const BURST_PER_REP = Number(process.env.BENCH_BURST ?? 2000);
const ALTERNATING_PER_REP = Number(process.env.BENCH_ALTERNATING ?? 600);
const MESSAGE_BYTES = 256;

async function loadProvider(): Promise<CryptoProvider> {
  try {
    const mod = (await import('@parley/crypto/node')) as {
      createNodeCrypto?: () => CryptoProvider;
    };
    if (mod.createNodeCrypto) return mod.createNodeCrypto();
  } catch {
    // Node provider not built yet: fall back to the portable one (slower).
  }
  return createPortableCrypto();
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

async function rate(rep: () => Promise<number> | number): Promise<number> {
  const t0 = performance.now();
  const ops = await rep();
  return ops / ((performance.now() - t0) / 1000);
}

/**
 * Runs both sides' repetitions interleaved (P, L, P, L, …) after one warm-up each, so
 * that load from other processes on this shared machine falls on both alike; returns
 * the median ops/s of each side.
 */
async function measurePair(
  parley: () => Promise<number> | number,
  libsignal: () => Promise<number> | number,
): Promise<[number, number]> {
  await parley();
  await libsignal();
  const p: number[] = [];
  const s: number[] = [];
  for (let i = 0; i < REPETITIONS; i++) {
    p.push(await rate(parley));
    s.push(await rate(libsignal));
  }
  return [median(p), median(s)];
}

// ---------------------------------------------------------------- Parley

const ALICE: Address = { userId: 'alice', deviceId: 1 };
const BOB: Address = { userId: 'bob', deviceId: 1 };

function parleyFixture(crypto: CryptoProvider) {
  const ctx: ProtocolContext = { crypto, now: () => Date.now() };
  const alice = IdentityKeyPair.generate(crypto);
  const bob = IdentityKeyPair.generate(crypto);
  const spk = generateSignedPreKey(crypto, bob, 1, Date.now());
  const kem = generateKemPreKey(crypto, bob, 1, 'last-resort', Date.now());
  const bundle = assemblePreKeyBundle({
    identity: bob.publicIdentity,
    signedPreKey: publicSignedPreKey(spk),
    kemPreKey: publicKemPreKey(kem),
  });
  const setup = (plaintext: Uint8Array): { a: Session; b: Session } => {
    const verified = verifyPreKeyBundle(crypto, bundle);
    const m = { sender: ALICE, recipient: BOB, messageType: 1, timestampMs: Date.now() };
    const init = initiateSession(ctx, { identity: alice, bundle: verified }, plaintext, m);
    const resp = respondToPreKeyMessage(
      ctx,
      { identity: bob, keys: { signedPreKey: spk, kemPreKey: kem } },
      init.envelope,
      m,
    );
    if (resp.plaintext.length !== plaintext.length)
      throw new Error('parley setup: wrong plaintext');
    return { a: init.session, b: resp.session };
  };
  return { ctx, setup };
}

function parleySender(ctx: ProtocolContext, s: { a: Session; b: Session }) {
  const ab = { sender: ALICE, recipient: BOB, messageType: 1, timestampMs: 0 };
  const ba = { sender: BOB, recipient: ALICE, messageType: 1, timestampMs: 0 };
  return (fromAlice: boolean, plaintext: Uint8Array): void => {
    const m = fromAlice ? ab : ba;
    const e = encrypt(ctx, fromAlice ? s.a : s.b, plaintext, m);
    const d = decrypt(ctx, fromAlice ? s.b : s.a, e.envelope, m);
    if (fromAlice) {
      s.a = e.session;
      s.b = d.session;
    } else {
      s.b = e.session;
      s.a = d.session;
    }
    if (d.plaintext.length !== plaintext.length) throw new Error('parley: wrong plaintext');
  };
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const crypto = await loadProvider();
  const plaintext = new Uint8Array(MESSAGE_BYTES).fill(0x61);
  const sigPlain = new Uint8Array(new ArrayBuffer(MESSAGE_BYTES)).fill(0x61);

  const parley = parleyFixture(crypto);
  const sig = await libsignalBob();
  let aliceCounter = 0;

  const [pSetup, sSetup] = await measurePair(
    () => {
      for (let i = 0; i < SETUPS_PER_REP; i++) parley.setup(plaintext);
      return SETUPS_PER_REP;
    },
    async () => {
      for (let i = 0; i < SETUPS_PER_REP; i++) {
        await libsignalSetup(sig.bob, sig.bundle, `alice-${aliceCounter++}`, sigPlain);
      }
      return SETUPS_PER_REP;
    },
  );

  // One established session per library for the message workloads; the first reply
  // completes the handshake so that neither side still sends prekey messages.
  const pSession = parley.setup(plaintext);
  const pSend = parleySender(parley.ctx, pSession);
  pSend(false, plaintext);
  const sPair = await libsignalSetup(sig.bob, sig.bundle, `alice-${aliceCounter++}`, sigPlain);
  const sSend = (fromAlice: boolean): Promise<number> =>
    fromAlice
      ? libsignalSend(sPair.alice, sPair.bob as LibsignalParty, sigPlain)
      : libsignalSend(sPair.bob as LibsignalParty, sPair.alice, sigPlain);
  await sSend(false);

  const [pBurst, sBurst] = await measurePair(
    () => {
      for (let i = 0; i < BURST_PER_REP; i++) pSend(true, plaintext);
      return BURST_PER_REP;
    },
    async () => {
      for (let i = 0; i < BURST_PER_REP; i++) await sSend(true);
      return BURST_PER_REP;
    },
  );
  const [pAlt, sAlt] = await measurePair(
    () => {
      for (let i = 0; i < ALTERNATING_PER_REP; i++) pSend(i % 2 === 0, plaintext);
      return ALTERNATING_PER_REP;
    },
    async () => {
      for (let i = 0; i < ALTERNATING_PER_REP; i++) await sSend(i % 2 === 0);
      return ALTERNATING_PER_REP;
    },
  );

  const rows: Array<[string, number, number]> = [
    ['setup (sessions/s)', pSetup, sSetup],
    ['burst (messages/s)', pBurst, sBurst],
    ['alternating (messages/s)', pAlt, sAlt],
  ];
  console.log(
    `Parley provider: ${crypto.name}; ${REPETITIONS} interleaved repetitions, medians; ${MESSAGE_BYTES}-byte messages`,
  );
  console.log('workload                  |     parley |  libsignal | ratio');
  console.log('--------------------------|------------|------------|------');
  for (const [name, p, s] of rows) {
    console.log(
      `${name.padEnd(26)}| ${p.toFixed(0).padStart(10)} | ${s.toFixed(0).padStart(10)} | ${(p / s).toFixed(2)}`,
    );
  }
  console.log(
    `protocol vs libsignal: setup ${(pSetup / sSetup).toFixed(2)}, burst ${(pBurst / sBurst).toFixed(2)}, alternating ${(pAlt / sAlt).toFixed(2)}`,
  );
}

await main();
