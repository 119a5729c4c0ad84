/**
 * Packet capture for evidence tests: Debian's `tshark` on the loopback interface with a
 * capture filter on one TCP port, started and stopped by PID, and its field output
 * parsed into TLS records. A missing `tshark` is an error, never a skip: `.ci/run`
 * installs it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer, type AddressInfo } from 'node:net';
import { until } from './e2e-helpers.js';

/** Bound on tshark reporting that it captures, and on it writing the file after a stop. */
const TSHARK_START_MS = 20_000;
const TSHARK_STOP_MS = 20_000;
/** Bound on reading a capture back. */
const TSHARK_READ_MS = 60_000;

/** Bound on one marker packet showing up in tshark's output, and how often to try. */
const MARKER_WAIT_MS = 2_000;
const MARKER_ATTEMPTS = 10;

export interface Capture {
  readonly file: string;
  /**
   * Waits until tshark has taken in every packet sent so far, then stops it (SIGTERM to
   * its PID) and waits until it has exited and closed the file.
   */
  stop(): Promise<void>;
}

/**
 * Starts capturing TCP `port` on `lo` into `file` (classic pcap: no comment or
 * host-information blocks, so the file holds packet bytes and little else). Resolves
 * once the capture is live: tshark has said it is capturing and has taken in a marker
 * packet sent after that (it may print the first before the second holds).
 */
export async function startCapture(port: number, file: string): Promise<Capture> {
  // Marker connections go to a listener of our own, captured too, so they never touch
  // the server under test; tshark prints each packet's source port as it takes it in.
  const markers = createServer((s) => s.destroy());
  await new Promise<void>((resolve) => markers.listen(0, '127.0.0.1', resolve));
  const markerPort = (markers.address() as AddressInfo).port;
  const child = spawn(
    'tshark',
    ['-n', '-l', '-i', 'lo', '-f', `tcp port ${port} or tcp port ${markerPort}`].concat([
      '-F',
      'pcap',
      '-w',
      file,
      '-P',
      '-T',
      'fields',
      '-e',
      'tcp.srcport',
    ]),
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let err = '';
  let seenPorts = '\n';
  let failed: Error | undefined;
  let exited = false;
  child.stdout.on('data', (d: Buffer) => (seenPorts += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.on('error', (e) => {
    failed = new Error(
      `cannot run tshark (${e.message}): install Debian's tshark package (.ci/run does)`,
    );
    exited = true; // it never ran (or can no longer be signalled)
  });
  child.on('exit', () => (exited = true));

  /** Sends marker packets until tshark shows one: everything sent before is then captured. */
  const barrier = async (): Promise<void> => {
    for (let attempt = 0; attempt < MARKER_ATTEMPTS && !exited; attempt++) {
      const local = await markerConnection(markerPort);
      try {
        await until(() => seenPorts.includes(`\n${local}\n`) || exited, 'a marker', MARKER_WAIT_MS);
        if (!exited) return;
      } catch {
        // Sent before the capture was live: try again.
      }
    }
    throw new Error(`tshark never showed a marker packet: ${err.trim()}`);
  };
  const stopTshark = async (): Promise<void> => {
    if (!exited) kill(child);
    await until(() => exited, 'tshark to exit', TSHARK_STOP_MS);
    await new Promise<void>((resolve) => markers.close(() => resolve()));
  };

  try {
    await until(
      () => failed !== undefined || exited || /Capturing on/.test(err),
      'tshark to start capturing',
      TSHARK_START_MS,
    );
    if (failed) throw failed;
    if (exited) throw new Error(`tshark exited before capturing: ${err.trim()}`);
    await barrier();
  } catch (e) {
    await stopTshark();
    throw e;
  }
  return {
    file,
    async stop() {
      try {
        await barrier();
      } finally {
        await stopTshark();
      }
    },
  };
}

/** Opens and closes one TCP connection to `port`; returns the local port it came from. */
async function markerConnection(port: number): Promise<number> {
  const socket = connect(port, '127.0.0.1');
  let local: number | undefined;
  socket.on('error', () => undefined);
  socket.once('connect', () => (local = socket.localPort));
  try {
    await until(() => local !== undefined, 'a marker connection', MARKER_WAIT_MS);
  } finally {
    socket.destroy();
  }
  return local as number;
}

function kill(child: ChildProcess): void {
  if (child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
}

/** One TLS record as tshark dissected it. */
export interface TlsRecord {
  /** tshark's TCP conversation index. */
  readonly stream: number;
  /** True for records sent by the side listening on the captured port (the relay). */
  readonly fromServer: boolean;
  readonly contentType: number;
  readonly version: number;
  readonly length: number;
}

export interface Dissected {
  readonly records: TlsRecord[];
  /** Per TCP stream: the TLS versions the ServerHello selected (supported_versions). */
  readonly selectedVersions: Map<number, number[]>;
  /** Per TCP stream: the versions the ClientHello offered. */
  readonly offeredVersions: Map<number, number[]>;
}

/** Runs `tshark -r` over `file`, decoding `port` as TLS, and collects every record header. */
export async function dissectTls(file: string, port: number): Promise<Dissected> {
  // JSON with repeated keys folded into arrays: the one output that keeps each record's
  // fields together (clear records have a content type, encrypted ones an opaque type).
  const out = await run('tshark', [
    '-n',
    '-r',
    file,
    '-d',
    `tcp.port==${port},tls`,
    '-Y',
    'tls',
    '-T',
    'json',
    '-J',
    'tcp tls',
    '--no-duplicate-keys',
  ]);
  const packets = JSON.parse(out) as { _source: { layers: Record<string, unknown> } }[];
  const records: TlsRecord[] = [];
  const selectedVersions = new Map<number, number[]>();
  const offeredVersions = new Map<number, number[]>();
  const add = (m: Map<number, number[]>, s: number, v: number[]): void => {
    m.set(s, [...(m.get(s) ?? []), ...v]);
  };
  for (const p of packets) {
    const tcp = p._source.layers.tcp as Record<string, string>;
    const stream = Number(tcp['tcp.stream']);
    const fromServer = Number(tcp['tcp.srcport']) === port;
    for (const tls of list(p._source.layers.tls)) {
      for (const r of list((tls as Record<string, unknown>)['tls.record'])) {
        const rec = r as Record<string, unknown>;
        const type = rec['tls.record.content_type'] ?? rec['tls.record.opaque_type'];
        if (typeof type !== 'string')
          throw new Error(`a TLS record without a type: ${JSON.stringify(r).slice(0, 200)}`);
        records.push({
          stream,
          fromServer,
          contentType: Number(type),
          version: Number(rec['tls.record.version']),
          length: Number(rec['tls.record.length']),
        });
        for (const h of list(rec['tls.handshake'])) {
          const hs = h as Record<string, unknown>;
          const versions = find(hs, 'tls.handshake.extensions.supported_version').map(Number);
          // supported_versions: in a ServerHello the selected version, in a ClientHello the offer.
          if (hs['tls.handshake.type'] === '2') add(selectedVersions, stream, versions);
          if (hs['tls.handshake.type'] === '1') add(offeredVersions, stream, versions);
        }
      }
    }
  }
  return { records, selectedVersions, offeredVersions };
}

/** A JSON value that tshark writes as one item or as an array of them. */
function list(v: unknown): unknown[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/** Every string value stored under `key` anywhere inside `v`. */
function find(v: unknown, key: string): string[] {
  if (Array.isArray(v)) return v.flatMap((x) => find(x, key));
  if (v === null || typeof v !== 'object') return [];
  return Object.entries(v).flatMap(([k, x]) =>
    k === key ? list(x).filter((y): y is string => typeof y === 'string') : find(x, key),
  );
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => kill(child), TSHARK_READ_MS);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} exited ${code}: ${err.trim()}`));
    });
  });
}
