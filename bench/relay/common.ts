/**
 * Shared pieces of the relay benchmark: the IPC messages between the orchestrator
 * (run.ts), the server process (raw-server.ts or parley-server.ts) and the load
 * generator (loadgen.ts), the block payload layout, and statistics helpers.
 */

/** Every WebSocket message in both targets is exactly one block of this size. */
export const BLOCK_BYTES = 4096;

/** Payload header written by the load generator: f64 send time (ms), u32 pair index. */
export const STAMP_BYTES = 12;

/**
 * Raw baseline only: byte after the stamp saying what a block is (data, the receiver's
 * ack, or a synthetic receipt in `receipts` mode).
 */
export const RAW_KIND_OFFSET = STAMP_BYTES;
export const RAW_DATA = 0;
export const RAW_ACK = 1;
export const RAW_RECEIPT = 2;

/**
 * What the raw baseline moves per message.
 * - `pair` (default): every block goes to the pair's other end, and the load generator
 *   acknowledges each data block as Parley's client does: data in, data out, ack in,
 *   ack out. These are the blocks Parley moves for a message its online recipient acks
 *   while the relay holds it (deliver out, "delivered" receipt out), so the ratio
 *   prices framing, checks, routing and the mailbox, not protocol traffic.
 * - `receipts`: as `pair`, plus a receipt block to the sender for each data block (the
 *   5 blocks Parley moves when it stores the message and sends "queued" too).
 * - `forward`: data blocks only, no acks (2 blocks per message).
 */
export type RawMode = 'pair' | 'receipts' | 'forward';

/** Which server the load generator is driving. */
export type Target = 'raw' | 'parley';

/** Orchestrator -> server process. */
/**
 * Orchestrator -> server process. `mem` with `gc` runs two full collections first, for
 * the memory figures only: a forced collection resets V8's heap-sizing heuristics, and
 * before a latency phase that left Parley's relay in back-to-back incremental
 * mark-compacts for the whole phase (p99 x4), which no production process does.
 */
export type ServerCommand =
  { readonly cmd: 'mem'; readonly gc: boolean } | { readonly cmd: 'stop' };

/** Server process -> orchestrator. */
export type ServerReply =
  | { readonly type: 'ready'; readonly port: number; readonly url: string }
  | {
      readonly type: 'mem';
      readonly rss: number;
      readonly heapUsed: number;
      readonly external: number;
      /** Cumulative CPU time of the server process, microseconds (user + system). */
      readonly cpuMicros: number;
    }
  | { readonly type: 'failed'; readonly message: string };

/** Orchestrator -> load generator. */
export type LoadCommand =
  | {
      readonly cmd: 'init';
      readonly target: Target;
      readonly rawMode: RawMode;
      readonly url: string;
      /** Relay nodes to spread connections over (pairs span nodes); default: `url` only. */
      readonly urls?: readonly string[];
      readonly caPem: string;
      readonly clientsDir: string;
      readonly names: readonly string[];
    }
  | { readonly cmd: 'connect'; readonly total: number }
  | {
      readonly cmd: 'throughput';
      readonly pairs: number;
      readonly window: number;
      readonly warmupMs: number;
      readonly durationMs: number;
    }
  | {
      readonly cmd: 'latency';
      readonly pairs: number;
      readonly ratePerSec: number;
      readonly warmupMs: number;
      readonly durationMs: number;
    }
  | { readonly cmd: 'close' };

/** Load generator -> orchestrator. */
export type LoadReply =
  | { readonly type: 'ok' }
  | { readonly type: 'connected'; readonly total: number }
  | {
      readonly type: 'throughput';
      readonly blocks: number;
      readonly seconds: number;
      /** CPU the load generator used during the measured window, in cores. */
      readonly cpuCores: number;
      /** Connections lost and error frames seen so far (empty-ish when all is well). */
      readonly health: string;
    }
  | {
      readonly type: 'latency';
      readonly sent: number;
      readonly received: number;
      readonly p50Ms: number;
      readonly p99Ms: number;
      readonly health: string;
    }
  | { readonly type: 'failed'; readonly message: string };

/** Value at quantile q (0..1) of an ascending-sorted array (nearest rank). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[idx] ?? Number.NaN;
}

/** Median of a list (not necessarily sorted). */
export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? Number.NaN) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/** Reads the whole message type-safely from a `process.on('message')` handler. */
export function send<T>(msg: T): void {
  process.send?.(msg);
}

/**
 * A server process's answer to `mem`: memory and cumulative CPU, after two full
 * collections when `gc` (needs --expose-gc).
 */
export function memReply(gc: boolean): ServerReply {
  if (gc) {
    const collect = (globalThis as { gc?: () => void }).gc;
    collect?.();
    collect?.();
  }
  const u = process.memoryUsage();
  const c = process.cpuUsage();
  return {
    type: 'mem',
    rss: u.rss,
    heapUsed: u.heapUsed,
    external: u.external,
    cpuMicros: c.user + c.system,
  };
}
