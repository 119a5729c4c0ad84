/**
 * `npm run bench:fanout`: the relay's fan-out of one group message to 100 mailboxes,
 * through the real relay (own process, real TLS, SQLite with fsync per commit), beside
 * its anchor in the same run: the same 100 copies sent as 100 separate `send` frames.
 *   fan-out     — one `group.send` listing the 100 devices (offline: every copy is
 *                 written to its mailbox); done at its one `queued` receipt.
 *   individual  — 100 `send` frames of the same payload, one per device; done at the
 *                 100th `queued`.
 * Throughput: MESSAGES messages back to back per run (copies/s = messages × 100 ÷ time
 * to the last receipt); latency: one message at a time, time to its last receipt.
 * Medians of REPETITIONS interleaved runs; ratio = fan-out ÷ individual (> 1: the
 * upload is cheaper than the copies sent one by one). The relay's rate limits are
 * raised for both (100 `send` frames per message would trip the message limit, which
 * is the point of `group.send`); the group copy budget stays at its default.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNodeCrypto } from '@parley/crypto/node';
import type { ClientFrame } from '@parley/wire';
import { BenchClient, until } from './client.js';

const REPETITIONS = Number(process.env.BENCH_REPS ?? 5);
const MESSAGES = Number(process.env.BENCH_FANOUT_MESSAGES ?? 20);
const LATENCY_SAMPLES = Number(process.env.BENCH_FANOUT_LATENCY ?? 9);
const MEMBERS = 100;
const PAYLOAD_BYTES = 256;

const median = (v: readonly number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

let nextId = 1;
const clientMessageId = (): Uint8Array => {
  const id = new Uint8Array(16);
  new DataView(id.buffer).setUint32(12, nextId++);
  return id;
};

async function main(): Promise<void> {
  const crypto = createNodeCrypto();
  const dir = mkdtempSync(join(tmpdir(), 'parley-bench-fanout-'));
  const config = {
    presenceBroadcast: false,
    rateLimit: {
      maxBlocksPerConnection: 1_000_000_000,
      maxBlocksPerIdentity: 1_000_000_000,
      maxMessagesPerConnection: 1_000_000_000,
    },
  };
  const child = fork(
    fileURLToPath(new URL('./relay-child.ts', import.meta.url)),
    [join(dir, 'data'), JSON.stringify(config)],
    { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] },
  );
  try {
    const { url, caPem } = await new Promise<{ url: string; caPem: string }>((resolve, reject) => {
      child.once('message', (m) => resolve(m as { url: string; caPem: string }));
      child.once('exit', (code) => reject(new Error(`relay exited (${String(code)})`)));
    });
    const names = Array.from({ length: MEMBERS }, (_, i) => `member-${i}`);
    // Every member registers, then goes offline: each copy is a mailbox write.
    for (let i = 0; i < MEMBERS; i += 20) {
      const batch = await Promise.all(
        names
          .slice(i, i + 20)
          .map((n) =>
            BenchClient.register(url, caPem, crypto, n, crypto.ed25519.generateKeyPair()),
          ),
      );
      for (const c of batch) c.close();
    }
    const sender = await BenchClient.register(
      url,
      caPem,
      crypto,
      'sender',
      crypto.ed25519.generateKeyPair(),
    );
    const from = { name: 'sender', deviceId: 1 };
    const to = names.map((name) => ({ name, deviceId: 1 }));
    const payload = new Uint8Array(PAYLOAD_BYTES).fill(0x5a);
    const fanout = (): number => {
      const f: ClientFrame = {
        type: 'group.send',
        clientMessageId: clientMessageId(),
        from,
        to,
        payload,
      };
      sender.send(f);
      return 1;
    };
    const individual = (): number => {
      for (const recipient of to) {
        sender.send({
          type: 'send',
          clientMessageId: clientMessageId(),
          from,
          to: recipient,
          payload,
        });
      }
      return MEMBERS;
    };
    /** Sends `messages` messages back to back; seconds until every receipt. */
    const run = async (send: () => number, messages: number): Promise<number> => {
      sender.queued = 0;
      let expected = 0;
      const t = performance.now();
      for (let i = 0; i < messages; i++) expected += send();
      await until(() => sender.queued >= expected || sender.closed, 'receipts');
      if (sender.closed) throw new Error('sender disconnected');
      const errors = sender.frames.filter((f) => f.type === 'error');
      if (errors.length > 0) throw new Error(`relay refused: ${JSON.stringify(errors[0])}`);
      return (performance.now() - t) / 1000;
    };
    // Warm-up: JIT, prepared statements, TLS buffers.
    await run(fanout, 3);
    await run(individual, 3);
    const thr = { fanout: [] as number[], individual: [] as number[] };
    const lat = { fanout: [] as number[], individual: [] as number[] };
    for (let r = 0; r < REPETITIONS; r++) {
      // Alternate which goes first, so neither always meets a warmer or fuller database.
      const order =
        r % 2 === 0 ? (['fanout', 'individual'] as const) : (['individual', 'fanout'] as const);
      for (const mode of order) {
        const send = mode === 'fanout' ? fanout : individual;
        thr[mode].push((MESSAGES * MEMBERS) / (await run(send, MESSAGES)));
      }
    }
    for (let s = 0; s < LATENCY_SAMPLES; s++) {
      const order =
        s % 2 === 0 ? (['fanout', 'individual'] as const) : (['individual', 'fanout'] as const);
      for (const mode of order) {
        lat[mode].push(1000 * (await run(mode === 'fanout' ? fanout : individual, 1)));
      }
    }
    sender.close();
    const f = median(thr.fanout);
    const i = median(thr.individual);
    const lf = median(lat.fanout);
    const li = median(lat.individual);
    const row = (label: string, a: string, b: string, ratio: string): string =>
      `${label.padEnd(34)}${a.padStart(14)}${b.padStart(14)}${ratio.padStart(10)}`;
    console.log(
      `relay fan-out of one ${PAYLOAD_BYTES}-byte message to ${MEMBERS} mailboxes (offline devices, ` +
        `SQLite synchronous=full), medians of ${REPETITIONS} runs of ${MESSAGES} messages, ` +
        `${LATENCY_SAMPLES} latency samples`,
    );
    console.log(row('', 'fan-out', 'individual', 'ratio'));
    console.log(row('throughput (copies/s)', f.toFixed(0), i.toFixed(0), (f / i).toFixed(2)));
    console.log(
      row('one message, to last receipt (ms)', lf.toFixed(1), li.toFixed(1), (li / lf).toFixed(2)),
    );
    console.log('ratio: fan-out over individual sends (> 1: fan-out is faster)');
  } finally {
    child.send('stop');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
