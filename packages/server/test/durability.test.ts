/**
 * Durability (M11): a sender sends to an offline recipient while the relay process is
 * SIGKILLed at random moments and restarted. The sender re-sends whatever has no
 * "queued" receipt (same client message id). After the last restart the recipient
 * must receive every message exactly once. A second test crashes the relay while it holds
 * live-delivered mail in memory (not yet written, no receipt sent): the sender re-sends it
 * and nothing is lost.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { initPki, issueClient } from '@parley/pki';
import { clientId, TestClient, until } from './helpers.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const fixture = fileURLToPath(new URL('./fixtures/relay-child.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'parley-durable-'));
const dataDir = join(dir, 'data');
const children = new Set<ChildProcess>();

afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** Messages the sender sends; kills while sending; restarts. */
const MESSAGES = 60;
const KILLS = 4;

async function startChild(
  port: number,
  data = dataDir,
): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, data, String(port)], {
    cwd: root,
    env: { ...process.env, TSX_TSCONFIG_PATH: join(root, 'tsconfig.test.json') },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  await until(() => out.includes('\n') || child.exitCode !== null, 'relay child start', 30_000);
  if (!out.includes('\n')) throw new Error(`relay child exited with ${child.exitCode}`);
  return { child, port: (JSON.parse(out.split('\n')[0] as string) as { port: number }).port };
}

function kill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

describe('durability under SIGKILL', () => {
  it('delivers every queued message exactly once after crashes at random moments', async () => {
    await initPki(dataDir);
    const ca = readFileSync(join(dataDir, 'pki', 'ca.crt'), 'utf8');
    const creds = async (name: string) => {
      const f = await issueClient(dataDir, name, join(dir, name));
      return { ca, cert: f.certPem, key: readFileSync(f.keyPath, 'utf8') };
    };
    const alice = await creds('alice');
    const bob = await creds('bob');

    const first = await startChild(0);
    let child = first.child;
    const port = first.port;
    const url = `wss://127.0.0.1:${port}/ws`;
    const connect = async (tls: typeof alice): Promise<TestClient> => {
      const c = new TestClient(url, tls);
      await until(() => c.opened || c.closed, 'open', 15_000);
      if (!c.opened) throw new Error('connect failed');
      c.send({ type: 'hello', protocolVersions: [1], timestamp: Date.now() });
      await c.next('welcome', 15_000);
      return c;
    };
    // Bob registers once, then stays offline.
    (await connect(bob)).close();

    const queued = new Set<number>();
    const sends = new Map<number, number>();
    let kills = 0;
    while (queued.size < MESSAGES || kills < KILLS) {
      const sender = await connect(alice);
      const killAfterMs = kills < KILLS ? randomInt(0, 120) : undefined;
      const killer =
        killAfterMs === undefined
          ? undefined
          : new Promise<void>((r) => setTimeout(r, killAfterMs)).then(() => kill(child));
      for (let i = 0; i < MESSAGES && !sender.closed; i++) {
        if (queued.has(i)) continue;
        sends.set(i, (sends.get(i) ?? 0) + 1);
        sender.send({
          type: 'send',
          clientMessageId: clientId(i),
          from: { name: 'alice', deviceId: 1 },
          to: { name: 'bob', deviceId: 1 },
          payload: new Uint8Array([i, 0xaa]),
        });
        await new Promise((r) => setTimeout(r, 2));
      }
      // Collect receipts until the relay dies or everything is acknowledged as queued.
      await until(
        () => {
          for (const f of sender.frames.splice(0)) {
            if (f.type === 'receipt' && f.status === 'queued')
              queued.add(f.clientMessageId[15] as number);
          }
          return sender.closed || queued.size === MESSAGES;
        },
        'receipts',
        30_000,
      );
      sender.close();
      if (killer) {
        await killer;
        kills++;
        ({ child } = await startChild(port));
      }
    }
    expect(kills).toBe(KILLS);
    const resent = [...sends.values()].filter((n) => n > 1).length;
    console.log(
      `durability: ${kills} kills, ${resent} of ${MESSAGES} messages re-sent after a crash`,
    );

    // One more crash with everything queued, then the recipient comes online.
    await kill(child);
    ({ child } = await startChild(port));
    const recipient = await connect(bob);
    await recipient.next('mailbox.empty', 15_000);
    const got = recipient.frames.filter((f) => f.type === 'deliver');
    const indices = got.map((f) => (f.type === 'deliver' ? (f.payload[0] as number) : -1));
    expect(indices.length).toBe(MESSAGES);
    expect(new Set(indices).size).toBe(MESSAGES);
    expect([...indices].sort((a, b) => a - b)).toEqual(
      Array.from({ length: MESSAGES }, (_, i) => i),
    );
    recipient.close();
    await kill(child);
  });

  it('mail held in memory for a live recipient is not lost when the relay dies before the ack', async () => {
    const data = join(dir, 'held');
    await initPki(data);
    const ca = readFileSync(join(data, 'pki', 'ca.crt'), 'utf8');
    const creds = async (name: string) => {
      const f = await issueClient(data, name, join(dir, `held-${name}`));
      return { ca, cert: f.certPem, key: readFileSync(f.keyPath, 'utf8') };
    };
    const [aliceTls, bobTls] = [await creds('alice'), await creds('bob')];
    const started = await startChild(0, data);
    let child = started.child;
    const port = started.port;
    const connect = async (tls: typeof aliceTls): Promise<TestClient> => {
      const c = new TestClient(`wss://127.0.0.1:${port}/ws`, tls);
      await until(() => c.opened || c.closed, 'open', 15_000);
      c.send({ type: 'hello', protocolVersions: [1], timestamp: Date.now() });
      await c.next('welcome', 15_000);
      await c.next('mailbox.empty', 15_000);
      return c;
    };
    const send = (c: TestClient): void =>
      c.send({
        type: 'send',
        clientMessageId: clientId(900),
        from: { name: 'alice', deviceId: 1 },
        to: { name: 'bob', deviceId: 1 },
        payload: new Uint8Array([9, 0, 0]),
      });
    let alice = await connect(aliceTls);
    let bob = await connect(bobTls);
    send(alice);
    // Bob gets it live and dies with the relay before acknowledging it: the relay held it
    // in memory (no "queued" yet) and never wrote it.
    await bob.next('deliver', 15_000);
    expect(alice.frames.some((f) => f.type === 'receipt')).toBe(false);
    await kill(child);
    ({ child } = await startChild(port, data));
    // Alice never got a receipt, so she sends it again (same client message id); Bob gets
    // it on his next connection and the receipt reaches Alice.
    alice = await connect(aliceTls);
    send(alice);
    bob = await connect(bobTls);
    const d = await bob.next('deliver', 15_000);
    expect(d.payload).toEqual(new Uint8Array([9, 0, 0]));
    bob.send({ type: 'ack', serverMessageId: d.serverMessageId });
    await until(
      () => alice.frames.some((f) => f.type === 'receipt' && f.status === 'delivered'),
      'delivered receipt',
      15_000,
    );
    alice.close();
    bob.close();
    await kill(child);
  });
});
