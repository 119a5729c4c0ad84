import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createNodeCrypto } from '@parley/crypto/node';
import { toHex, utf8Encode } from '@parley/crypto';
import {
  AuditLog,
  describeAuditFailure,
  loadAuditKey,
  loadOrCreateAuditKey,
  parseAuditCheckpoint,
  readAuditCheckpoints,
  verifyAuditLog,
  type AuditCheckpoint,
} from '../src/audit.js';

const crypto = createNodeCrypto();
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'parley-audit-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function writeSome(n: number): { file: string; key: ReturnType<typeof loadOrCreateAuditKey> } {
  const key = loadOrCreateAuditKey(join(dir, 'audit.key'), crypto);
  const file = join(dir, 'audit.log');
  const log = new AuditLog(file, key, crypto, () => 1234);
  for (let i = 0; i < n; i++)
    log.write({ type: 'auth.failed', remote: `127.0.0.1:${i}`, code: 'bad-signature' });
  log.close();
  return { file, key };
}

describe('audit log', () => {
  it('round-trips records and keeps the key file private', () => {
    const { file, key } = writeSome(3);
    expect(statSync(join(dir, 'audit.key')).mode & 0o777).toBe(0o600);
    const v = verifyAuditLog(readFileSync(file, 'utf8'), key, crypto);
    expect(v.ok).toBe(true);
    expect(v.records.map((r) => [r.seq, r.remote, r.time])).toEqual([
      [1, '127.0.0.1:0', 1234],
      [2, '127.0.0.1:1', 1234],
      [3, '127.0.0.1:2', 1234],
    ]);
  });

  it('is encrypted at rest: no event field appears in the file', () => {
    const { file } = writeSome(2);
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain('auth.failed');
    expect(text).not.toContain('127.0.0.1');
    expect(text).not.toContain('bad-signature');
  });

  it('continues the chain across restarts', () => {
    writeSome(2);
    const { file, key } = writeSome(2);
    const v = verifyAuditLog(readFileSync(file, 'utf8'), key, crypto);
    expect(v.ok).toBe(true);
    expect(v.records.map((r) => r.seq)).toEqual([1, 2, 3, 4]);
  });

  it('detects a modified, deleted, reordered or re-encrypted record', () => {
    const { file, key } = writeSome(4);
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    const check = (ls: string[]) => verifyAuditLog(`${ls.join('\n')}\n`, key, crypto);

    const flipped = [...lines];
    const rec = JSON.parse(flipped[1] as string) as { data: string };
    const data = Buffer.from(rec.data, 'base64');
    data[0] = (data[0] as number) ^ 1;
    flipped[1] = JSON.stringify({ ...rec, data: data.toString('base64') });
    expect(check(flipped)).toMatchObject({ ok: false, line: 2 });

    expect(check([lines[0], lines[2], lines[3]] as string[])).toMatchObject({
      ok: false,
      line: 2,
      reason: 'sequence',
    });
    expect(check([lines[0], lines[2], lines[1], lines[3]] as string[])).toMatchObject({
      ok: false,
      line: 2,
    });

    // Renumbering after a deletion still breaks the hash chain.
    const renumbered = [lines[0], lines[2]].map((l, i) =>
      JSON.stringify({ ...JSON.parse(l as string), seq: i + 1 }),
    );
    expect(check(renumbered)).toMatchObject({ ok: false, line: 2, reason: 'chain' });

    const otherKey = crypto.randomBytes(32);
    expect(verifyAuditLog(`${lines.join('\n')}\n`, otherKey as typeof key, crypto)).toMatchObject({
      ok: false,
      line: 1,
      reason: 'decrypt',
    });
    expect(check(lines).ok).toBe(true);
  });

  it('refuses to append to a log whose last line is garbage', () => {
    const { file } = writeSome(1);
    writeFileSync(file, 'not json\n', { flag: 'a' });
    const key = loadOrCreateAuditKey(join(dir, 'audit.key'), crypto);
    expect(() => new AuditLog(file, key, crypto)).toThrow(/audit log/);
  });
});

describe('audit checkpoints (tail anchoring)', () => {
  const EVERY = 5;

  /** Writes `n` records with a checkpoint every EVERY records; returns what was emitted. */
  function writeAnchored(n: number): {
    file: string;
    key: ReturnType<typeof loadOrCreateAuditKey>;
    checkpoints: AuditCheckpoint[];
  } {
    const key = loadOrCreateAuditKey(join(dir, 'audit.key'), crypto);
    const file = join(dir, 'audit.log');
    const checkpoints: AuditCheckpoint[] = [];
    const log = new AuditLog(file, key, crypto, () => 1234, {
      onCheckpoint: (c) => checkpoints.push(c),
      checkpointEveryRecords: EVERY,
    });
    for (let i = 0; i < n; i++) log.write({ type: 'conn.idle', remote: `10.0.0.1:${i}` });
    log.close();
    return { file, key, checkpoints };
  }

  const linesOf = (file: string): string[] => readFileSync(file, 'utf8').trimEnd().split('\n');
  const text = (lines: readonly string[]): string => `${lines.join('\n')}\n`;

  it('emits {seq, hash of that line} every N records and at close', () => {
    const { file, checkpoints } = writeAnchored(12);
    const lines = linesOf(file);
    expect(checkpoints.map((c) => c.seq)).toEqual([5, 10, 12]);
    for (const c of checkpoints) {
      expect(c.hash).toBe(toHex(crypto.sha256(utf8Encode(lines[c.seq - 1] as string))));
    }
    // The next record's `prev` is the checkpoint hash: both name the same chain point.
    expect((JSON.parse(lines[5] as string) as { prev: string }).prev).toBe(checkpoints[0]?.hash);
  });

  it('passes an untouched log against every checkpoint and reports its head', () => {
    const { file, key, checkpoints } = writeAnchored(12);
    const v = verifyAuditLog(readFileSync(file, 'utf8'), key, crypto, { checkpoints });
    expect(v).toMatchObject({ ok: true, head: checkpoints[2] });
    expect(v.records).toHaveLength(12);
  });

  it('detects a tail cut after a checkpoint, which the chain alone misses', () => {
    const { file, key, checkpoints } = writeAnchored(12);
    const cut = text(linesOf(file).slice(0, 8));
    // Without an anchor the shortened chain is still valid: the gap this closes.
    expect(verifyAuditLog(cut, key, crypto).ok).toBe(true);
    const v = verifyAuditLog(cut, key, crypto, { checkpoints });
    expect(v).toMatchObject({
      ok: false,
      reason: 'truncated',
      line: 9,
      checkpoint: checkpoints[1],
    });
    expect(v.records).toHaveLength(8);
    if (v.ok) throw new Error('unreachable');
    expect(describeAuditFailure(v)).toContain('truncated');
    expect(describeAuditFailure(v)).toContain(`checkpoint ${checkpoints[1]?.seq}`);
    // Cutting only what came after the last checkpoint is not detected (the stated limit).
    const last = checkpoints[1] as AuditCheckpoint;
    expect(
      verifyAuditLog(text(linesOf(file).slice(0, 10)), key, crypto, { checkpoints: [last] }).ok,
    ).toBe(true);
  });

  it('detects a tail cut and continued past the checkpoint', () => {
    const { file, key, checkpoints } = writeAnchored(10);
    writeFileSync(file, text(linesOf(file).slice(0, 7)));
    // The relay restarts on the shortened file and writes on: seq 8.. again.
    const log = new AuditLog(file, key, crypto, () => 99);
    for (let i = 0; i < 5; i++) log.write({ type: 'relay.start' });
    log.close();
    const plain = verifyAuditLog(readFileSync(file, 'utf8'), key, crypto);
    expect(plain.ok).toBe(true);
    expect(plain.records).toHaveLength(12);
    expect(verifyAuditLog(readFileSync(file, 'utf8'), key, crypto, { checkpoints })).toMatchObject({
      ok: false,
      reason: 'checkpoint',
      line: 10,
      checkpoint: checkpoints[1],
    });
  });

  it('detects a whole log rewritten with the key (the checkpoint pins the old line)', () => {
    const { file, key, checkpoints } = writeAnchored(5);
    rmSync(file);
    const forged = new AuditLog(file, key, crypto, () => 1234);
    for (let i = 0; i < 5; i++) forged.write({ type: 'conn.idle', remote: `10.9.9.9:${i}` });
    forged.close();
    expect(verifyAuditLog(readFileSync(file, 'utf8'), key, crypto).ok).toBe(true);
    expect(verifyAuditLog(readFileSync(file, 'utf8'), key, crypto, { checkpoints })).toMatchObject({
      ok: false,
      reason: 'checkpoint',
      line: 5,
    });
  });

  it('still reports a modified record first, with checkpoints given', () => {
    const { file, key, checkpoints } = writeAnchored(10);
    const lines = linesOf(file);
    const rec = JSON.parse(lines[2] as string) as { data: string };
    const data = Buffer.from(rec.data, 'base64');
    data[3] = (data[3] as number) ^ 0x40;
    lines[2] = JSON.stringify({ ...rec, data: data.toString('base64') });
    expect(verifyAuditLog(text(lines), key, crypto, { checkpoints })).toMatchObject({
      ok: false,
      line: 3,
    });
  });

  it('re-anchors an existing tail on open, and emits nothing when nothing is new', () => {
    writeAnchored(3);
    const key = loadOrCreateAuditKey(join(dir, 'audit.key'), crypto);
    const seen: AuditCheckpoint[] = [];
    const log = new AuditLog(join(dir, 'audit.log'), key, crypto, Date.now, {
      onCheckpoint: (c) => seen.push(c),
    });
    expect(log.checkpoint()?.seq).toBe(3);
    expect(log.checkpoint()).toBeUndefined();
    log.close();
    expect(seen.map((c) => c.seq)).toEqual([3]);
  });

  it('reads checkpoints out of a pino log and parses SEQ:HASH', () => {
    const hash = 'ab'.repeat(32);
    const logText = [
      JSON.stringify({ level: 30, msg: 'relay listening', port: 1 }),
      'not json auditCheckpoint',
      JSON.stringify({ level: 30, auditCheckpoint: { seq: 7, hash }, msg: 'audit checkpoint' }),
      JSON.stringify({ level: 30, auditCheckpoint: { seq: 0, hash }, msg: 'audit checkpoint' }),
      JSON.stringify({ level: 30, auditCheckpoint: { seq: 8, hash: 'zz' } }),
    ].join('\n');
    expect(readAuditCheckpoints(logText)).toEqual([{ seq: 7, hash }]);
    expect(parseAuditCheckpoint(`7:${hash.toUpperCase()}`)).toEqual({ seq: 7, hash });
    for (const bad of ['7', `0:${hash}`, `x:${hash}`, `7:${hash}0`]) {
      expect(() => parseAuditCheckpoint(bad)).toThrow(/SEQ:HASH/);
    }
  });

  it('loads an existing key for verifying and never creates one', () => {
    expect(() => loadAuditKey(join(dir, 'missing.key'))).toThrow(/ENOENT/);
    expect(existsSync(join(dir, 'missing.key'))).toBe(false);
    const { key } = writeAnchored(1);
    expect(loadAuditKey(join(dir, 'audit.key'))).toEqual(key);
  });
});
