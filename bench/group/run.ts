/**
 * `npm run bench:group`: Parley's group layer against @signalapp/libsignal-client's
 * sender-key group cipher, in one process, medians of interleaved repetitions.
 *   message @N     — one 256-byte group message in a group of N members: the sender
 *                    encrypts once, each of the N − 1 others decrypts (signature check
 *                    included on both sides).
 *   distribute 100 — a fresh sender chain and its distribution processed by 100
 *                    members; "+ pairwise" also sends each copy through the sender's
 *                    established pairwise session with that member (encrypt + decrypt).
 * Ratio = Parley throughput ÷ libsignal throughput (> 1 means Parley is faster).
 * Parley uses the Node provider (`@parley/crypto/node`) when it loads, else portable.
 */
import { createPortableCrypto, type CryptoProvider } from '@parley/crypto';
import {
  IdentityKeyPair,
  assemblePreKeyBundle,
  createSenderChain,
  decrypt,
  encodeSenderKeyDistribution,
  encrypt,
  generateKemPreKey,
  generateSignedPreKey,
  groupDecrypt,
  groupEncrypt,
  initiateSession,
  processSenderKeyDistribution,
  publicKemPreKey,
  publicSignedPreKey,
  respondToPreKeyMessage,
  verifyPreKeyBundle,
  type Address,
  type IncomingSenderChains,
  type OutgoingSenderChain,
  type ProtocolContext,
  type Session,
} from '@parley/protocol';
import {
  libsignalBob,
  libsignalSend,
  libsignalSetup,
  type LibsignalParty,
} from '../protocol/libsignal.js';
import { libsignalDistribute, libsignalGroup, libsignalGroupMessage } from './libsignal.js';

const REPETITIONS = Number(process.env.BENCH_REPS ?? 7);
const MESSAGES_10 = Number(process.env.BENCH_GROUP_MESSAGES_10 ?? 200);
const MESSAGES_100 = Number(process.env.BENCH_GROUP_MESSAGES_100 ?? 20);
const DISTRIBUTION_MEMBERS = 100;
const MESSAGE_BYTES = 256;
const GROUP_ID = new Uint8Array(16).fill(9);
const SENDER: Address = { userId: 'sender', deviceId: 1 };

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

/** Interleaved repetitions (P, L, P, L, …) after one warm-up each; median ops/s of each. */
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

interface ParleyGroup {
  chain: OutgoingSenderChain;
  receivers: IncomingSenderChains[];
}

function parleyGroup(crypto: CryptoProvider, members: number): ParleyGroup {
  const chain = createSenderChain(crypto, GROUP_ID, { nowMs: Date.now(), epoch: 0 });
  const d = encodeSenderKeyDistribution(chain);
  const receivers: IncomingSenderChains[] = [];
  for (let i = 1; i < members; i++)
    receivers.push(processSenderKeyDistribution(undefined, SENDER, d));
  return { chain, receivers };
}

function parleyGroupMessage(crypto: CryptoProvider, g: ParleyGroup, plaintext: Uint8Array): void {
  const e = groupEncrypt(crypto, g.chain, SENDER, plaintext);
  g.chain = e.chain;
  for (let i = 0; i < g.receivers.length; i++) {
    const r = groupDecrypt(crypto, g.receivers[i] as IncomingSenderChains, SENDER, e.message);
    if (r.plaintext.length !== plaintext.length) throw new Error('parley group: wrong plaintext');
    g.receivers[i] = r.state;
  }
}

/** The sender's established sessions with `n` members (the sender answered each once). */
function parleySessions(crypto: CryptoProvider, n: number) {
  const ctx: ProtocolContext = { crypto, now: () => Date.now() };
  const sender = IdentityKeyPair.generate(crypto);
  const spk = generateSignedPreKey(crypto, sender, 1, Date.now());
  const kem = generateKemPreKey(crypto, sender, 1, 'last-resort', Date.now());
  const bundle = assemblePreKeyBundle({
    identity: sender.publicIdentity,
    signedPreKey: publicSignedPreKey(spk),
    kemPreKey: publicKemPreKey(kem),
  });
  const pairs: Array<{ s: Session; m: Session; meta: ReturnType<typeof metaTo> }> = [];
  const metaTo = (i: number) => ({
    sender: SENDER,
    recipient: { userId: `member-${i}`, deviceId: 1 },
    messageType: 1,
    timestampMs: 0,
  });
  for (let i = 0; i < n; i++) {
    const up = { ...metaTo(i), sender: metaTo(i).recipient, recipient: SENDER };
    const member = IdentityKeyPair.generate(crypto);
    const init = initiateSession(
      ctx,
      { identity: member, bundle: verifyPreKeyBundle(crypto, bundle) },
      new Uint8Array(1),
      up,
    );
    const resp = respondToPreKeyMessage(
      ctx,
      { identity: sender, keys: { signedPreKey: spk, kemPreKey: kem } },
      init.envelope,
      up,
    );
    pairs.push({ s: resp.session, m: init.session, meta: metaTo(i) });
  }
  const send = (i: number, bytes: Uint8Array): Uint8Array => {
    const p = pairs[i] as (typeof pairs)[number];
    const e = encrypt(ctx, p.s, bytes, p.meta);
    const d = decrypt(ctx, p.m, e.envelope, p.meta);
    p.s = e.session;
    p.m = d.session;
    return d.plaintext;
  };
  return send;
}

function parleyDistribute(
  crypto: CryptoProvider,
  receivers: number,
  pairwise?: (i: number, bytes: Uint8Array) => Uint8Array,
): void {
  const chain = createSenderChain(crypto, GROUP_ID, { nowMs: Date.now(), epoch: 0 });
  const d = encodeSenderKeyDistribution(chain);
  for (let i = 0; i < receivers; i++) {
    processSenderKeyDistribution(undefined, SENDER, pairwise ? pairwise(i, d) : d);
  }
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const crypto = await loadProvider();
  const plaintext = new Uint8Array(MESSAGE_BYTES).fill(0x61);
  const sigPlain = new Uint8Array(new ArrayBuffer(MESSAGE_BYTES)).fill(0x61);
  const rows: Array<[string, number, number]> = [];

  for (const [members, count] of [
    [10, MESSAGES_10],
    [100, MESSAGES_100],
  ] as const) {
    const pg = parleyGroup(crypto, members);
    const sg = await libsignalGroup(members);
    const [p, s] = await measurePair(
      () => {
        for (let i = 0; i < count; i++) parleyGroupMessage(crypto, pg, plaintext);
        return count;
      },
      async () => {
        for (let i = 0; i < count; i++) await libsignalGroupMessage(sg, sigPlain);
        return count;
      },
    );
    rows.push([`message @${members} (msgs/s)`, p, s]);
  }

  const [pd, sd] = await measurePair(
    () => {
      parleyDistribute(crypto, DISTRIBUTION_MEMBERS);
      return 1;
    },
    async () => {
      await libsignalDistribute(DISTRIBUTION_MEMBERS);
      return 1;
    },
  );
  rows.push([`distribute ${DISTRIBUTION_MEMBERS} (rounds/s)`, pd, sd]);

  // Pairwise sessions: the sender answered each member once, so both directions are
  // established and the distributions travel as ordinary messages.
  const pSend = parleySessions(crypto, DISTRIBUTION_MEMBERS);
  const sig = await libsignalBob();
  const sPairs: LibsignalParty[] = [];
  for (let i = 0; i < DISTRIBUTION_MEMBERS; i++) {
    const pair = await libsignalSetup(sig.bob, sig.bundle, `member-${i}`, sigPlain);
    sPairs.push(pair.alice);
  }
  const [pdp, sdp] = await measurePair(
    () => {
      parleyDistribute(crypto, DISTRIBUTION_MEMBERS, pSend);
      return 1;
    },
    async () => {
      await libsignalDistribute(DISTRIBUTION_MEMBERS, async (i, bytes) => {
        await libsignalSend(sig.bob, sPairs[i] as LibsignalParty, bytes);
        return bytes;
      });
      return 1;
    },
  );
  rows.push([`distribute ${DISTRIBUTION_MEMBERS} + pairwise (rounds/s)`, pdp, sdp]);

  console.log(
    `Parley provider: ${crypto.name}; ${REPETITIONS} interleaved repetitions, medians; ${MESSAGE_BYTES}-byte messages`,
  );
  console.log(
    'workload                                |     parley |  libsignal | ratio | parley ms/op',
  );
  console.log(
    '----------------------------------------|------------|------------|-------|-------------',
  );
  for (const [name, p, s] of rows) {
    console.log(
      `${name.padEnd(40)}| ${p.toFixed(1).padStart(10)} | ${s.toFixed(1).padStart(10)} | ${(p / s).toFixed(2).padStart(5)} | ${(1000 / p).toFixed(2).padStart(8)}`,
    );
  }
}

await main();
