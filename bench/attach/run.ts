/**
 * bench:attach — attachment upload throughput through a real relay (mutual TLS, blob
 * files synced to disk in its data directory) beside a raw TLS upload of the same bytes
 * to a plain TLS socket, in the same run and the same process (one event loop for both
 * ends in both cases, so the comparison is like for like). The attachment figure covers
 * everything a user waits for: padding, per-chunk AES-256-GCM, one 4096-byte block per
 * chunk, the relay's durable batches and its acknowledgements. Each of R runs measures
 * both; the medians and their ratio (attachment / raw, goal ≥ 0.5) are printed.
 *
 *   npm run bench:attach         (PARLEY_BENCH_MIB=30 file size, PARLEY_BENCH_RUNS=5)
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createNodeCrypto } from '@parley/crypto/node';
import { initProfile, openNodeClient } from '@parley/client-node';
import { issueClient } from '@parley/pki';
import { startRelay } from '@parley/server';

const MIB = Number(process.env['PARLEY_BENCH_MIB'] ?? 30);
const RUNS = Number(process.env['PARLEY_BENCH_RUNS'] ?? 5);
const KDF = { memoryKiB: 8, iterations: 1 };

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};

/** Seconds to push `bytes` over TLS 1.3 to a socket that answers one byte when all arrived. */
async function rawTls(bytes: Uint8Array, cert: string, key: string, ca: string): Promise<number> {
  let got = 0;
  const server = createServer({ cert, key, minVersion: 'TLSv1.3' }, (s: TLSSocket) => {
    s.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= bytes.length) s.end(Buffer.from([1]));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const socket = connect({
    host: '127.0.0.1',
    port,
    ca,
    servername: 'localhost',
    minVersion: 'TLSv1.3',
  });
  await new Promise<void>((r, j) => socket.once('secureConnect', r).once('error', j));
  const t = performance.now();
  const done = new Promise<void>((r) => socket.once('data', () => r()));
  // The same 4096-byte writes the relay path makes, so the anchor is not flattered by
  // larger records.
  for (let off = 0; off < bytes.length; off += 4096) {
    if (!socket.write(bytes.subarray(off, off + 4096))) {
      await new Promise((r) => socket.once('drain', r));
    }
  }
  await done;
  const seconds = (performance.now() - t) / 1000;
  socket.destroy();
  await new Promise((r) => server.close(r));
  return seconds;
}

async function main(): Promise<void> {
  const crypto = createNodeCrypto();
  const root = mkdtempSync(join(tmpdir(), 'parley-bench-attach-'));
  const data = join(root, 'relay');
  const relay = await startRelay({ dataDir: data, port: 0, auth: 'mtls', logLevel: 'silent' });
  try {
    const issued = await issueClient(data, 'alice', join(root, 'creds'));
    await initProfile({
      profile: join(root, 'alice'),
      passphrase: 'bench',
      server: relay.url,
      mode: 'mtls',
      certPem: readFileSync(issued.certPath, 'utf8'),
      keyPem: readFileSync(issued.keyPath, 'utf8'),
      caPem: readFileSync(issued.caPath, 'utf8'),
      crypto,
      kdf: KDF,
    });
    const alice = await openNodeClient({
      profile: join(root, 'alice'),
      passphrase: 'bench',
      crypto,
    });
    await alice.connect();
    const ca = readFileSync(join(data, 'pki', 'ca.crt'), 'utf8');
    const cert = readFileSync(join(data, 'pki', 'server.crt'), 'utf8');
    const key = readFileSync(join(data, 'pki', 'server.key'), 'utf8');
    const attach: number[] = [];
    const raw: number[] = [];
    const download: number[] = [];
    try {
      for (let i = 0; i < RUNS; i++) {
        const file = randomBytes(MIB * 1024 * 1024);
        let t = performance.now();
        const prepared = alice.client.attachments.prepare(
          file,
          `bench-${i}.bin`,
          'application/octet-stream',
        );
        await alice.client.attachments.upload(prepared);
        prepared.dispose();
        attach.push(MIB / ((performance.now() - t) / 1000));
        t = performance.now();
        await alice.client.attachments.download(prepared.entry);
        download.push(MIB / ((performance.now() - t) / 1000));
        raw.push(MIB / (await rawTls(file, cert, key, ca)));
        console.log(
          `run ${i + 1}/${RUNS}: attachment upload ${attach[i]?.toFixed(1)} MiB/s, download ${download[i]?.toFixed(1)} MiB/s, raw TLS ${raw[i]?.toFixed(1)} MiB/s`,
        );
      }
    } finally {
      await alice.close();
    }
    const a = median(attach);
    const r = median(raw);
    console.log(`\nfile ${MIB} MiB, ${RUNS} runs (medians)`);
    console.log(`attachment upload through the relay: ${a.toFixed(1)} MiB/s`);
    console.log(`attachment download through the relay: ${median(download).toFixed(1)} MiB/s`);
    console.log(`raw TLS upload of the same bytes:    ${r.toFixed(1)} MiB/s`);
    console.log(`ratio attachment/raw: ${(a / r).toFixed(2)} (goal >= 0.5)`);
  } finally {
    await relay.close();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
