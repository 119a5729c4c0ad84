/**
 * M42, evidence from the wire: a real chat between two real clients over the real
 * relay (TLS 1.3, mutual TLS, SQLCipher profiles) captured with `tshark` on loopback.
 * From the capture: every connection negotiates TLS 1.3 and, after its ServerHello,
 * carries nothing but TLS 1.3 application-data records; once the WebSocket is up, every
 * record the relay sends has one size and every record a client sends has one size (a
 * whole block: short, long and multi-block messages look the same); and none of the
 * texts sent nor the users' names appear anywhere in the captured bytes.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ClientEvent } from '@parley/client';
import { openNodeClient, type NodeClient } from '@parley/client-node';
import { startRelay } from '@parley/server';
import { BLOCK_BYTES, blockMessageBytes } from '@parley/wire';
import { PASS, crypto, initMtlsProfile, until } from './e2e-helpers.js';
import { dissectTls, startCapture, type TlsRecord } from './tshark.js';

const root = mkdtempSync(join(tmpdir(), 'parley-capture-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/**
 * Names long enough that ciphertext cannot contain them by chance (a 3-byte name like
 * "bob" turns up in about one 150 KB capture in a hundred; these never do).
 */
const ALICE = 'alice-evidence' as const;
const BOB = 'bob-evidence' as const;

/** TLS 1.3 (RFC 8446 §4.2.1) and the legacy record version every TLS 1.3 record carries (§5.1). */
const TLS13 = 0x0304;
const LEGACY_RECORD_VERSION = 0x0303;
const CONTENT_CHANGE_CIPHER_SPEC = 20;
const CONTENT_HANDSHAKE = 22;
const CONTENT_APPLICATION_DATA = 23;
/** A TLS 1.3 record adds its inner content type (1 byte) and the AES-GCM / ChaCha20 tag (16). */
const TLS13_RECORD_OVERHEAD = 1 + 16;
/**
 * Encrypted records before the first block: the relay's handshake flight (up to five
 * records), two session tickets and the 101 answer; the client's certificate,
 * certificate verify, finished and the upgrade request. Bounded with room to spare.
 */
const MAX_SETUP_RECORDS = 10;

/**
 * The first record of a side is its hello (22); then at most one middlebox-compatibility
 * ChangeCipherSpec (20, RFC 8446 §D.4) before anything encrypted; everything else is
 * an encrypted TLS 1.3 record (23) with the legacy version 0x0303 (only a ClientHello
 * may say 0x0301). No cleartext alert, no cleartext handshake after the hello.
 */
function expectOnlyTls13AfterHello(rs: readonly TlsRecord[], side: string): void {
  expect(rs[0]?.contentType, `${side}: hello first`).toBe(CONTENT_HANDSHAKE);
  const rest = rs.slice(1);
  const ccs = rest.filter((r) => r.contentType === CONTENT_CHANGE_CIPHER_SPEC);
  expect(ccs.length, `${side}: change cipher spec`).toBeLessThanOrEqual(1);
  if (ccs.length === 1)
    expect(rest.indexOf(ccs[0] as TlsRecord), `${side}: CCS before encryption`).toBe(0);
  const encrypted = rest.filter((r) => r.contentType !== CONTENT_CHANGE_CIPHER_SPEC);
  expect(encrypted.length).toBeGreaterThan(0);
  for (const r of encrypted)
    expect(r.contentType, `${side}: record type`).toBe(CONTENT_APPLICATION_DATA);
  for (const r of rest) expect(r.version, `${side}: record version`).toBe(LEGACY_RECORD_VERSION);
}

/**
 * Application-data records of one side: the rest of the TLS handshake, session tickets
 * and the WebSocket upgrade come first (`setup`), then blocks, then the close (a
 * WebSocket close frame and TLS close_notify). From the first block to the last, every
 * record is exactly `blockRecord` bytes; setup and close are few and smaller.
 */
function expectOneRecordSize(
  rs: readonly TlsRecord[],
  blockRecord: number,
  atLeast: number,
  side: string,
): void {
  const first = rs.findIndex((r) => r.length === blockRecord);
  const last = rs.map((r) => r.length).lastIndexOf(blockRecord);
  expect(first, `${side}: no block-sized record`).toBeGreaterThanOrEqual(0);
  const sizes = rs.slice(first, last + 1).map((r) => r.length);
  expect(new Set(sizes), `${side}: record sizes while connected`).toEqual(new Set([blockRecord]));
  expect(sizes.length, `${side}: blocks`).toBeGreaterThanOrEqual(atLeast);
  const setup = rs.slice(0, first);
  const close = rs.slice(last + 1);
  expect(setup.length, `${side}: setup records`).toBeLessThanOrEqual(MAX_SETUP_RECORDS);
  expect(close.length, `${side}: close records`).toBeLessThanOrEqual(2);
  for (const r of [...setup, ...close]) expect(r.length).toBeLessThan(blockRecord);
}

/** Consecutive `PROBE_BYTES`-byte pieces of `b` (none if it is shorter). */
const PROBE_BYTES = 24;
function pieces(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i + PROBE_BYTES <= b.length; i += PROBE_BYTES)
    out.push(b.subarray(i, i + PROBE_BYTES));
  return out;
}

async function connect(
  profile: string,
  server: string,
): Promise<{ c: NodeClient; events: ClientEvent[] }> {
  const c = await openNodeClient({ profile, passphrase: PASS, crypto, server });
  const events: ClientEvent[] = [];
  c.client.on((e) => events.push(e));
  await c.connect();
  await until(() => c.client.mailboxDrained, 'mailbox drained');
  return { c, events };
}

describe('a captured chat (M42)', () => {
  it('is TLS 1.3 only, one record size per direction, and no plaintext or name on the wire', async () => {
    const dataDir = join(root, 'relay');
    const relay = await startRelay({ dataDir, port: 0, auth: 'mtls', logLevel: 'silent' });
    const profiles: Record<string, string> = {
      [ALICE]: join(root, 'alice'),
      [BOB]: join(root, 'bob'),
    };
    for (const name of [ALICE, BOB]) {
      await initMtlsProfile({
        dataDir,
        credsDir: join(root, `creds-${name}`),
        name,
        profile: profiles[name] as string,
        server: relay.url,
      });
    }
    const pcap = join(root, 'chat.pcap');
    const capture = await startCapture(relay.port, pcap);
    const plaintexts = [
      'the short one: meet at the north gate',
      // Random text does not compress, so this one takes several blocks.
      `a long one, several blocks: ${Buffer.from(crypto.randomBytes(7500)).toString('base64')}`,
      'grüße aus köln, 東京からこんにちは',
    ];
    const replies = ['bob answers: agreed, at noon', 'and a second reply from bob'];
    try {
      const bob = await connect(profiles[BOB] as string, relay.url);
      const alice = await connect(profiles[ALICE] as string, relay.url);
      for (const t of plaintexts) {
        const m = await alice.c.client.send(BOB, t);
        await alice.c.client.waitForStatus(BOB, m.id, 'delivered', 20_000);
      }
      for (const t of replies) {
        const m = await bob.c.client.send(ALICE, t);
        await bob.c.client.waitForStatus(ALICE, m.id, 'delivered', 20_000);
      }
      const got = (await bob.c.client.messages(ALICE)).map((m) => m.text);
      expect(got).toEqual([...plaintexts, ...replies]);
      await alice.c.close();
      await bob.c.close();
    } finally {
      await capture.stop();
      await relay.close();
    }

    const { records, selectedVersions, offeredVersions } = await dissectTls(pcap, relay.port);
    const streams = [...new Set(records.map((r) => r.stream))];
    expect(streams.length).toBeGreaterThanOrEqual(2); // alice's and bob's connections
    for (const s of streams) {
      // TLS 1.3 offered alone and selected.
      expect(offeredVersions.get(s), `stream ${s} offer`).toEqual([TLS13]);
      expect(selectedVersions.get(s), `stream ${s} choice`).toEqual([TLS13]);
      for (const fromServer of [true, false]) {
        const side = `stream ${s} ${fromServer ? 'relay' : 'client'}`;
        const rs = records.filter((r) => r.stream === s && r.fromServer === fromServer);
        expectOnlyTls13AfterHello(rs, side);
        expectOneRecordSize(
          rs.filter((r) => r.contentType === CONTENT_APPLICATION_DATA),
          blockMessageBytes(BLOCK_BYTES, !fromServer) + TLS13_RECORD_OVERHEAD,
          plaintexts.length,
          side,
        );
      }
    }

    // The raw capture: no text and no name, in any packet, anywhere. Long texts are also
    // looked for piece by piece, so a leak of one block's worth would not slip through.
    const bytes = readFileSync(pcap);
    expect(bytes.length).toBeGreaterThan(plaintexts.length * BLOCK_BYTES);
    for (const t of [...plaintexts, ...replies, ALICE, BOB]) {
      const whole = Buffer.from(t, 'utf8');
      for (const probe of [whole, ...pieces(whole)])
        expect(bytes.includes(probe), `"${probe.toString().slice(0, 40)}" in the capture`).toBe(
          false,
        );
    }
  }, 120_000);
});
