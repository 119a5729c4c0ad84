/**
 * bench:search — local search over 100 000 stored messages (M38) in a real SQLCipher
 * profile store: `searchMessages` (FTS5 index inside the encrypted database, 50 newest
 * answers) against the anchor, a `LIKE '%word%'` scan over the same `messages` table in
 * the same file with the same key and the same LIMIT, run in the same process. Queries
 * are words drawn uniformly from the vocabulary (most are rare, a few common), 4-letter
 * prefixes, and one-conversation searches.
 *
 *   npm run bench:search        (PARLEY_BENCH_MESSAGES=20000 and PARLEY_BENCH_QUERIES=100
 *                                to change the sizes)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3-multiple-ciphers';
import { createSeededRandom, toHex } from '@parley/crypto';
import type { StoreWrite } from '@parley/client';
import { openSqliteStore, PROFILE_DB_FILE } from '@parley/client-node';

const MESSAGES = Number(process.env['PARLEY_BENCH_MESSAGES'] ?? 100_000);
const QUERIES = Number(process.env['PARLEY_BENCH_QUERIES'] ?? 400);
const VOCABULARY = 20_000;
const PEERS = 50;
const LIMIT = 50;
const BATCH = 2_000;

// Deterministic text, so runs compare like with like (never Math.random).
const random = createSeededRandom(new Uint8Array(32).fill(0x5e));
const u32 = (): number => new DataView(random(4).buffer).getUint32(0);
const uniform = (): number => u32() / 2 ** 32;
/** Word i of the vocabulary: a pronounceable made-up word, unique per i. */
function word(i: number): string {
  const syll = ['ka', 'lo', 'mi', 'ne', 'ru', 'sa', 'ti', 'vo', 'ze', 'po', 'da', 'gu'];
  let w = '';
  let n = i + 1;
  while (n > 0) {
    w += syll[n % syll.length];
    n = Math.floor(n / syll.length);
  }
  return w;
}
/** Zipf-like rank: a few words are very common, most are rare, as in chat text. */
const zipf = (): number =>
  Math.min(VOCABULARY - 1, Math.floor(Math.exp(uniform() * Math.log(VOCABULARY)) - 1));

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}
const fmt = (ms: number): string => `${ms.toFixed(3)} ms`;

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'parley-bench-search-'));
  const path = join(root, PROFILE_DB_FILE);
  const key = random(32);
  try {
    const store = openSqliteStore(path, key, { create: true });
    const t0 = performance.now();
    for (let done = 0; done < MESSAGES; done += BATCH) {
      const writes: StoreWrite[] = [];
      for (let i = done; i < Math.min(MESSAGES, done + BATCH); i++) {
        const len = 4 + (u32() % 14);
        const text = Array.from({ length: len }, () => word(zipf())).join(' ');
        writes.push({
          op: 'message.put',
          message: {
            id: toHex(random(16)),
            peer: `peer${u32() % PEERS}`,
            direction: u32() % 2 === 0 ? 'in' : 'out',
            text,
            sentAt: 1_700_000_000_000 + i * 1000,
            storedAt: 1_700_000_000_000 + i * 1000,
            status: 'received',
            shown: true,
          },
        });
      }
      await store.commit(writes);
    }
    const fillMs = performance.now() - t0;

    // The anchor reads the same file through a second connection with the same key.
    const anchor = new Database(path, { readonly: true });
    anchor.pragma(`cipher='sqlcipher'`);
    anchor.pragma('legacy=4');
    anchor.pragma(`key="x'${toHex(key)}'"`);
    const likeAll = anchor.prepare(
      `SELECT * FROM messages WHERE text LIKE ? ORDER BY seq DESC LIMIT ${LIMIT}`,
    );
    const likePeer = anchor.prepare(
      `SELECT * FROM messages WHERE text LIKE ? AND peer = ? ORDER BY seq DESC LIMIT ${LIMIT}`,
    );

    // Query words drawn uniformly from the vocabulary: mostly words that occur a few
    // times, which is what a person searches for (and what a scan cannot stop early on).
    const queries = Array.from({ length: QUERIES }, (_, i) => {
      const w = word(u32() % VOCABULARY);
      const kind = i % 4;
      return {
        fts: kind === 2 ? `${w.slice(0, 4)}*` : w,
        like: kind === 2 ? `%${w.slice(0, 4)}%` : `%${w}%`,
        ...(kind === 3 ? { peer: `peer${u32() % PEERS}` } : {}),
      };
    });
    // Warm both paths' page caches the same way before timing.
    for (const q of queries.slice(0, 20)) {
      await store.searchMessages(q.fts, { limit: LIMIT });
      likeAll.all(q.like);
    }
    const fts: number[] = [];
    const like: number[] = [];
    let hits = 0;
    for (const q of queries) {
      let t = performance.now();
      const r = await store.searchMessages(q.fts, {
        limit: LIMIT,
        ...(q.peer !== undefined ? { peer: q.peer } : {}),
      });
      fts.push(performance.now() - t);
      hits += r.length;
      t = performance.now();
      if (q.peer !== undefined) likePeer.all(q.like, q.peer);
      else likeAll.all(q.like);
      like.push(performance.now() - t);
    }
    anchor.close();
    await store.close();
    fts.sort((a, b) => a - b);
    like.sort((a, b) => a - b);
    const ftsP50 = percentile(fts, 50);
    const likeP50 = percentile(like, 50);
    process.stdout.write(
      [
        `bench:search — ${MESSAGES} messages (${PEERS} conversations, ${VOCABULARY}-word Zipf vocabulary), SQLCipher store`,
        `  fill: ${(fillMs / 1000).toFixed(1)} s (${Math.round(MESSAGES / (fillMs / 1000))} messages/s incl. index)`,
        `  ${QUERIES} queries (words, prefixes, one-conversation), newest ${LIMIT}; ${(hits / QUERIES).toFixed(1)} answers/query on average`,
        `  FTS5 index (searchMessages): p50 ${fmt(ftsP50)}  p99 ${fmt(percentile(fts, 99))}`,
        `  anchor LIKE '%word%' scan:   p50 ${fmt(likeP50)}  p99 ${fmt(percentile(like, 99))}`,
        `  ratio (LIKE p50 / FTS5 p50): ${(likeP50 / ftsP50).toFixed(1)}x`,
        '',
      ].join('\n'),
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
