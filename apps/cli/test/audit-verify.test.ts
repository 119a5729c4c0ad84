/**
 * Audit tail anchoring end to end: the real `parley server` writes audit checkpoints to
 * its structured log (stderr), and `parley audit verify --log` uses them to catch a
 * cut-off audit tail that the hash chain alone accepts.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { killAll, parley, until, run } from './cli-process.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-cli-audit-'));
const data = join(dir, 'data');
afterAll(() => {
  killAll();
  rmSync(dir, { recursive: true, force: true });
});

/** A TLS client without a certificate: refused in the handshake, one audit record. */
async function refusedHandshake(port: number, ca: string): Promise<void> {
  await new Promise<void>((resolve) => {
    const s = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' });
    s.on('error', () => resolve());
    s.on('close', () => resolve());
    s.on('secureConnect', () => s.write('GET /ws HTTP/1.1\r\nhost: x\r\n\r\n'));
  });
}

describe('parley audit verify', () => {
  it('passes the untouched log, catches a cut-off tail with the logged checkpoints', async () => {
    const server = parley('server', '--data', data, '--port', '0');
    await until(() => /listening on wss:/.test(server.out) || server.code != null, 'listening');
    const port = Number(/listening on wss:\/\/127\.0\.0\.1:(\d+)\/ws/.exec(server.out)?.[1]);
    const ca = readFileSync(join(data, 'pki', 'ca.crt'), 'utf8');
    for (let i = 0; i < 3; i++) await refusedHandshake(port, ca);
    server.child.kill('SIGTERM');
    await until(() => server.code != null, 'server exit');
    expect(server.code).toBe(0);

    // The relay's own log, as an operator's log shipper would have kept it.
    const log = join(dir, 'relay.log');
    writeFileSync(log, server.err);
    const checkpoint = /"auditCheckpoint":\{"seq":(\d+),"hash":"([0-9a-f]{64})"\}/.exec(server.err);
    expect(checkpoint).not.toBeNull();
    const auditFile = join(data, 'audit.log');
    const lines = readFileSync(auditFile, 'utf8').trimEnd().split('\n');
    // The close checkpoint anchors the very last record (relay.stop).
    const last = [...server.err.matchAll(/"auditCheckpoint":\{"seq":(\d+)/g)].at(-1)?.[1];
    expect(Number(last)).toBe(lines.length);

    const ok = await run('audit', 'verify', '--data', data, '--log', log);
    expect(ok.err).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.out).toContain(`audit log OK: ${auditFile}, ${lines.length} records`);
    expect(ok.out).toContain('reaches all');

    writeFileSync(auditFile, `${lines.slice(0, -2).join('\n')}\n`);
    const plain = await run('audit', 'verify', '--data', data);
    expect(plain.code).toBe(0);
    expect(plain.out).toContain('no checkpoints given');
    const cut = await run('audit', 'verify', '--data', data, '--log', log);
    expect(cut.code).toBe(1);
    expect(cut.err).toContain('audit log truncated');
    expect(cut.err).toContain(`checkpoint ${lines.length}`);

    // A checkpoint noted by hand that the file disagrees with.
    const wrong = await run(
      'audit',
      'verify',
      '--data',
      data,
      '--checkpoint',
      `${lines.length - 2}:${'0'.repeat(64)}`,
    );
    expect(wrong.code).toBe(1);
    expect(wrong.err).toContain(`is not the one checkpoint ${lines.length - 2} recorded`);
    const bad = await run('audit', 'verify', '--data', data, '--checkpoint', 'latest');
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('SEQ:HASH');
  });
});
