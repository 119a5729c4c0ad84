/**
 * bench:duress — how long unlocking takes with the real passphrase and with the duress
 * passphrase (M40), on copies of one profile folder (default Argon2id cost, 64 MiB,
 * t = 3, and PARLEY_BENCH_MESSAGES stored messages, 2000 by default). Each run copies the
 * folder twice and times `openProfile` + `close` on each copy, alternating which path
 * goes first; the medians and their difference are printed. The anchor is the real
 * path: the duress path should be within a few per cent of it, so that a person
 * watching the screen cannot tell which passphrase was typed.
 *
 *   npm run bench:duress        (PARLEY_BENCH_RUNS=9 to change the number of runs; 7)
 *
 * PARLEY_BENCH_KDF=min uses the cheapest Argon2id a profile accepts, which shows the part
 * of the difference that is not Argon2id (the wipe and the new database against opening
 * and checking the old one) without the KDF's run-to-run noise.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createPortableCrypto, toHex } from '@parley/crypto';
import { MIN_KDF_MEMORY_KIB } from '@parley/client';
import type { StoreWrite } from '@parley/client';
import { initProfile, openProfile, setDuressPassphrase } from '@parley/client-node';

const RUNS = Number(process.env['PARLEY_BENCH_RUNS'] ?? 7);
const MESSAGES = Number(process.env['PARLEY_BENCH_MESSAGES'] ?? 2000);
const REAL = 'the real passphrase';
const DURESS = 'the duress passphrase';
const MIN_KDF = process.env['PARLEY_BENCH_KDF'] === 'min';

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};

async function timeOpen(dir: string, passphrase: string): Promise<number> {
  const crypto = createPortableCrypto();
  const t = performance.now();
  const store = await openProfile(dir, passphrase, { crypto });
  await store.close();
  return performance.now() - t;
}

async function main(): Promise<void> {
  const crypto = createPortableCrypto();
  const root = mkdtempSync(join(tmpdir(), 'parley-bench-duress-'));
  try {
    const template = join(root, 'template');
    await initProfile({
      profile: template,
      passphrase: REAL,
      server: 'wss://127.0.0.1:1',
      mode: 'open',
      name: 'alice',
      ...(MIN_KDF ? { kdf: { memoryKiB: MIN_KDF_MEMORY_KIB, iterations: 1 } } : {}),
    });
    const s = await openProfile(template, REAL, { crypto });
    const writes: StoreWrite[] = [];
    for (let i = 0; i < MESSAGES; i++) {
      writes.push({
        op: 'message.put',
        message: {
          id: toHex(crypto.randomBytes(16)),
          peer: `peer${i % 10}`,
          direction: i % 2 === 0 ? 'in' : 'out',
          text: `message ${i} with some ordinary words in it, about as long as a chat line`,
          sentAt: i,
          storedAt: i,
          status: 'received',
          shown: true,
        },
      });
    }
    await s.commit(writes);
    await s.close();
    await setDuressPassphrase({ profile: template, passphrase: REAL, newPassphrase: DURESS });

    const real: number[] = [];
    const duress: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const a = join(root, `real-${r}`);
      const b = join(root, `duress-${r}`);
      cpSync(template, a, { recursive: true });
      cpSync(template, b, { recursive: true });
      if (r % 2 === 0) {
        real.push(await timeOpen(a, REAL));
        duress.push(await timeOpen(b, DURESS));
      } else {
        duress.push(await timeOpen(b, DURESS));
        real.push(await timeOpen(a, REAL));
      }
      rmSync(a, { recursive: true, force: true });
      rmSync(b, { recursive: true, force: true });
    }
    const mr = median(real);
    const md = median(duress);
    const f = (xs: number[]): string => xs.map((x) => x.toFixed(0)).join(' ');
    process.stdout.write(
      [
        `bench:duress — unlock (openProfile + close), Argon2id ${MIN_KDF ? 'minimum cost (8 KiB, t=1)' : '64 MiB t=3'}, ${MESSAGES} messages, ${RUNS} runs`,
        `  real passphrase:   median ${mr.toFixed(1)} ms   (${f(real)})`,
        `  duress passphrase: median ${md.toFixed(1)} ms   (${f(duress)})  wipe + empty profile`,
        `  difference: ${(md - mr).toFixed(1)} ms (${(((md - mr) / mr) * 100).toFixed(1)}% of the real path)`,
        '',
      ].join('\n'),
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
