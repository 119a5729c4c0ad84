import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createNodeCrypto } from '@parley/crypto/node';
import { AuditLog, loadOrCreateAuditKey, verifyAuditLog } from '../src/audit.js';

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
