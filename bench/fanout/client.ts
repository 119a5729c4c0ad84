/**
 * A raw wire client for `bench:fanout`: real TLS WebSocket, open-mode registration,
 * frames counted as they arrive. Just enough to drive the relay; no end-to-end layer.
 */
import WebSocket from 'ws';
import type { Ed25519KeyPair, CryptoProvider } from '@parley/crypto';
import {
  FrameReader,
  FrameWriter,
  authSignedData,
  type ClientFrame,
  type ServerFrame,
} from '@parley/wire';

/** Bounded wait on a condition (the bench never sleeps a fixed time to measure). */
export async function until(cond: () => boolean, what: string, maxMs = 120_000): Promise<void> {
  const start = performance.now();
  while (!cond()) {
    if (performance.now() - start > maxMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

export class BenchClient {
  readonly #ws: WebSocket;
  readonly #writer = new FrameWriter();
  readonly #reader = new FrameReader({ direction: 'toClient', now: Date.now });
  readonly frames: ServerFrame[] = [];
  /** `queued` receipts seen since the last `resetQueued`. */
  queued = 0;
  opened = false;
  closed = false;

  constructor(url: string, ca: string) {
    this.#ws = new WebSocket(url, { ca, perMessageDeflate: false });
    this.#ws.on('open', () => (this.opened = true));
    this.#ws.on('close', () => (this.closed = true));
    this.#ws.on('error', () => (this.closed = true));
    this.#ws.on('message', (data: Buffer) => {
      const f = this.#reader.push(new Uint8Array(data));
      if (f === undefined) return;
      if (f.type === 'receipt' && f.status === 'queued') {
        this.queued++;
        return;
      }
      if (f.type === 'ping') this.send({ type: 'pong', timestamp: f.timestamp });
      else this.frames.push(f);
    });
  }

  send(frame: ClientFrame): void {
    for (const b of this.#writer.write(frame)) this.#ws.send(b);
  }

  async next<T extends ServerFrame['type']>(type: T): Promise<Extract<ServerFrame, { type: T }>> {
    let found: ServerFrame | undefined;
    await until(() => {
      const i = this.frames.findIndex((f) => f.type === type);
      if (i >= 0) [found] = this.frames.splice(i, 1);
      return found !== undefined || this.closed;
    }, type);
    if (!found) throw new Error(`closed before ${type}`);
    return found as Extract<ServerFrame, { type: T }>;
  }

  /** Connects and registers `name` (device 1) with `identity`; resolves after the backlog. */
  static async register(
    url: string,
    ca: string,
    crypto: CryptoProvider,
    name: string,
    identity: Ed25519KeyPair,
  ): Promise<BenchClient> {
    const c = new BenchClient(url, ca);
    await until(() => c.opened || c.closed, 'open');
    c.send({ type: 'hello', protocolVersions: [1], timestamp: Date.now() });
    const challenge = await c.next('challenge');
    const timestamp = Date.now();
    const data = authSignedData({
      purpose: 'register',
      challenge,
      name,
      deviceId: 1,
      timestamp,
      identityKey: identity.publicKey,
    });
    c.send({
      type: 'register',
      name,
      deviceId: 1,
      identityKey: identity.publicKey,
      timestamp,
      signature: crypto.ed25519.sign(identity.secretKey, data),
    });
    await c.next('welcome');
    await c.next('mailbox.empty');
    return c;
  }

  close(): void {
    this.#ws.close();
  }
}
