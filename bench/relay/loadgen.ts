/**
 * The load generator, a separate process so its CPU and memory are not the server's.
 * It drives either target with the same pattern: 2P mutual-TLS WebSocket connections
 * forming P sender -> receiver pairs, each message exactly one 4096-byte block.
 *
 * - raw: the block itself carries the send time; the server forwards it to the peer.
 * - parley: Parley's wire frames (@parley/wire): hello -> welcome (mtls), then `send`
 *   frames whose opaque payload carries the send time; the receiver decodes `deliver`
 *   and answers with `ack`, as a real client does (the relay may only delete after it).
 *
 * Throughput is closed-loop (each pair keeps `window` blocks in flight); latency is
 * open-loop at a fixed offered rate, measured send-to-receive on one monotonic clock.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FrameReader, FrameWriter, type SendFrame } from '@parley/wire';
import WebSocket from 'ws';
import {
  BLOCK_BYTES,
  RAW_ACK,
  RAW_DATA,
  RAW_KIND_OFFSET,
  STAMP_BYTES,
  quantile,
  send,
  type LoadCommand,
  type LoadReply,
  type RawMode,
  type Target,
} from './common.js';

/** Handshakes in flight at once while connecting, so the server is not swamped by SYNs. */
const CONNECT_CONCURRENCY = 32;
/** Give up on one connection after this long. */
const CONNECT_TIMEOUT_MS = 20_000;
/** After an open-loop run, wait at most this long for stragglers. */
const DRAIN_MS = 2_000;
/**
 * Open-loop scheduler tick. 1 ms (the timer floor) spreads the offered load evenly: at
 * 1000 blocks/s about one block per tick. With 5 ms ticks blocks left in bursts of 5,
 * so any stall of either server delayed five samples at once and p99 mostly counted
 * stalls (both targets' p99 then varied 1-12 ms from run to run).
 */
const TICK_MS = 1;

interface Conn {
  readonly index: number;
  readonly name: string;
  readonly ws: WebSocket;
  readonly writer: FrameWriter;
  readonly reader: FrameReader<'toClient'>;
}

let target: Target = 'raw';
let rawMode: RawMode = 'pair';
let url = '';
/** Several relay nodes: connection i goes to urls[i % n], so each pair spans two nodes. */
let urls: readonly string[] = [];
let caPem = '';
let clientsDir = '';
let names: readonly string[] = [];
const conns: Conn[] = [];
let parleyPayloadBytes = 0;
let messageCounter = 0;
let errors = 0;
/** Connections that closed after authenticating, and error frames by code: a run that
 * lost connections or got errors is reported as such, not silently averaged in. */
let closedAfterReady = 0;
const errorFrames = new Map<string, number>();
const closeCodes = new Map<string, number>();

function health(): string {
  const parts = [`closed ${closedAfterReady}`];
  for (const [k, v] of closeCodes) parts.push(`close ${k} x${v}`);
  for (const [k, v] of errorFrames) parts.push(`error ${k} x${v}`);
  return parts.join(', ');
}

/** Called for every block that reached its receiver: pair index and its send time. */
let onReceive: (pair: number, sentAt: number) => void = () => undefined;

function stampInto(buf: Uint8Array, pair: number): void {
  const dv = new DataView(buf.buffer, buf.byteOffset, STAMP_BYTES);
  dv.setFloat64(0, performance.now());
  dv.setUint32(8, pair);
}

function readStamp(buf: Uint8Array): { sentAt: number; pair: number } {
  const dv = new DataView(buf.buffer, buf.byteOffset, STAMP_BYTES);
  return { sentAt: dv.getFloat64(0), pair: dv.getUint32(8) };
}

function peerOf(index: number): number {
  return index % 2 === 0 ? index + 1 : index - 1;
}

/** Largest payload whose `send` frame still fits one block. */
function fitPayloadBytes(): number {
  const w = new FrameWriter({ blockBytes: BLOCK_BYTES });
  for (let n = BLOCK_BYTES; n > STAMP_BYTES; n--) {
    const f: SendFrame = {
      type: 'send',
      clientMessageId: new Uint8Array(16),
      from: { name: names[0] ?? 'a', deviceId: 1 },
      to: { name: names[1] ?? 'b', deviceId: 1 },
      payload: new Uint8Array(n),
    };
    if (w.write(f).length === 1) return n;
  }
  throw new Error('no payload size fits one block');
}

function sendBlock(c: Conn, pair: number): void {
  if (target === 'raw') {
    const block = new Uint8Array(BLOCK_BYTES);
    stampInto(block, pair);
    c.ws.send(block, { binary: true });
    return;
  }
  const payload = new Uint8Array(parleyPayloadBytes);
  stampInto(payload, pair);
  const id = new Uint8Array(16);
  new DataView(id.buffer).setUint32(0, c.index);
  new DataView(id.buffer).setUint32(4, messageCounter++);
  const peer = names[peerOf(c.index)] ?? '';
  for (const block of c.writer.write({
    type: 'send',
    clientMessageId: id,
    from: { name: c.name, deviceId: 1 },
    to: { name: peer, deviceId: 1 },
    payload,
  })) {
    c.ws.send(block, { binary: true });
  }
}

function connect(index: number): Promise<Conn> {
  const name = names[index] ?? '';
  const peer = names[peerOf(index)] ?? '';
  const base = urls.length > 0 ? (urls[index % urls.length] ?? url) : url;
  const full = target === 'raw' ? `${base}?me=${name}&to=${peer}` : base;
  const ws = new WebSocket(full, {
    ca: caPem,
    cert: readFileSync(join(clientsDir, `${name}.crt`)),
    key: readFileSync(join(clientsDir, `${name}.key`)),
    minVersion: 'TLSv1.3',
    perMessageDeflate: false,
  });
  ws.binaryType = 'nodebuffer';
  const c: Conn = {
    index,
    name,
    ws,
    writer: new FrameWriter({ blockBytes: BLOCK_BYTES }),
    reader: new FrameReader({
      direction: 'toClient',
      blockBytes: BLOCK_BYTES,
      now: () => Date.now(),
    }),
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`connect ${name}: timeout`));
    }, CONNECT_TIMEOUT_MS);
    let ready = false;
    const done = (): void => {
      ready = true;
      clearTimeout(timer);
      resolve(c);
    };
    ws.on('error', (e) => {
      errors++;
      if (!ready) {
        clearTimeout(timer);
        reject(e);
      }
    });
    ws.on('close', (code, reason) => {
      if (ready) {
        closedAfterReady++;
        const key = `${code}${reason.length > 0 ? ` ${String(reason)}` : ''}`;
        closeCodes.set(key, (closeCodes.get(key) ?? 0) + 1);
      }
      if (!ready) {
        clearTimeout(timer);
        reject(new Error(`connect ${name}: closed ${code} ${String(reason)}`));
      }
    });
    ws.on('open', () => {
      if (target === 'raw') return done();
      for (const b of c.writer.write({
        type: 'hello',
        protocolVersions: [1],
        timestamp: Date.now(),
      })) {
        ws.send(b, { binary: true });
      }
    });
    ws.on('message', (data: Buffer) => {
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      if (target === 'raw') {
        if (rawMode !== 'forward') {
          if (bytes[RAW_KIND_OFFSET] !== RAW_DATA) return; // a receipt
          // Acknowledge as Parley's receiver does (a fresh block, as its writer makes).
          const ack = new Uint8Array(BLOCK_BYTES);
          ack[RAW_KIND_OFFSET] = RAW_ACK;
          ws.send(ack, { binary: true });
        }
        const s = readStamp(bytes);
        onReceive(s.pair, s.sentAt);
        return;
      }
      const frame = c.reader.push(bytes);
      if (frame === undefined) return;
      switch (frame.type) {
        case 'welcome':
          done();
          break;
        case 'deliver': {
          for (const b of c.writer.write({ type: 'ack', serverMessageId: frame.serverMessageId })) {
            ws.send(b, { binary: true });
          }
          const s = readStamp(frame.payload);
          onReceive(s.pair, s.sentAt);
          break;
        }
        case 'ping':
          for (const b of c.writer.write({ type: 'pong', timestamp: frame.timestamp })) {
            ws.send(b, { binary: true });
          }
          break;
        case 'error':
          errors++;
          errorFrames.set(frame.code, (errorFrames.get(frame.code) ?? 0) + 1);
          break;
        default:
          break;
      }
    });
  });
}

async function connectUpTo(total: number): Promise<void> {
  if (total > names.length) throw new Error(`only ${names.length} client certificates`);
  let next = conns.length;
  const worker = async (): Promise<void> => {
    while (next < total) {
      const i = next++;
      conns[i] = await connect(i);
    }
  };
  await Promise.all(Array.from({ length: CONNECT_CONCURRENCY }, worker));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function throughput(
  pairs: number,
  window: number,
  warmupMs: number,
  durationMs: number,
): Promise<LoadReply> {
  if (pairs * 2 > conns.length) throw new Error('not enough connections');
  let running = true;
  let counting = false;
  let blocks = 0;
  const outstanding = new Array<number>(pairs).fill(0);
  onReceive = (pair) => {
    outstanding[pair] = (outstanding[pair] ?? 1) - 1;
    if (counting) blocks++;
    const sender = conns[pair * 2];
    if (running && sender) {
      outstanding[pair] = (outstanding[pair] ?? 0) + 1;
      sendBlock(sender, pair);
    }
  };
  for (let p = 0; p < pairs; p++) {
    const sender = conns[p * 2];
    if (!sender) continue;
    for (let k = 0; k < window; k++) {
      outstanding[p] = (outstanding[p] ?? 0) + 1;
      sendBlock(sender, p);
    }
  }
  await sleep(warmupMs);
  counting = true;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await sleep(durationMs);
  counting = false;
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  // Share of one core the load generator used: near 1.0 means it, not the server, limits.
  const cpuCores = (cpu.user + cpu.system) / 1e6 / seconds;
  running = false;
  // Let in-flight blocks drain (bounded) so the next phase starts from quiet.
  for (let i = 0; i < DRAIN_MS / 50 && outstanding.some((n) => n > 0); i++) await sleep(50);
  onReceive = () => undefined;
  return { type: 'throughput', blocks, seconds, cpuCores, health: health() };
}

async function latency(
  pairs: number,
  ratePerSec: number,
  warmupMs: number,
  durationMs: number,
): Promise<LoadReply> {
  if (pairs * 2 > conns.length) throw new Error('not enough connections');
  const samples: number[] = [];
  let sent = 0;
  let received = 0;
  let measuredSent = 0;
  let carry = 0;
  let nextPair = 0;
  const start = performance.now();
  const endAt = start + warmupMs + durationMs;
  const measureFrom = start + warmupMs;
  let measuring = true;
  onReceive = (_pair, sentAt) => {
    received++;
    if (measuring && sentAt >= measureFrom) samples.push(performance.now() - sentAt);
  };
  let last = start;
  while (performance.now() < endAt) {
    await sleep(TICK_MS);
    const now = performance.now();
    carry += ((now - last) / 1000) * ratePerSec;
    last = now;
    while (carry >= 1) {
      carry -= 1;
      const sender = conns[nextPair * 2];
      if (sender) sendBlock(sender, nextPair);
      sent++;
      if (now >= measureFrom) measuredSent++;
      nextPair = (nextPair + 1) % pairs;
    }
  }
  for (let i = 0; i < DRAIN_MS / 50 && received < sent; i++) await sleep(50);
  measuring = false;
  onReceive = () => undefined;
  samples.sort((a, b) => a - b);
  return {
    type: 'latency',
    sent: measuredSent,
    received: samples.length,
    p50Ms: quantile(samples, 0.5),
    p99Ms: quantile(samples, 0.99),
    health: health(),
  };
}

process.on('message', (m: LoadCommand) => {
  const run = async (): Promise<LoadReply> => {
    switch (m.cmd) {
      case 'init':
        target = m.target;
        rawMode = m.rawMode;
        url = m.url;
        urls = m.urls ?? [];
        caPem = m.caPem;
        clientsDir = m.clientsDir;
        names = m.names;
        if (target === 'parley') parleyPayloadBytes = fitPayloadBytes();
        return { type: 'ok' };
      case 'connect':
        await connectUpTo(m.total);
        return { type: 'connected', total: conns.length };
      case 'throughput':
        return throughput(m.pairs, m.window, m.warmupMs, m.durationMs);
      case 'latency':
        return latency(m.pairs, m.ratePerSec, m.warmupMs, m.durationMs);
      case 'close':
        for (const c of conns) c.ws.terminate();
        setTimeout(() => process.exit(0), 50);
        return { type: 'ok' };
    }
  };
  run().then(
    (r) => send<LoadReply>(r),
    (e: unknown) =>
      send<LoadReply>({
        type: 'failed',
        message: `${e instanceof Error ? e.message : String(e)} (errors so far: ${errors})`,
      }),
  );
});
