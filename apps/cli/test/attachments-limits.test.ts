/**
 * Attachment limits through `parley send --file` against a real relay (mtls, real TLS):
 * the client's own size limit, the relay's largest blob and its per-identity quota are
 * each refused with an error that says which, and the relay audits its refusals.
 */
import {
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  ftruncateSync,
  writeFileSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeCrypto } from '@parley/crypto/node';
import { issueClient } from '@parley/pki';
import { loadOrCreateAuditKey, startRelay, verifyAuditLog } from '@parley/server';
import type { RunningRelay } from '@parley/server';
import { parleyMain } from './cli-main.js';

const MiB = 1024 * 1024;

describe('attachment limits', () => {
  const root = mkdtempSync(join(tmpdir(), 'parley-attach-limits-'));
  const data = join(root, 'relay');
  const pa = join(root, 'alice');
  let relay: RunningRelay;

  beforeAll(async () => {
    relay = await startRelay({
      dataDir: data,
      port: 0,
      auth: 'mtls',
      logLevel: 'silent',
      // A 1 MiB file is stored as 1 MiB + tags: one fits under the blob limit, two do
      // not fit the quota.
      config: { attachments: { maxBlobBytes: 1.5 * MiB, quotaBytesPerIdentity: 2 * MiB } },
    });
    for (const n of ['alice', 'bob']) {
      const c = join(root, `creds-${n}`);
      await issueClient(data, n, c);
      const r = await parleyMain(
        `pw-${n}`,
        'init',
        '--profile',
        join(root, n),
        '--server',
        relay.url,
        '--cert',
        join(c, `${n}.crt`),
        '--key',
        join(c, `${n}.key`),
        '--ca',
        join(c, 'ca.crt'),
      );
      expect(r.code, r.stderr).toBe(0);
    }
  });
  afterAll(async () => {
    await relay.close();
    rmSync(root, { recursive: true, force: true });
  });

  const file = (name: string, bytes: number): string => {
    const p = join(root, name);
    writeFileSync(p, randomBytes(bytes));
    return p;
  };

  it('refuses a file above the client limit before anything is uploaded', async () => {
    const p = join(root, 'huge.bin');
    const fd = openSync(p, 'w');
    ftruncateSync(fd, 100 * MiB + 1); // sparse: the size check comes before any read
    closeSync(fd);
    const r = await parleyMain('pw-alice', 'send', '--profile', pa, 'bob', '--file', p);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/above the attachment limit of 100\.0 MiB/);
  });

  it('refuses a blob above the relay limit, then one over the quota, with clear errors', async () => {
    const big = await parleyMain(
      'pw-alice',
      'send',
      '--profile',
      pa,
      'bob',
      '--file',
      file('two.bin', 2 * MiB),
    );
    expect(big.code).toBe(1);
    expect(big.stderr).toMatch(/relay refused the attachment: larger than it accepts/);

    const first = await parleyMain(
      'pw-alice',
      'send',
      '--profile',
      pa,
      'bob',
      '--file',
      file('one.bin', MiB),
    );
    expect(first.code, first.stderr).toBe(0);
    const second = await parleyMain(
      'pw-alice',
      'send',
      '--profile',
      pa,
      'bob',
      '--file',
      file('one-more.bin', MiB),
    );
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/over your attachment storage quota/);

    const crypto = createNodeCrypto();
    const key = loadOrCreateAuditKey(join(data, 'audit.key'), crypto);
    const v = verifyAuditLog(readFileSync(join(data, 'audit.log'), 'utf8'), key, crypto);
    if (!v.ok) throw new Error(v.reason);
    const refusals = v.records.filter((r) => r.type === 'blob.refused');
    expect(refusals.map((r) => [r.identity, r.code])).toEqual([
      ['alice', 'too-large'],
      ['alice', 'over-quota'],
    ]);
  });
});
