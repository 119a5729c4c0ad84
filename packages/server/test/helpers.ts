/**
 * Test harness: a relay in a temp data dir, real TLS clients (ws), credentials from
 * the real PKI, and the decrypted audit log.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { createNodeCrypto } from '@parley/crypto/node';
import { asEd25519SecretKey, type Ed25519KeyPair } from '@parley/crypto';
import { ed25519SeedFromPkcs8Pem, issueClient, type IssueOptions } from '@parley/pki';
import {
  IdentityKeyPair,
  generateKemPreKey,
  generateOneTimePreKeys,
  generateSignedPreKey,
  publicKemPreKey,
  publicOneTimePreKey,
  publicSignedPreKey,
} from '@parley/protocol';
import {
  FrameReader,
  FrameWriter,
  authSignedData,
  type ClientFrame,
  type ServerFrame,
} from '@parley/wire';
import {
  loadOrCreateAuditKey,
  startRelay,
  verifyAuditLog,
  type AuditRecord,
  type RelayConfigFile,
  type RunningRelay,
} from '../src/index.js';

export const crypto = createNodeCrypto();

export interface Harness {
  readonly relay: RunningRelay;
  readonly dir: string;
  credentials(name: string, opts?: IssueOptions): Promise<Credentials>;
  audit(): AuditRecord[];
  close(): Promise<void>;
}

export interface Credentials {
  readonly name: string;
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
  readonly identity: Ed25519KeyPair;
}

export async function startHarness(
  opts: { auth?: 'mtls' | 'open'; config?: RelayConfigFile; now?: () => number } = {},
): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-relay-'));
  const relay = await startRelay({
    dataDir: join(dir, 'data'),
    port: 0,
    auth: opts.auth ?? 'mtls',
    logLevel: 'silent',
    ...(opts.config ? { config: opts.config } : {}),
    ...(opts.now ? { now: opts.now } : {}),
  });
  return {
    relay,
    dir,
    credentials: async (name, issueOpts) => {
      const out = join(dir, 'clients', name);
      const files = await issueClient(join(dir, 'data'), name, out, issueOpts);
      const key = readFileSync(files.keyPath, 'utf8');
      const seed = asEd25519SecretKey(ed25519SeedFromPkcs8Pem(key));
      return {
        name,
        cert: files.certPem,
        key,
        ca: relay.caPem,
        identity: crypto.ed25519.keyPairFromSecret(seed),
      };
    },
    audit: () => {
      const key = loadOrCreateAuditKey(relay.paths.auditKey, crypto);
      const v = verifyAuditLog(readFileSync(relay.paths.auditLog, 'utf8'), key, crypto);
      if (!v.ok) throw new Error(`audit log does not verify at line ${v.line}: ${v.reason}`);
      return v.records;
    },
    close: async () => {
      await relay.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls `cond` until true or the bound runs out (no wall-clock assertions: the bound only stops a hang). */
export async function until(cond: () => boolean, what: string, maxMs = 10_000): Promise<void> {
  for (let waited = 0; !cond(); waited += 10) {
    if (waited > maxMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A real TLS WebSocket client speaking the wire protocol. */
export class TestClient {
  readonly ws: WebSocket;
  readonly frames: ServerFrame[] = [];
  readonly writer = new FrameWriter();
  readonly reader = new FrameReader({ direction: 'toClient', now: Date.now });
  closeCode: number | undefined;
  error: Error | undefined;
  opened = false;
  decodeError: unknown;
  answerPings = true;

  constructor(url: string, tlsOpts: { ca: string; cert?: string; key?: string }) {
    this.ws = new WebSocket(url, { ...tlsOpts, perMessageDeflate: false });
    this.ws.on('open', () => (this.opened = true));
    this.ws.on('error', (e) => (this.error = e));
    this.ws.on('close', (code) => (this.closeCode = code));
    this.ws.on('message', (data: Buffer) => {
      try {
        const f = this.reader.push(new Uint8Array(data));
        if (f === undefined) return;
        if (f.type === 'ping' && this.answerPings)
          this.send({ type: 'pong', timestamp: f.timestamp });
        this.frames.push(f);
      } catch (e) {
        this.decodeError = e;
      }
    });
  }

  static async connect(h: Harness, creds?: Credentials): Promise<TestClient> {
    const c = new TestClient(
      h.relay.url,
      creds ? { ca: h.relay.caPem, cert: creds.cert, key: creds.key } : { ca: h.relay.caPem },
    );
    await until(() => c.opened || c.closeCode !== undefined, 'open');
    return c;
  }

  get closed(): boolean {
    return this.closeCode !== undefined;
  }

  send(frame: ClientFrame): void {
    for (const b of this.writer.write(frame)) this.ws.send(b);
  }

  sendRaw(data: Uint8Array | string): void {
    this.ws.send(data);
  }

  /** Waits for the next frame of `type` not yet consumed; removes it from the list. */
  async next<T extends ServerFrame['type']>(
    type: T,
    maxMs = 10_000,
  ): Promise<Extract<ServerFrame, { type: T }>> {
    let found: ServerFrame | undefined;
    await until(
      () => {
        const i = this.frames.findIndex((f) => f.type === type);
        if (i >= 0) [found] = this.frames.splice(i, 1);
        return found !== undefined || this.closed;
      },
      `frame ${type}`,
      maxMs,
    );
    if (!found) throw new Error(`connection closed (${this.closeCode}) before ${type}`);
    return found as Extract<ServerFrame, { type: T }>;
  }

  has(type: ServerFrame['type']): boolean {
    return this.frames.some((f) => f.type === type);
  }

  async waitClosed(maxMs = 10_000): Promise<number> {
    await until(() => this.closed, 'close', maxMs);
    return this.closeCode as number;
  }

  /** mtls: hello, then welcome. */
  async hello(): Promise<Extract<ServerFrame, { type: 'welcome' }>> {
    this.send({ type: 'hello', protocolVersions: [1], timestamp: Date.now() });
    return this.next('welcome');
  }

  /** Open mode: hello, challenge, register or login. */
  async openAuth(
    purpose: 'register' | 'login',
    name: string,
    identity: Ed25519KeyPair,
  ): Promise<ServerFrame> {
    this.send({ type: 'hello', protocolVersions: [1], timestamp: Date.now() });
    const challenge = await this.next('challenge');
    return this.answer(purpose, name, identity, challenge);
  }

  async answer(
    purpose: 'register' | 'login',
    name: string,
    identity: Ed25519KeyPair,
    challenge: Extract<ServerFrame, { type: 'challenge' }>,
  ): Promise<ServerFrame> {
    const timestamp = Date.now();
    const data = authSignedData({
      purpose,
      challenge,
      name,
      deviceId: 1,
      timestamp,
      ...(purpose === 'register' ? { identityKey: identity.publicKey } : {}),
    });
    const signature = crypto.ed25519.sign(identity.secretKey, data);
    if (purpose === 'register') {
      this.send({
        type: 'register',
        name,
        deviceId: 1,
        identityKey: identity.publicKey,
        timestamp,
        signature,
      });
    } else {
      this.send({ type: 'login', name, deviceId: 1, timestamp, signature });
    }
    await until(() => this.has('welcome') || this.has('error') || this.closed, 'auth answer');
    const i = this.frames.findIndex((f) => f.type === 'welcome' || f.type === 'error');
    if (i < 0) throw new Error(`closed (${this.closeCode}) during auth`);
    return this.frames.splice(i, 1)[0] as ServerFrame;
  }

  close(): void {
    this.ws.terminate();
  }
}

export const clientId = (n: number): Uint8Array => {
  const id = new Uint8Array(16);
  new DataView(id.buffer).setUint32(12, n);
  return id;
};

/**
 * A first prekey upload signed by `identity` as the protocol defines it (the relay
 * verifies every signature), with `oneTime` one-time X25519 keys.
 */
export function prekeyUpload(
  oneTime: number,
  identity: Ed25519KeyPair,
): Extract<ClientFrame, { type: 'prekeys.upload' }> {
  const id = IdentityKeyPair.fromSeed(crypto, identity.secretKey);
  const now = Date.now();
  const upload: Extract<ClientFrame, { type: 'prekeys.upload' }> = {
    type: 'prekeys.upload',
    identityDh: {
      publicKey: id.publicIdentity.dhKey,
      signature: id.publicIdentity.dhSignature,
    },
    signedPrekey: publicSignedPreKey(generateSignedPreKey(crypto, id, 1, now)),
    pqLastResort: publicKemPreKey(generateKemPreKey(crypto, id, 2, 'last-resort', now)),
    oneTime: generateOneTimePreKeys(crypto, 100, oneTime).map(publicOneTimePreKey),
    oneTimePq: [],
  };
  id.destroy();
  return upload;
}
