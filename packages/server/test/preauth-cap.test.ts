/**
 * Per-address cap on not-yet-authenticated connections (M8): one machine opens more
 * half-open connections than the cap. The extra ones are refused at TCP accept and
 * audited; an authenticated connection from the same address is unaffected, another
 * address is served meanwhile, and the address is served again once its half-open
 * connections are gone (closed by the attacker, or cut by the handshake timeout).
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, TestClient, until, type Credentials, type Harness } from './helpers.js';

let h: Harness | undefined;
const raw = new Set<Socket>();
afterEach(async () => {
  for (const s of raw) s.destroy();
  raw.clear();
  await h?.close();
  h = undefined;
});

/** A TCP connection that never sends a byte: a half-open TLS handshake. */
interface HalfOpen {
  readonly socket: Socket;
  connected: boolean;
  closed: boolean;
}

function halfOpen(port: number): HalfOpen {
  const socket = connect({ host: '127.0.0.1', port });
  raw.add(socket);
  const c: HalfOpen = { socket, connected: false, closed: false };
  socket.on('connect', () => (c.connected = true));
  socket.on('error', () => undefined);
  socket.on('close', () => (c.closed = true));
  return c;
}

async function metric(harness: Harness, line: string): Promise<number | undefined> {
  const res = await fetch(`http://127.0.0.1:${harness.relay.adminPort}/metrics`);
  const text = await res.text();
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

async function waitMetric(harness: Harness, line: string, value: number): Promise<void> {
  let last: number | undefined;
  for (let i = 0; i < 500; i++) {
    last = await metric(harness, line);
    if (last === value) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${line} stayed at ${last}, expected ${value}`);
}

/** Connects with a certificate, optionally from another loopback address, and says hello. */
async function mtlsClient(
  harness: Harness,
  creds: Credentials,
  localAddress?: string,
): Promise<TestClient> {
  const opts = {
    ca: harness.relay.caPem,
    cert: creds.cert,
    key: creds.key,
    ...(localAddress !== undefined ? { localAddress } : {}),
  };
  const c = new TestClient(harness.relay.url, opts);
  await until(() => c.opened || c.closed || c.error !== undefined, 'open or refusal');
  return c;
}

async function roundTrip(c: TestClient): Promise<boolean> {
  const timestamp = Date.now();
  c.send({ type: 'ping', timestamp });
  return (await c.next('pong')).timestamp === timestamp;
}

const CAP_CODE = 'max-unauthenticated-per-address';
const UNAUTH = 'parley_unauthenticated_connections';
const REFUSED = 'parley_rejections_total{reason="conn.cap.address"}';

describe('per-address cap on unauthenticated connections', () => {
  it('refuses the extra half-open connections of one address and recovers when they go', async () => {
    const CAP = 4;
    const EXTRA = 3;
    const harness = await startHarness({
      config: { limits: { maxUnauthenticatedPerAddress: CAP } },
    });
    h = harness;
    const { port } = harness.relay;
    const alice = await harness.credentials('alice');
    const bob = await harness.credentials('bob');
    const carol = await harness.credentials('carol');

    // An authenticated connection from the attacking address holds no pre-auth slot.
    const a = await mtlsClient(harness, alice);
    await a.hello();
    await waitMetric(harness, UNAUTH, 0);

    const held = Array.from({ length: CAP }, () => halfOpen(port));
    await until(() => held.every((c) => c.connected), 'half-open connections accepted');
    await waitMetric(harness, UNAUTH, CAP);

    const extra = Array.from({ length: EXTRA }, () => halfOpen(port));
    await until(() => extra.every((c) => c.closed), 'extra connections refused');
    // The handshake timeout (10 s) is far away: the first ones are still held open.
    expect(held.filter((c) => c.closed)).toEqual([]);
    expect(await metric(harness, UNAUTH)).toBe(CAP);

    // A real client from the same address is refused too while the cap is full...
    const refused = await mtlsClient(harness, bob);
    expect(refused.opened).toBe(false);
    // ...while another address is served, and so is the authenticated connection.
    const other = await mtlsClient(harness, carol, '127.0.0.2');
    expect(other.opened).toBe(true);
    expect((await other.hello()).name).toBe('carol');
    expect(await roundTrip(a)).toBe(true);

    for (const c of held) c.socket.destroy();
    await waitMetric(harness, UNAUTH, 0);
    const b = await mtlsClient(harness, bob);
    expect(b.opened).toBe(true);
    expect((await b.hello()).name).toBe('bob');
    expect(await roundTrip(b)).toBe(true);

    const caps = harness.audit().filter((r) => r.type === 'conn.cap');
    // The three extra sockets and the refused client, each with the address and the count.
    expect(caps).toHaveLength(EXTRA + 1);
    for (const r of caps) {
      expect(r.code).toBe(CAP_CODE);
      expect(r.value).toBe(CAP);
      expect(r.remote).toMatch(/^(::ffff:)?127\.0\.0\.1:\d+$/);
    }
    expect(await metric(harness, REFUSED)).toBe(EXTRA + 1);
    // A refused socket is one record: only the held sockets the attacker reset
    // mid-handshake show up as TLS failures.
    expect(harness.audit().filter((r) => r.type === 'tls.rejected')).toHaveLength(CAP);
  });

  it('gives the slots back when the handshake timeout cuts the half-open connections', async () => {
    const CAP = 2;
    const harness = await startHarness({
      config: { limits: { maxUnauthenticatedPerAddress: CAP, handshakeTimeoutMs: 300 } },
    });
    h = harness;
    const { port } = harness.relay;
    const held = Array.from({ length: CAP }, () => halfOpen(port));
    await until(() => held.every((c) => c.connected), 'accepted');
    await waitMetric(harness, UNAUTH, CAP);
    const extra = halfOpen(port);
    await until(() => extra.closed, 'extra refused');

    // The attacker keeps its sockets; the relay cuts them at the handshake timeout.
    await until(() => held.every((c) => c.closed), 'half-open connections timed out');
    await waitMetric(harness, UNAUTH, 0);
    const dave = await mtlsClient(harness, await harness.credentials('dave'));
    expect(dave.opened).toBe(true);
    expect((await dave.hello()).name).toBe('dave');

    const records = harness.audit();
    expect(records.filter((r) => r.type === 'conn.cap' && r.code === CAP_CODE)).toHaveLength(1);
    expect(records.filter((r) => r.type === 'tls.timeout')).toHaveLength(CAP);
    expect(records.filter((r) => r.type === 'tls.rejected')).toEqual([]);
  });
});
