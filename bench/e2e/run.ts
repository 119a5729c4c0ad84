/**
 * bench:e2e — end-to-end message latency and throughput through a real relay with
 * mutual TLS: `send` on Alice's client to the message committed in Bob's encrypted
 * store (the core emits `message` only after the commit). Both clients and the relay
 * run in this process (one event loop, so CPU is shared, like a loaded laptop).
 *
 * Phases:
 *  1. handshake: the first message (PQXDH + first ratchet step), once;
 *  2. latency: N messages one at a time (next sent after the previous is committed);
 *  3. throughput: N messages sent back to back, until all are committed at Bob.
 * Runs with the portable provider (@noble) and the Node provider (OpenSSL) side by side;
 * the ratio is node/portable throughput.
 *
 *   npm run bench:e2e            (PARLEY_BENCH_N=500 to change N; default 300)
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createPortableCrypto } from '@parley/crypto';
import type { CryptoProvider } from '@parley/crypto';
import { createNodeCrypto } from '@parley/crypto/node';
import { initProfile, openNodeClient } from '@parley/client-node';
import type { NodeClient } from '@parley/client-node';
import { issueClient } from '@parley/pki';
import { startRelay } from '@parley/server';

const N = Number(process.env['PARLEY_BENCH_N'] ?? 300);
/** Argon2id cost for the bench profiles: opening cost is not what this bench measures. */
const KDF = { memoryKiB: 8, iterations: 1 };

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

interface Result {
  readonly provider: string;
  readonly handshakeMs: number;
  readonly p50: number;
  readonly p99: number;
  readonly sequentialPerSec: number;
  readonly pipelinedPerSec: number;
}

async function run(provider: string, crypto: CryptoProvider): Promise<Result> {
  const root = mkdtempSync(join(tmpdir(), 'parley-bench-e2e-'));
  const data = join(root, 'relay');
  // The relay's per-connection rate limits (100 messages / 5 s by default) would be what
  // the pipelined phase measures; they are raised here so the pipeline itself is measured.
  const relay = await startRelay({
    dataDir: data,
    port: 0,
    auth: 'mtls',
    logLevel: 'silent',
    config: {
      rateLimit: {
        maxMessagesPerConnection: 1_000_000,
        maxBlocksPerConnection: 1_000_000,
        maxBlocksPerIdentity: 1_000_000,
      },
    },
  });
  const clients: NodeClient[] = [];
  try {
    for (const n of ['alice', 'bob']) {
      const issued = await issueClient(data, n, join(root, `creds-${n}`));
      await initProfile({
        profile: join(root, n),
        passphrase: 'bench',
        server: relay.url,
        mode: 'mtls',
        certPem: readFileSync(issued.certPath, 'utf8'),
        keyPem: readFileSync(issued.keyPath, 'utf8'),
        caPem: readFileSync(issued.caPath, 'utf8'),
        crypto,
        kdf: KDF,
      });
    }
    const alice = await openNodeClient({
      profile: join(root, 'alice'),
      passphrase: 'bench',
      crypto,
    });
    const bob = await openNodeClient({ profile: join(root, 'bob'), passphrase: 'bench', crypto });
    clients.push(alice, bob);
    await bob.connect();
    await bob.client.requestPresence();
    await alice.connect();

    const committed = new Map<string, () => void>();
    bob.client.on((e) => {
      if (e.type === 'message' && e.message.direction === 'in') committed.get(e.message.text)?.();
    });
    const arrival = (text: string): Promise<void> => new Promise((res) => committed.set(text, res));

    let t = performance.now();
    let wait = arrival('hello');
    await alice.client.send('bob', 'hello');
    await wait;
    const handshakeMs = performance.now() - t;
    // One reply so Alice leaves the prekey-message phase: the steady state is measured.
    const replied = new Promise<void>((res) => {
      const off = alice.client.on((e) => {
        if (e.type === 'message' && e.message.direction === 'in') {
          off();
          res();
        }
      });
    });
    await bob.client.send('alice', 'hi');
    await replied;

    const lat: number[] = [];
    const seqStart = performance.now();
    for (let i = 0; i < N; i++) {
      const text = `seq ${i} ${'x'.repeat(40)}`;
      wait = arrival(text);
      t = performance.now();
      await alice.client.send('bob', text);
      await wait;
      lat.push(performance.now() - t);
    }
    const sequentialPerSec = N / ((performance.now() - seqStart) / 1000);
    lat.sort((a, b) => a - b);

    const texts = Array.from({ length: N }, (_, i) => `pipe ${i} ${'y'.repeat(40)}`);
    const all = Promise.all(texts.map(arrival));
    const pipeStart = performance.now();
    await Promise.all(texts.map((x) => alice.client.send('bob', x)));
    await all;
    const pipelinedPerSec = N / ((performance.now() - pipeStart) / 1000);
    return {
      provider,
      handshakeMs,
      p50: percentile(lat, 50),
      p99: percentile(lat, 99),
      sequentialPerSec,
      pipelinedPerSec,
    };
  } finally {
    for (const c of clients) await c.close();
    await relay.close();
    rmSync(root, { recursive: true, force: true });
  }
}

const results: Result[] = [];
results.push(await run('portable', createPortableCrypto()));
results.push(await run('node', createNodeCrypto()));

const f = (x: number, d = 1): string => x.toFixed(d).padStart(9);
process.stdout.write(
  `bench:e2e  send -> committed in the recipient's encrypted store, real relay, mutual TLS 1.3, N=${N}\n`,
);
process.stdout.write(`provider   handshake ms   p50 ms   p99 ms   seq msg/s   pipelined msg/s\n`);
for (const r of results) {
  process.stdout.write(
    `${r.provider.padEnd(9)} ${f(r.handshakeMs)}    ${f(r.p50, 2)} ${f(r.p99, 2)} ${f(r.sequentialPerSec)}   ${f(r.pipelinedPerSec)}\n`,
  );
}
const [p, n] = results;
if (p && n) {
  process.stdout.write(
    `ratio node/portable pipelined throughput: ${(n.pipelinedPerSec / p.pipelinedPerSec).toFixed(2)}x\n`,
  );
}
