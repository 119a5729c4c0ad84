/**
 * `npm run bench:crypto`: operations per second of every primitive on the Node and
 * portable providers, side by side, with the node/portable ratio.
 *
 * Method: each repetition runs every operation on both providers (interleaved, so
 * machine-load drift hits both alike) for a fixed time slice and counts completed
 * calls; the table shows the median over REPETITIONS. Rows marked "fresh key" pass a
 * new copy of the key array on every call, which defeats the Node provider's
 * parsed-key cache (the cache is keyed by array identity) and so measures what the
 * cache saves. Imports the built packages (`npm run build` first; `npm ci` does it).
 */
import {
  asAeadKey,
  asEd25519SecretKey,
  asX25519SecretKey,
  createPortableCrypto,
  createSeededRandom,
  type CryptoProvider,
} from '@parley/crypto';
import { createNodeCrypto } from '@parley/crypto/node';
import { performance } from 'node:perf_hooks';

/** Median of this many timed slices per cell; odd so the median is a real sample. */
const REPETITIONS = 7;
/** Length of one timed slice; 7 reps x 25 rows x 2 providers x 50 ms keeps the run near 20 s. */
const SLICE_MS = 50;
/** Untimed calls before measuring, so JIT tiers and OpenSSL init are not in the figure. */
const WARMUP_CALLS = 20;
/** Small messages (a chat message) and bulk (an attachment chunk). */
const SMALL_BYTES = 64;
const BULK_BYTES = 16 * 1024;

type Op = () => unknown;
interface Row {
  readonly name: string;
  /** Bytes processed per call, for the MB/s column of bulk rows. */
  readonly bytes?: number;
  readonly make: (c: CryptoProvider) => Op;
}

// Fixed inputs, so both providers see the same work and runs are comparable.
const rnd = createSeededRandom(new Uint8Array(32).fill(42));
const small = rnd(SMALL_BYTES);
const bulk = rnd(BULK_BYTES);
const aeadKey = asAeadKey(rnd(32));
const nonce12 = rnd(12);
const nonce24 = rnd(24);

function rows(): Row[] {
  return [
    { name: 'randomBytes 32 B', make: (c) => () => c.randomBytes(32) },
    { name: 'sha256 64 B', make: (c) => () => c.sha256(small) },
    { name: 'sha256 16 KiB', bytes: BULK_BYTES, make: (c) => () => c.sha256(bulk) },
    { name: 'sha512 64 B', make: (c) => () => c.sha512(small) },
    { name: 'hmacSha256 64 B', make: (c) => () => c.hmacSha256(aeadKey, small) },
    { name: 'hkdfSha256 -> 64 B', make: (c) => () => c.hkdfSha256(aeadKey, small, small, 64) },
    { name: 'ed25519 keygen', make: (c) => () => c.ed25519.generateKeyPair() },
    {
      name: 'ed25519 sign 64 B',
      make: (c) => {
        const kp = c.ed25519.generateKeyPair();
        return () => c.ed25519.sign(kp.secretKey, small);
      },
    },
    {
      name: 'ed25519 sign 64 B, fresh key',
      make: (c) => {
        const kp = c.ed25519.generateKeyPair();
        return () => c.ed25519.sign(asEd25519SecretKey(kp.secretKey.slice()), small);
      },
    },
    {
      name: 'ed25519 verify 64 B',
      make: (c) => {
        const kp = c.ed25519.generateKeyPair();
        const sig = c.ed25519.sign(kp.secretKey, small);
        return () => c.ed25519.verify(kp.publicKey, small, sig);
      },
    },
    { name: 'x25519 keygen', make: (c) => () => c.x25519.generateKeyPair() },
    {
      name: 'x25519 dh',
      make: (c) => {
        const a = c.x25519.generateKeyPair();
        const b = c.x25519.generateKeyPair();
        return () => c.x25519.dh(a.secretKey, b.publicKey);
      },
    },
    {
      name: 'x25519 dh, fresh keys',
      make: (c) => {
        const a = c.x25519.generateKeyPair();
        const b = c.x25519.generateKeyPair();
        return () =>
          c.x25519.dh(asX25519SecretKey(a.secretKey.slice()), b.publicKey.slice() as never);
      },
    },
    { name: 'mlkem768 keygen', make: (c) => () => c.mlkem768.generateKeyPair() },
    {
      name: 'mlkem768 encapsulate',
      make: (c) => {
        const kp = c.mlkem768.generateKeyPair();
        return () => c.mlkem768.encapsulate(kp.publicKey);
      },
    },
    {
      name: 'mlkem768 decapsulate',
      make: (c) => {
        const kp = c.mlkem768.generateKeyPair();
        const { ciphertext } = c.mlkem768.encapsulate(kp.publicKey);
        return () => c.mlkem768.decapsulate(ciphertext, kp.secretKey);
      },
    },
    ...(
      [
        ['aes256gcm', nonce12],
        ['chacha20poly1305', nonce12],
        ['xchacha20poly1305', nonce24],
      ] as const
    ).flatMap(([aead, nonce]): Row[] => [
      {
        name: `${aead} seal 64 B`,
        make: (c) => () => c[aead].encrypt(aeadKey, nonce, small),
      },
      {
        name: `${aead} seal 16 KiB`,
        bytes: BULK_BYTES,
        make: (c) => () => c[aead].encrypt(aeadKey, nonce, bulk),
      },
      {
        name: `${aead} open 16 KiB`,
        bytes: BULK_BYTES,
        make: (c) => {
          const sealed = c[aead].encrypt(aeadKey, nonce, bulk);
          return () => c[aead].decrypt(aeadKey, nonce, sealed);
        },
      },
    ]),
  ];
}

/** Calls per second of `op` over one slice. */
function slice(op: Op): number {
  let calls = 0;
  const start = performance.now();
  const end = start + SLICE_MS;
  let now = start;
  // Check the clock every few calls only: reading it costs as much as a hash of 64 B.
  while (now < end) {
    for (let i = 0; i < 8; i++) op();
    calls += 8;
    now = performance.now();
  }
  return (calls * 1000) / (now - start);
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1] as number;
}

function fmt(opsPerSec: number): string {
  if (opsPerSec >= 1e6) return `${(opsPerSec / 1e6).toFixed(2)} M`;
  if (opsPerSec >= 1e3) return `${(opsPerSec / 1e3).toFixed(1)} k`;
  return opsPerSec.toFixed(0);
}

function main(): void {
  const providers = [createNodeCrypto(), createPortableCrypto()] as const;
  const table = rows();
  const ops = table.map((row) => providers.map((p) => row.make(p)));
  for (const pair of ops) for (const op of pair) for (let i = 0; i < WARMUP_CALLS; i++) op();

  const samples = table.map(() => providers.map(() => [] as number[]));
  const t0 = performance.now();
  for (let rep = 0; rep < REPETITIONS; rep++) {
    // Alternate which provider goes first, so garbage left by the previous row and
    // JIT deoptimisations do not always land on the same provider.
    const order = rep % 2 === 0 ? [0, 1] : [1, 0];
    ops.forEach((pair, r) => {
      for (const p of order) samples[r]?.[p]?.push(slice(pair[p] as Op));
    });
  }
  const seconds = (performance.now() - t0) / 1000;

  const header = [
    'operation',
    'node ops/s',
    'portable ops/s',
    'node/portable',
    'node MB/s',
    'portable MB/s',
  ];
  const lines = table.map((row, r) => {
    const [n, q] = [median(samples[r]?.[0] ?? []), median(samples[r]?.[1] ?? [])];
    const mb = (x: number) => (row.bytes ? ((x * row.bytes) / 1e6).toFixed(0) : '');
    return [row.name, fmt(n), fmt(q), `${(n / q).toFixed(2)}x`, mb(n), mb(q)];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const show = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join('  ');
  const out = [
    `@parley/crypto benchmark: node ${process.version}, ${process.arch}; median of ${REPETITIONS} x ${SLICE_MS} ms slices per cell`,
    show(header),
    show(header.map((_, i) => '-'.repeat(widths[i] ?? 0))),
    ...lines.map(show),
  ];
  const cacheRow = (cached: string, fresh: string) => {
    const c = table.findIndex((r) => r.name === cached);
    const f = table.findIndex((r) => r.name === fresh);
    const gain = median(samples[c]?.[0] ?? []) / median(samples[f]?.[0] ?? []);
    return `node key cache: ${cached} is ${gain.toFixed(2)}x the fresh-key rate`;
  };
  out.push(
    '',
    cacheRow('ed25519 sign 64 B', 'ed25519 sign 64 B, fresh key'),
    cacheRow('x25519 dh', 'x25519 dh, fresh keys'),
    'mlkem768 (liboqs WebAssembly) and xchacha20poly1305 (noble) run the same code in both',
    'providers (Node 20 has neither), so their ratio shows the measurement noise of this machine.',
    `measured in ${seconds.toFixed(1)} s`,
  );
  process.stdout.write(`${out.join('\n')}\n`);
}

main();
