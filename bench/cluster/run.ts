/**
 * `npm run bench:cluster`: Parley's relay deployed three ways, under bench/relay's load
 * generator and phases (same pairs, window, loads, memory curve), one run each:
 * - one node on SQLite (the embedded default);
 * - one node on PostgreSQL + Redis;
 * - two nodes on PostgreSQL + Redis, every pair's sender on node 1 and receiver on
 *   node 2, so each message crosses nodes.
 * PostgreSQL and Redis are real servers (Debian packages) started for the run on
 * 127.0.0.1 by the test helpers, and stopped by PID at the end.
 *
 * The last lines give the ratios against the SQLite node (goal: one node on
 * PostgreSQL + Redis at >= 0.6x its throughput).
 */
import { startPostgres } from '../../packages/server/test/pg-server.js';
import { startRedis } from '../../packages/server/test/redis-server.js';
import {
  LOADS,
  MEMORY_N,
  PAIRS,
  fmt,
  names,
  preparePki,
  runOnce,
  summarize,
  type Deployment,
  type RunResult,
} from '../relay/run.js';

async function main(): Promise<void> {
  const all = names();
  await preparePki(all);
  const [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
  try {
    const shared = async (nodes: number): Promise<Deployment> => {
      const database = await pg.createDatabase('bench');
      return {
        nodes,
        config: {
          storage: {
            engine: 'postgres',
            postgres: {
              host: pg.host,
              port: pg.port,
              database,
              user: pg.user,
              passwordFile: pg.passwordFile,
              // The test server allows 60 connections in all.
              poolSize: 20,
            },
          },
          bus: {
            engine: 'redis',
            redis: { host: redis.host, port: redis.port, keyPrefix: `${database}:` },
          },
        },
      };
    };
    const setups: [string, () => Promise<Deployment>][] = [
      ['1 node SQLite', () => Promise.resolve({})],
      ['1 node PG+Redis', () => shared(1)],
      ['2 nodes PG+Redis', () => shared(2)],
    ];
    process.stdout.write(
      `cluster benchmark: ${PAIRS} pairs, memory at N=${MEMORY_N.join('/')}, loads ${LOADS.join('/')} blocks/s, one run per deployment (bench/relay's load generator)\n`,
    );
    const results = new Map<string, RunResult | string>();
    for (const [label, deployment] of setups) {
      try {
        const r = await runOnce('parley', all, await deployment());
        results.set(label, r);
        process.stdout.write(
          `${label.padEnd(17)}: ${fmt(r.blocksPerSec)} blocks/s, p99 ${LOADS.map((l) => `${fmt(r.latency.get(l)?.p99 ?? Number.NaN, 2)} ms@${l} (lost ${fmt(r.latency.get(l)?.lost ?? Number.NaN)})`).join(' ')}, ${fmt((r.perConnBytes.get(Math.max(...MEMORY_N)) ?? 0) / 1024, 1)} KiB/conn [${r.phases}]\n`,
        );
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        results.set(label, msg);
        process.stdout.write(`${label.padEnd(17)}: FAILED: ${msg}\n`);
      }
    }
    const base = results.get('1 node SQLite');
    const loadMax = Math.max(...LOADS);
    const ratio = (a: number, b: number): string =>
      Number.isFinite(a / b) ? (a / b).toFixed(2) : 'n/a';
    process.stdout.write('\nmedians (one run each)\n');
    for (const [label] of setups) {
      const r = results.get(label);
      if (typeof r !== 'object') continue;
      const s = summarize([r]);
      const b = typeof base === 'object' ? summarize([base]) : undefined;
      process.stdout.write(
        `${label.padEnd(17)}: throughput ${fmt(s.tput)} blocks/s, p99@${loadMax} ${fmt(s.lat.get(loadMax)?.p99 ?? Number.NaN, 2)} ms, marginal ${fmt(s.marginal / 1024, 1)} KiB/conn; vs SQLite node: throughput ${b ? ratio(s.tput, b.tput) : 'n/a'}, p99 ${b ? ratio(s.lat.get(loadMax)?.p99 ?? Number.NaN, b.lat.get(loadMax)?.p99 ?? Number.NaN) : 'n/a'}\n`,
      );
    }
    if ([...results.values()].some((r) => typeof r !== 'object')) process.exitCode = 1;
  } finally {
    await Promise.all([pg.destroy(), redis.destroy()]);
  }
}

await main();
