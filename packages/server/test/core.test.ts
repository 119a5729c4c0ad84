/**
 * The relay core without TLS, through a fake connection: arbitrary input never makes
 * anything escape (no exception, no unhandled rejection), and every refused input
 * closes the connection with an audit record. Also ordering of live mail behind a
 * backlog.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Writable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { frameToBlocks, FrameReader, FrameWriter, type ServerFrame } from '@parley/wire';
import { AuditLog, loadOrCreateAuditKey, verifyAuditLog } from '../src/audit.js';
import { resolveConfig } from '../src/config.js';
import type { Connection } from '../src/connection.js';
import { RelayMetrics } from '../src/observability.js';
import { RelayCore, type RelayCoreDeps } from '../src/relay.js';
import { MemoryStore } from '../src/storage/memory.js';
import { SqliteStore } from '../src/storage/sqlite.js';
import { clientId, crypto, until } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-core-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Inputs per property run; the wire package fuzzes the decoder itself far harder. */
const RUNS = 300;

function makeCore(
  name: string,
  now: () => number = Date.now,
  logger: RelayCoreDeps['logger'] = pino({ level: 'silent' }),
): { core: RelayCore; audit: () => number; stop: () => void; records: () => string[] } {
  const key = loadOrCreateAuditKey(join(dir, `${name}.key`), crypto);
  const file = join(dir, `${name}.log`);
  const audit = new AuditLog(file, key, crypto);
  const core = new RelayCore({
    config: resolveConfig(
      {},
      {
        config: {
          rateLimit: {
            maxBlocksPerConnection: 1_000_000,
            maxBlocksPerIdentity: 1_000_000,
            maxMessagesPerConnection: 1_000_000,
          },
        },
      },
    ),
    store: new MemoryStore(),
    audit,
    metrics: new RelayMetrics(false),
    logger,
    crypto,
    now,
  });
  return {
    core,
    audit: () => {
      const v = verifyAuditLog(readFileSync(file, 'utf8'), key, crypto);
      expect(v.ok).toBe(true);
      return v.records.length;
    },
    stop: () => {
      core.shutdown();
      audit.close();
    },
    records: () => {
      const v = verifyAuditLog(readFileSync(file, 'utf8'), key, crypto);
      return v.records.map((r) => `${r.type}:${r.code ?? ''}`);
    },
  };
}

class FakeConnection implements Connection {
  readonly sent: Uint8Array[] = [];
  /** Simulates a slow reader: the relay sees a full send buffer. */
  full = false;
  closedWith: number | undefined;
  readonly reader = new FrameReader({ direction: 'toClient', now: Date.now });
  readonly frames: ServerFrame[] = [];
  constructor(readonly peer: Connection['peer']) {}
  get bufferedAmount(): number {
    return this.full ? 2 * 1024 * 1024 : 0;
  }
  send(block: Uint8Array): void {
    expect(block.length).toBe(4096);
    this.sent.push(block);
    const f = this.reader.push(block);
    if (f) this.frames.push(f);
  }
  close(code: number): void {
    this.closedWith = code;
  }
}

const cert = (name: string) => ({
  name,
  identityKey: crypto.randomBytes(32),
  der: new Uint8Array([0x30, 0]),
  serial: '01',
});

describe('relay core under arbitrary input', () => {
  it('closes and audits on every malformed block; nothing escapes', async () => {
    const { core, audit, stop } = makeCore('fuzz');
    const writer = new FrameWriter();
    const hello = writer.write({
      type: 'hello',
      protocolVersions: [1],
      timestamp: Date.now(),
    })[0] as Uint8Array;
    const anyBlock = fc.oneof(
      fc.uint8Array({ minLength: 4096, maxLength: 4096 }),
      fc.uint8Array({ minLength: 0, maxLength: 5000 }),
      // A valid block header in front of arbitrary frame bytes.
      fc
        .uint8Array({ minLength: 1, maxLength: 200 })
        .map((b) => frameToBlocks(b, { streamId: 1 })[0] as Uint8Array),
      // A valid block with one byte flipped.
      fc.tuple(fc.nat(4095), fc.integer({ min: 1, max: 255 })).map(([i, x]) => {
        const b = hello.slice();
        b[i] = (b[i] as number) ^ x;
        return b;
      }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(anyBlock, { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        async (blocks, authFirst) => {
          const conn = new FakeConnection({ remote: '127.0.0.1:1', certificate: cert('fuzzer') });
          const session = core.accept(conn);
          if (authFirst) session.onMessage(hello, true);
          const before = audit();
          for (const b of blocks) session.onMessage(b, true);
          // Let queued frame handlers run.
          await new Promise((r) => setImmediate(r));
          await new Promise((r) => setImmediate(r));
          if (conn.closedWith !== undefined) expect(audit()).toBeGreaterThan(before);
          session.onClose();
        },
      ),
      { numRuns: RUNS },
    );
    stop();
  });

  it('delivers live mail after the backlog, in server order, with no gaps or repeats', async () => {
    const { core, stop } = makeCore('order');
    const w = new FrameWriter();
    const send = (s: ReturnType<RelayCore['accept']>, f: Parameters<FrameWriter['write']>[0]) => {
      for (const b of w.write(f)) s.onMessage(b, true);
    };
    const aliceConn = new FakeConnection({ remote: 'a', certificate: cert('alice') });
    const alice = core.accept(aliceConn);
    send(alice, { type: 'hello', protocolVersions: [1], timestamp: Date.now() });
    const mailToBob = (i: number): void =>
      send(alice, {
        type: 'send',
        clientMessageId: clientId(i),
        from: { name: 'alice', deviceId: 1 },
        to: { name: 'bob', deviceId: 1 },
        payload: new Uint8Array([i & 255, i >> 8]),
      });
    const bobConn0 = new FakeConnection({ remote: 'b', certificate: cert('bob') });
    const bob0 = core.accept(bobConn0);
    send(bob0, { type: 'hello', protocolVersions: [1], timestamp: Date.now() });
    await until(() => bobConn0.frames.some((f) => f.type === 'welcome'), 'welcome');
    bob0.close(1000);
    const total = 300;
    for (let i = 0; i < 200; i++) mailToBob(i);
    await until(
      () => aliceConn.frames.filter((f) => f.type === 'receipt').length === 200,
      'queued',
    );
    const bobConn = new FakeConnection({ remote: 'b', certificate: cert('bob') });
    const bob = core.accept(bobConn);
    send(bob, { type: 'hello', protocolVersions: [1], timestamp: Date.now() });
    // More mail while the backlog drains.
    for (let i = 200; i < total; i++) mailToBob(i);
    await until(
      () => bobConn.frames.filter((f) => f.type === 'deliver').length >= total,
      'deliveries',
    );
    const got = bobConn.frames.flatMap((f) =>
      f.type === 'deliver' ? [(f.payload[0] as number) + 256 * (f.payload[1] as number)] : [],
    );
    expect(got).toEqual(Array.from({ length: total }, (_, i) => i));
    expect(bobConn.frames.some((f) => f.type === 'mailbox.empty')).toBe(true);
    stop();
  });

  it('ends a connection when its certificate expires', async () => {
    let t = Date.now();
    const { core, stop, records } = makeCore('expiry', () => t);
    const conn = new FakeConnection({
      remote: 'x',
      certificate: { ...cert('shortlived'), notAfter: t + 60_000 },
    });
    const s = core.accept(conn);
    for (const b of new FrameWriter().write({
      type: 'hello',
      protocolVersions: [1],
      timestamp: t,
    })) {
      s.onMessage(b, true);
    }
    await until(() => conn.frames.some((f) => f.type === 'welcome'), 'welcome');
    s.tick(t + 30_000);
    expect(conn.closedWith).toBeUndefined();
    t += 60_001;
    s.tick(t);
    expect(conn.closedWith).toBe(1001);
    expect(records()).toContain('tls.rejected:expired-while-connected');
    stop();
  });

  it('logs security events at trace level without payloads or keys', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const { core, stop } = makeCore('logs', Date.now, pino({ level: 'trace' }, sink));
    const w = new FrameWriter();
    const aliceKey = crypto.randomBytes(32);
    const conn = new FakeConnection({
      remote: 'r',
      certificate: { ...cert('logalice'), identityKey: aliceKey },
    });
    const s = core.accept(conn);
    for (const b of w.write({ type: 'hello', protocolVersions: [1], timestamp: Date.now() })) {
      s.onMessage(b, true);
    }
    await until(() => conn.frames.some((f) => f.type === 'welcome'), 'welcome');
    const secret = new TextEncoder().encode('attack at dawn, bring the cheese');
    for (const b of w.write({
      type: 'send',
      clientMessageId: clientId(1),
      from: { name: 'logalice', deviceId: 1 },
      to: { name: 'logalice', deviceId: 1 },
      payload: secret,
    })) {
      s.onMessage(b, true);
    }
    // A spoofed frame and a garbage block produce log lines too.
    for (const b of w.write({
      type: 'send',
      clientMessageId: clientId(2),
      from: { name: 'someone', deviceId: 1 },
      to: { name: 'logalice', deviceId: 1 },
      payload: secret,
    })) {
      s.onMessage(b, true);
    }
    await until(() => conn.frames.some((f) => f.type === 'deliver'), 'deliver');
    s.onMessage(new Uint8Array(4096).fill(0xee), true);
    const text = lines.join('');
    expect(text).toContain('sender.spoofed');
    expect(text).toContain('frame.malformed');
    for (const needle of [
      'attack at dawn',
      Buffer.from(secret).toString('base64'),
      Buffer.from(secret).toString('hex'),
      Buffer.from(aliceKey).toString('base64'),
      Buffer.from(aliceKey).toString('hex'),
    ]) {
      expect(text).not.toContain(needle);
    }
    stop();
  });

  it('applies an ack that arrived just before the connection closed', async () => {
    const key = loadOrCreateAuditKey(join(dir, 'ackclose.key'), crypto);
    const auditLog = new AuditLog(join(dir, 'ackclose.log'), key, crypto);
    const store = await SqliteStore.open(join(dir, 'ackclose.db'));
    const core = new RelayCore({
      config: resolveConfig({}, {}),
      store,
      audit: auditLog,
      metrics: new RelayMetrics(false),
      logger: pino({ level: 'silent' }),
      crypto,
      now: Date.now,
    });
    const w = new FrameWriter();
    const send = (s: ReturnType<RelayCore['accept']>, f: Parameters<FrameWriter['write']>[0]) => {
      for (const b of w.write(f)) s.onMessage(b, true);
    };
    const connect = async (conn: FakeConnection) => {
      const s = core.accept(conn);
      send(s, { type: 'hello', protocolVersions: [1], timestamp: Date.now() });
      await until(() => conn.frames.some((f) => f.type === 'mailbox.empty'), 'ready');
      return s;
    };
    const aliceConn = new FakeConnection({ remote: 'a', certificate: cert('alice') });
    const alice = await connect(aliceConn);
    const bobConn = new FakeConnection({ remote: 'b', certificate: cert('bob') });
    const bob = await connect(bobConn);
    send(alice, {
      type: 'send',
      clientMessageId: clientId(1),
      from: { name: 'alice', deviceId: 1 },
      to: { name: 'bob', deviceId: 1 },
      payload: new Uint8Array([1]),
    });
    await until(() => bobConn.frames.some((f) => f.type === 'deliver'), 'deliver');
    const id = bobConn.frames.flatMap((f) => (f.type === 'deliver' ? [f.serverMessageId] : []))[0];
    // The ack and the close reach the relay in the same turn: the ack is handled after
    // the close, and the mail's delete may still be waiting for its group commit when the
    // device reconnects.
    send(bob, { type: 'ack', serverMessageId: id as number });
    bob.close(1000);
    const again = new FakeConnection({ remote: 'b', certificate: cert('bob') });
    await connect(again);
    await until(
      () => aliceConn.frames.some((f) => f.type === 'receipt' && f.status === 'delivered'),
      'delivered receipt',
    );
    const later = new FakeConnection({ remote: 'b', certificate: cert('bob') });
    await connect(later);
    for (const c of [again, later]) expect(c.frames.some((f) => f.type === 'deliver')).toBe(false);
    core.shutdown();
    await store.close();
    auditLog.close();
  });

  it('live hand-over never reorders, skips or repeats mail, whatever the interleaving', async () => {
    const action = fc.oneof(
      fc.record({ t: fc.constant('send' as const), n: fc.integer({ min: 1, max: 4 }) }),
      fc.record({ t: fc.constant('full' as const) }),
      fc.record({ t: fc.constant('free' as const) }),
      fc.record({ t: fc.constant('reconnect' as const) }),
      fc.record({ t: fc.constant('ack' as const) }),
      fc.record({ t: fc.constant('tick' as const) }),
    );
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 1, maxLength: 25 }), async (actions) => {
        run++;
        const key = loadOrCreateAuditKey(join(dir, `live${run}.key`), crypto);
        const auditLog = new AuditLog(join(dir, `live${run}.log`), key, crypto);
        const store = await SqliteStore.open(join(dir, `live${run}.db`));
        const core = new RelayCore({
          config: resolveConfig(
            {},
            { config: { rateLimit: { maxMessagesPerConnection: 1_000_000 } } },
          ),
          store,
          audit: auditLog,
          metrics: new RelayMetrics(false),
          logger: pino({ level: 'silent' }),
          crypto,
          now: Date.now,
        });
        const w = new FrameWriter();
        const hello = (s: ReturnType<RelayCore['accept']>) => {
          for (const b of w.write({
            type: 'hello',
            protocolVersions: [1],
            timestamp: Date.now(),
          })) {
            s.onMessage(b, true);
          }
        };
        const alice = new FakeConnection({ remote: 'a', certificate: cert('alice') });
        const aliceS = core.accept(alice);
        hello(aliceS);
        let bob = new FakeConnection({ remote: 'b', certificate: cert('bob') });
        let bobS = core.accept(bob);
        hello(bobS);
        await until(() => bob.frames.some((f) => f.type === 'mailbox.empty'), 'bob ready');
        const connections = [bob];
        const acked = new Set<number>();
        let ackedBeforeLast = new Set<number>();
        let sent = 0;
        for (const a of actions) {
          if (a.t === 'send') {
            for (let i = 0; i < a.n; i++) {
              for (const b of w.write({
                type: 'send',
                clientMessageId: clientId(sent++),
                from: { name: 'alice', deviceId: 1 },
                to: { name: 'bob', deviceId: 1 },
                payload: new Uint8Array([sent]),
              })) {
                aliceS.onMessage(b, true);
              }
            }
          } else if (a.t === 'full') bob.full = true;
          else if (a.t === 'free') bob.full = false;
          else if (a.t === 'reconnect') {
            bobS.close(1000);
            bob = new FakeConnection({ remote: 'b', certificate: cert('bob') });
            connections.push(bob);
            ackedBeforeLast = new Set(acked);
            bobS = core.accept(bob);
            hello(bobS);
          } else if (a.t === 'ack') {
            for (const f of bob.frames) {
              if (f.type === 'deliver' && !acked.has(f.serverMessageId)) {
                acked.add(f.serverMessageId);
                for (const b of w.write({ type: 'ack', serverMessageId: f.serverMessageId })) {
                  bobS.onMessage(b, true);
                }
              }
            }
          } else {
            await new Promise((r) => setImmediate(r));
          }
        }
        bob.full = false;
        const total = sent;
        // Every message is accounted for: "queued" (stored), or only "delivered" when the
        // recipient acked it while the relay still held it in memory.
        const answered = (): Set<number> =>
          new Set(alice.frames.flatMap((f) => (f.type === 'receipt' ? [f.serverMessageId] : [])));
        await until(() => answered().size === total, 'every message answered');
        // Each connection saw strictly increasing ids (no reorder, no repeat).
        for (const c of connections) {
          const ids = c.frames.flatMap((f) => (f.type === 'deliver' ? [f.serverMessageId] : []));
          expect(ids).toEqual([...new Set(ids)].sort((x, y) => x - y));
        }
        // The live connection ends up with everything not acked before it connected:
        // nothing skipped, whether it came live, from the backlog or after a full buffer.
        const queuedIds = [...answered()];
        const current = bob;
        const want = queuedIds.filter((id) => !ackedBeforeLast.has(id));
        await until(
          () =>
            want.every((id) =>
              current.frames.some((f) => f.type === 'deliver' && f.serverMessageId === id),
            ),
          'current connection complete',
          5_000,
        );
        // A fresh connection gets exactly what was not acked: nothing is lost.
        bobS.close(1000);
        const last = new FakeConnection({ remote: 'b', certificate: cert('bob') });
        hello(core.accept(last));
        await until(() => last.frames.some((f) => f.type === 'mailbox.empty'), 'drain');
        const rest = last.frames.flatMap((f) => (f.type === 'deliver' ? [f.serverMessageId] : []));
        expect(new Set([...rest, ...acked])).toEqual(new Set(queuedIds));
        expect(rest.some((id) => acked.has(id))).toBe(false);
        core.shutdown();
        await store.close();
        auditLog.close();
      }),
      { numRuns: 25 },
    );
  });
});
