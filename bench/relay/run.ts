/**
 * `npm run bench:relay`: Parley's relay against a raw mutual-TLS WebSocket forwarder,
 * under one load generator, in one run.
 *
 * Three processes per measurement: this orchestrator, the server (raw-server.ts or
 * parley-server.ts, started with --expose-gc so memory is read after a full GC), and
 * the load generator (loadgen.ts). Both servers use the same CA, server certificate
 * and client certificates (Ed25519, from @parley/pki), TLS 1.3, 4096-byte blocks.
 *
 * Per message both targets move the same blocks (raw `pair` mode, the default): the data
 * block in, its delivery out, the receiver's ack in, and one block back out to the
 * sender (raw: the ack itself; Parley: the "delivered" receipt, its only receipt when
 * the recipient acks while the relay holds the message). The raw side does nothing else,
 * so the ratio prices what Parley adds (framing, checks, routing, mailbox), not protocol
 * traffic. PARLEY_BENCH_RAW_MODE=receipts adds a receipt block per message (5 blocks, the
 * cost of Parley's stored path with "queued"); =forward moves data blocks only.
 *
 * Measured, per target, as medians over RUNS runs (targets interleaved to spread drift):
 * - memory per idle authenticated connection: server RSS growth / N at each N
 *   (raw: WebSocket open; Parley: `welcome` received), read after GC;
 * - forwarded blocks/s with PAIRS sender -> receiver pairs, closed loop;
 * - latency p50/p99 at fixed offered loads (open loop, same rates for both).
 *
 * The last line compares them: throughput = parley/raw (higher is better); memory/conn
 * = parley/raw of the marginal cost per connection (RSS growth from the smallest to the
 * largest N, divided by the connections added; the per-N figures, which include each
 * process's fixed overhead spread over N, are printed above it); p99 = parley/raw at the
 * highest fixed load (lower is better). Loopback only; every wait is bounded.
 */
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { initPki, issueClient, refreshCrl } from '@parley/pki';
import {
  median,
  type LoadCommand,
  type LoadReply,
  type RawMode,
  type ServerCommand,
  type ServerReply,
  type Target,
} from './common.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..');
const tsconfig = join(repoRoot, 'tsconfig.test.json');

// Resolve @parley/* to their TypeScript sources (as the tests do), so the benchmark
// measures the working tree without a build step. tsx reads this at start, hence the
// one re-exec when it is not set.
if (process.env['TSX_TSCONFIG_PATH'] === undefined) {
  const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, TSX_TSCONFIG_PATH: tsconfig },
  });
  process.exit(r.status ?? 1);
}

/** Connection counts for the memory curve; the largest also carries the pairs. */
export const MEMORY_N = (process.env['PARLEY_BENCH_N'] ?? '250,500,1000').split(',').map(Number);
/** Sender-receiver pairs for throughput and latency (issue 4: 500). */
export const PAIRS = Number(process.env['PARLEY_BENCH_PAIRS'] ?? 500);
/** Runs per target; the report shows medians. */
const RUNS = Number(process.env['PARLEY_BENCH_RUNS'] ?? 3);
/** Blocks each pair keeps in flight in the closed-loop throughput phase. */
const WINDOW = 4;
/** Fixed offered loads (blocks/s, all pairs together) for the latency phase. */
export const LOADS = (process.env['PARLEY_BENCH_LOADS'] ?? '250,1000').split(',').map(Number);
const THROUGHPUT_WARMUP_MS = 500;
const THROUGHPUT_MS = 2500;
const LATENCY_WARMUP_MS = 500;
/**
 * Measured part of each fixed-load phase. p99 of 2 000 samples is the 20th-worst, which
 * one scheduling hiccup can move; 6 s at 1000 blocks/s gives 6 000 samples.
 * PARLEY_BENCH_LATENCY_MS overrides it.
 */
const LATENCY_MS = Number(process.env['PARLEY_BENCH_LATENCY_MS'] ?? 6000);
/** Targets to run (both by default; one alone is for profiling). */
const TARGETS = (process.env['PARLEY_BENCH_TARGETS'] ?? 'raw,parley')
  .split(',')
  .filter((x): x is Target => x === 'raw' || x === 'parley');
/** What the raw baseline moves per message (see common.ts `RawMode`). */
const RAW_MODE: RawMode = ((m) => (m === 'receipts' || m === 'forward' ? m : 'pair'))(
  process.env['PARLEY_BENCH_RAW_MODE'],
);
const RAW_MODE_TEXT: Record<RawMode, string> = {
  pair: 'data and ack blocks forwarded between the two ends of each pair, 4 blocks per message',
  receipts: 'as pair plus a receipt block to the sender, 5 blocks per message',
  forward: 'data blocks only, 2 blocks per message',
};
/** Whether the relay broadcasts presence (default off; see runOnce). */
const PRESENCE = process.env['PARLEY_BENCH_PRESENCE'] === '1';
/** Upper bound on any single step (start, connect, phase) before the run is abandoned. */
const STEP_TIMEOUT_MS = 90_000;
/** A server that has not exited this long after `stop` is killed. */
const STOP_TIMEOUT_MS = 10_000;
/** Client certificates are cached across runs: issuing 1000 takes ~10 s. Bump on format change. */
const CACHE_DIR = join(tmpdir(), 'parley-bench-relay-pki-v1');

const TSX_EXEC_ARGV = ['--expose-gc', '--import', 'tsx'];
/**
 * Optional extra Node flags for the server processes, for diagnosis (e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof` or `--trace-gc`); space-separated.
 */
const SERVER_NODE_ARGS = (process.env['PARLEY_BENCH_SERVER_NODE_ARGS'] ?? '')
  .split(' ')
  .filter((a) => a.length > 0);
const childEnv = { ...process.env, TSX_TSCONFIG_PATH: tsconfig };

export function names(): string[] {
  const n = Math.max(...MEMORY_N, PAIRS * 2);
  return Array.from({ length: n }, (_, i) => `bench${String(i).padStart(5, '0')}`);
}

export async function preparePki(all: readonly string[]): Promise<void> {
  await initPki(CACHE_DIR);
  await refreshCrl(CACHE_DIR);
  const clients = join(CACHE_DIR, 'clients');
  const missing = all.filter((n) => !existsSync(join(clients, `${n}.key`)));
  if (missing.length > 0)
    process.stdout.write(`issuing ${missing.length} client certificates...\n`);
  for (let i = 0; i < missing.length; i += 16) {
    await Promise.all(missing.slice(i, i + 16).map((n) => issueClient(CACHE_DIR, n, clients)));
  }
}

/** Sends a command to a child and waits for the next reply, bounded. */
function request<C, R>(child: ChildProcess, cmd: C | undefined, what: string): Promise<R> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what}: no answer within ${STEP_TIMEOUT_MS} ms`));
    }, STEP_TIMEOUT_MS);
    const onMessage = (m: R): void => {
      cleanup();
      resolve(m);
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new Error(`${what}: process exited (${String(code)})`));
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
    if (cmd !== undefined) child.send(cmd as object);
  });
}

/** How the Parley target is deployed (bench/cluster varies it; bench/relay uses the default). */
export interface Deployment {
  /** Extra relay configuration (storage, bus), merged over the benchmark's own. */
  readonly config?: Record<string, unknown>;
  /** Relay processes sharing that configuration; connections are spread over them. */
  readonly nodes?: number;
}

export interface RunResult {
  readonly perConnBytes: Map<number, number>;
  readonly blocksPerSec: number;
  readonly latency: Map<number, { p50: number; p99: number; lost: number }>;
  /** Wall time of each phase in seconds, to keep the whole run within budget. */
  readonly phases: string;
}

export async function runOnce(
  target: Target,
  all: readonly string[],
  deployment: Deployment = {},
): Promise<RunResult> {
  const nodes = target === 'raw' ? 1 : (deployment.nodes ?? 1);
  const dataDirs = Array.from({ length: nodes }, () =>
    mkdtempSync(join(tmpdir(), `parley-bench-${target}-`)),
  );
  const dataDir = dataDirs[0] as string;
  for (const d of dataDirs) cpSync(join(CACHE_DIR, 'pki'), join(d, 'pki'), { recursive: true });
  const configFile = join(dataDir, 'relay.json');
  // The relay's defaults protect people from floods; a benchmark is one on purpose,
  // so the limits that would cut it off are raised. Everything else stays default.
  writeFileSync(
    configFile,
    JSON.stringify({
      logLevel: 'silent',
      // Join/leave broadcast to every client is O(N^2) frames while N clients connect;
      // the raw baseline has no presence, so it is off unless PARLEY_BENCH_PRESENCE=1.
      presenceBroadcast: PRESENCE,
      limits: { maxConnections: 100_000, maxConnectionsPerIdentity: 4 },
      rateLimit: {
        maxBlocksPerConnection: 1_000_000_000,
        maxBlocksPerIdentity: 1_000_000_000,
        maxMessagesPerConnection: 1_000_000_000,
      },
      ...deployment.config,
    }),
  );
  const script = target === 'raw' ? 'raw-server.ts' : 'parley-server.ts';
  const args = target === 'raw' ? [dataDir, RAW_MODE] : [dataDir, configFile];
  const servers = dataDirs.map((d) =>
    fork(join(here, script), target === 'raw' ? args : [d, configFile], {
      execArgv: [...TSX_EXEC_ARGV, ...SERVER_NODE_ARGS],
      env: childEnv,
      stdio: ['ignore', SERVER_NODE_ARGS.length > 0 ? 'inherit' : 'ignore', 'inherit', 'ipc'],
    }),
  );
  let loadgen: ChildProcess | undefined;
  try {
    const readies: string[] = [];
    let ready: ServerReply | undefined;
    for (const s of servers) {
      ready = await request<ServerCommand, ServerReply>(s, undefined, `${target} start`);
      if (ready.type !== 'ready')
        throw new Error(ready.type === 'failed' ? ready.message : 'unexpected reply');
      readies.push(ready.url);
    }
    if (ready?.type !== 'ready') throw new Error('no server');
    /** CPU (and RSS) now, summed over the nodes; `gc` only where memory is measured. */
    const stats = async (gc = false): Promise<{ rss: number; cpuMicros: number }> => {
      let rss = 0;
      let cpuMicros = 0;
      for (const s of servers) {
        const r = await request<ServerCommand, ServerReply>(s, { cmd: 'mem', gc }, 'mem');
        if (r.type !== 'mem') throw new Error('unexpected reply');
        rss += r.rss;
        cpuMicros += r.cpuMicros;
      }
      return { rss, cpuMicros };
    };
    const mem = async (): Promise<number> => (await stats(true)).rss;
    loadgen = fork(join(here, 'loadgen.ts'), [], {
      execArgv: TSX_EXEC_ARGV,
      env: childEnv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const lg = loadgen;
    const ask = async (cmd: LoadCommand): Promise<LoadReply> => {
      const r = await request<LoadCommand, LoadReply>(lg, cmd, `loadgen ${cmd.cmd}`);
      if (r.type === 'failed') throw new Error(`loadgen ${cmd.cmd}: ${r.message}`);
      return r;
    };
    await ask({
      cmd: 'init',
      target,
      rawMode: RAW_MODE,
      url: readies[0] as string,
      ...(readies.length > 1 ? { urls: readies } : {}),
      caPem: readFileSync(join(CACHE_DIR, 'pki', 'ca.crt'), 'utf8'),
      clientsDir: join(CACHE_DIR, 'clients'),
      names: all,
    });
    const marks: string[] = [];
    let tMark = performance.now();
    const mark = (label: string): void => {
      const now = performance.now();
      marks.push(`${label} ${((now - tMark) / 1000).toFixed(1)}s`);
      tMark = now;
    };
    mark('start');
    const rss0 = await mem();
    const perConnBytes = new Map<number, number>();
    for (const n of [...MEMORY_N].sort((a, b) => a - b)) {
      await ask({ cmd: 'connect', total: n });
      perConnBytes.set(n, ((await mem()) - rss0) / n);
    }
    await ask({ cmd: 'connect', total: PAIRS * 2 });
    mark('connect+mem');
    const cpuBefore = await stats();
    const tBefore = performance.now();
    const tp = await ask({
      cmd: 'throughput',
      pairs: PAIRS,
      window: WINDOW,
      warmupMs: THROUGHPUT_WARMUP_MS,
      durationMs: THROUGHPUT_MS,
    });
    if (tp.type !== 'throughput') throw new Error('unexpected reply');
    const serverCores =
      ((await stats()).cpuMicros - cpuBefore.cpuMicros) / 1e3 / (performance.now() - tBefore);
    let lastHealth = tp.health;
    mark('throughput');
    marks.push(
      `cpu in throughput: server ${serverCores.toFixed(2)} cores (whole phase), loadgen ${tp.cpuCores.toFixed(2)} cores`,
    );
    const latency = new Map<number, { p50: number; p99: number; lost: number }>();
    const cpuAtLoad: string[] = [];
    for (const rate of LOADS) {
      const before = await stats();
      const t0 = performance.now();
      const l = await ask({
        cmd: 'latency',
        pairs: PAIRS,
        ratePerSec: rate,
        warmupMs: LATENCY_WARMUP_MS,
        durationMs: LATENCY_MS,
      });
      if (l.type !== 'latency') throw new Error('unexpected reply');
      lastHealth = l.health;
      latency.set(rate, { p50: l.p50Ms, p99: l.p99Ms, lost: l.sent - l.received });
      // Server CPU per block at a fixed offered load: unlike throughput, this barely
      // depends on what else the machine is running, so it compares builds well.
      const cpuMs = ((await stats()).cpuMicros - before.cpuMicros) / 1e3;
      const offered = (rate * (performance.now() - t0)) / 1000;
      cpuAtLoad.push(`${((cpuMs * 1000) / offered).toFixed(0)} µs/block@${rate}`);
    }
    mark('latency');
    marks.push(`server cpu ${cpuAtLoad.join(' ')}`);
    marks.push(`loadgen: ${lastHealth}`);
    return {
      perConnBytes,
      blocksPerSec: tp.blocks / tp.seconds,
      latency,
      phases: marks.join(', '),
    };
  } finally {
    if (loadgen) {
      await request<LoadCommand, LoadReply>(loadgen, { cmd: 'close' }, 'loadgen close').catch(
        () => undefined,
      );
      loadgen.kill();
    }
    await Promise.all(servers.map((srv) => stopServer(srv, target)));
    for (const d of dataDirs) rmSync(d, { recursive: true, force: true });
  }
}

function stopServer(server: ChildProcess, target: Target): Promise<void> {
  server.send({ cmd: 'stop' } satisfies ServerCommand);
  return new Promise<void>((r) => {
    const t = setTimeout(() => {
      process.stderr.write(`${target} server did not stop within ${STOP_TIMEOUT_MS} ms; killed\n`);
      server.kill('SIGKILL');
      r();
    }, STOP_TIMEOUT_MS);
    server.once('exit', () => {
      clearTimeout(t);
      r();
    });
  });
}

export const fmt = (n: number, digits = 0): string =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : 'n/a';

export function summarize(results: readonly RunResult[]): {
  mem: Map<number, number>;
  marginal: number;
  tput: number;
  lat: Map<number, { p50: number; p99: number; lost: number }>;
} {
  const mem = new Map<number, number>();
  for (const n of MEMORY_N)
    mem.set(n, median(results.map((r) => r.perConnBytes.get(n) ?? Number.NaN)));
  const lat = new Map<number, { p50: number; p99: number; lost: number }>();
  for (const rate of LOADS) {
    const xs = results.map((r) => r.latency.get(rate));
    lat.set(rate, {
      p50: median(xs.map((x) => x?.p50 ?? Number.NaN)),
      p99: median(xs.map((x) => x?.p99 ?? Number.NaN)),
      lost: median(xs.map((x) => x?.lost ?? Number.NaN)),
    });
  }
  // Marginal cost: RSS growth between the smallest and largest N per added connection,
  // which leaves out one-off costs (JIT, caches) that inflate the small-N figure.
  const nMin = Math.min(...MEMORY_N);
  const nMax = Math.max(...MEMORY_N);
  const marginal =
    nMax > nMin
      ? median(
          results.map(
            (r) =>
              ((r.perConnBytes.get(nMax) ?? Number.NaN) * nMax -
                (r.perConnBytes.get(nMin) ?? Number.NaN) * nMin) /
              (nMax - nMin),
          ),
        )
      : Number.NaN;
  return { mem, marginal, tput: median(results.map((r) => r.blocksPerSec)), lat };
}

async function main(): Promise<void> {
  const all = names();
  const t0 = performance.now();
  await preparePki(all);
  process.stdout.write(
    `relay benchmark: ${RUNS} runs per target, ${PAIRS} pairs, window ${WINDOW}, memory at N=${MEMORY_N.join('/')}, loads ${LOADS.join('/')} blocks/s, 4096-byte blocks, TLS 1.3 mutual auth, loopback, relay presence broadcast ${PRESENCE ? 'on' : 'off'}, raw baseline mode ${RAW_MODE} (${RAW_MODE_TEXT[RAW_MODE]}; PARLEY_BENCH_RAW_MODE=pair|receipts|forward)\n`,
  );
  const results: Record<Target, RunResult[]> = { raw: [], parley: [] };
  let parleyError: string | undefined;
  for (let run = 1; run <= RUNS; run++) {
    for (const target of TARGETS) {
      if (target === 'parley' && parleyError !== undefined) continue;
      try {
        const r = await runOnce(target, all);
        results[target].push(r);
        process.stdout.write(
          `run ${run} ${target.padEnd(6)}: ${fmt(r.blocksPerSec)} blocks/s, ${fmt((r.perConnBytes.get(Math.max(...MEMORY_N)) ?? 0) / 1024, 1)} KiB/conn, p99 ${LOADS.map((l) => `${fmt(r.latency.get(l)?.p99 ?? Number.NaN, 2)} ms@${l}`).join(' ')} [${r.phases}]\n`,
        );
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        if (target === 'raw') throw e;
        parleyError = msg;
        process.stdout.write(`run ${run} parley: FAILED: ${msg}\n`);
      }
    }
  }
  const raw = summarize(results.raw);
  const rows: [string, ReturnType<typeof summarize> | undefined][] = [
    ['raw', raw],
    ['parley', results.parley.length > 0 ? summarize(results.parley) : undefined],
  ];
  process.stdout.write('\nmedians\n');
  for (const [label, s] of rows) {
    if (!s) {
      process.stdout.write(`${label.padEnd(6)}: not measured (${parleyError ?? 'no result'})\n`);
      continue;
    }
    process.stdout.write(
      `${label.padEnd(6)}: throughput ${fmt(s.tput)} blocks/s (${PAIRS} pairs)\n`,
    );
    process.stdout.write(
      `${''.padEnd(6)}  memory/conn ${MEMORY_N.map((n) => `N=${n}: ${fmt((s.mem.get(n) ?? 0) / 1024, 1)} KiB`).join(', ')}; marginal ${fmt(s.marginal / 1024, 1)} KiB\n`,
    );
    for (const rate of LOADS) {
      const l = s.lat.get(rate);
      process.stdout.write(
        `${''.padEnd(6)}  latency @${rate} blocks/s: p50 ${fmt(l?.p50 ?? Number.NaN, 2)} ms, p99 ${fmt(l?.p99 ?? Number.NaN, 2)} ms, lost ${fmt(l?.lost ?? Number.NaN)}\n`,
      );
    }
  }
  process.stdout.write(`elapsed ${fmt((performance.now() - t0) / 1000, 1)} s\n`);
  const parley = rows[1]?.[1];
  const loadMax = Math.max(...LOADS);
  if (!parley) {
    process.stdout.write(
      `relay vs raw: throughput n/a, memory/conn n/a, p99 n/a (relay not measured: ${parleyError ?? 'unknown'})\n`,
    );
    process.exitCode = 1;
    return;
  }
  const ratio = (a: number, b: number): string =>
    Number.isFinite(a / b) ? (a / b).toFixed(2) : 'n/a';
  process.stdout.write(
    `relay vs raw: throughput ${ratio(parley.tput, raw.tput)}, memory/conn ${ratio(parley.marginal, raw.marginal)}, p99 ${ratio(parley.lat.get(loadMax)?.p99 ?? Number.NaN, raw.lat.get(loadMax)?.p99 ?? Number.NaN)}\n`,
  );
}

// Run only as a script: bench/cluster imports the phases above.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
