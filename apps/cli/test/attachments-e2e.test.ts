/**
 * Encrypted attachments CLI → CLI through the real `parley server` process (mtls, real
 * TLS, real SQLite and blob files): a 30 MiB upload survives a SIGKILL of the relay in
 * its middle and resumes from the relay's durable count after the restart; the
 * recipient's saved file has the same SHA-256; the relay's data folder holds no
 * plaintext of the file and not its name; a byte flipped in a stored blob is refused by
 * the recipient with a clear error and nothing saved.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initPki, issueClient } from '@parley/pki';
import { afterAll, describe, expect, it } from 'vitest';
import { parleyMain } from './cli-main.js';
import { until } from './cli-process.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const mainTs = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'parley-attach-'));
const data = join(dir, 'relay');
const running = new Set<ChildProcess>();
afterAll(() => {
  for (const c of running) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

interface Proc {
  readonly child: ChildProcess;
  out: string;
  err: string;
  code: number | null | undefined;
}

function parleyProcess(passphrase: string, ...args: string[]): Proc {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      `const { main } = await import(${JSON.stringify(mainTs)}); process.exitCode = await main(['node', 'parley', ...process.argv.slice(1)]);`,
      ...args,
    ],
    {
      cwd: root,
      env: {
        ...process.env,
        PARLEY_PASSPHRASE: passphrase,
        TSX_TSCONFIG_PATH: join(root, 'tsconfig.test.json'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  running.add(child);
  const p: Proc = { child, out: '', err: '', code: undefined };
  child.stdout?.on('data', (d: Buffer) => (p.out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (p.err += d.toString()));
  child.on('exit', (code) => {
    p.code = code;
    running.delete(child);
  });
  return p;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function startRelay(port: number): Promise<Proc> {
  const p = parleyProcess(
    '',
    'server',
    '--data',
    data,
    '--port',
    String(port),
    '--log-level',
    'warn',
  );
  await until(() => /listening on wss:/.test(p.out) || p.code != null, 'relay listening', 60_000);
  expect(p.code).toBeUndefined();
  return p;
}

function filesUnder(d: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(d, { withFileTypes: true })) {
    const p = join(d, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** 30 MiB of random bytes with a readable marker every 64 KiB (easy to search for). */
function bigFile(): Buffer {
  const b = randomBytes(30 * 1024 * 1024);
  for (let off = 0, i = 0; off + 64 < b.length; off += 64 * 1024, i++) {
    b.write(`PARLEY-PLAINTEXT-MARKER-${String(i).padStart(6, '0')}`, off, 'latin1');
  }
  return b;
}

describe('attachments through the real relay process', () => {
  it('resumes a 30 MiB upload after a relay SIGKILL; the file arrives intact; storage holds no plaintext', async () => {
    await initPki(data);
    const port = await freePort();
    let relay = await startRelay(port);
    const url = /listening on (wss:\/\/\S+)/.exec(relay.out)?.[1] as string;
    const profile = (n: string): string => join(dir, `profile-${n}`);
    for (const n of ['alice', 'bob']) {
      const creds = join(dir, `creds-${n}`);
      await issueClient(data, n, creds);
      const r = await parleyMain(
        `pw-${n}`,
        'init',
        '--profile',
        profile(n),
        '--server',
        url,
        '--cert',
        join(creds, `${n}.crt`),
        '--key',
        join(creds, `${n}.key`),
        '--ca',
        join(creds, 'ca.crt'),
      );
      expect(r.code, r.stderr).toBe(0);
    }
    const name = 'quarterly-secret-plans-7f3a.bin';
    const plain = bigFile();
    const path = join(dir, name);
    writeFileSync(path, plain);

    const send = parleyProcess(
      'pw-alice',
      'send',
      '--profile',
      profile('alice'),
      'bob',
      '--file',
      path,
    );
    // Not a terminal: one plain progress line per tenth, counted from durable chunks.
    await until(() => /upload: 30%/.test(send.err) || send.code != null, 'upload at 30 %', 120_000);
    expect(send.code, send.err).toBeUndefined();
    relay.child.kill('SIGKILL');
    await until(() => relay.code !== undefined, 'relay gone');
    relay = await startRelay(port);
    await until(() => send.code != null, 'send finished', 180_000);
    expect(send.code, send.err).toBe(0);
    const report = /attachment stored on the relay \((\d+) chunks; (.*)\)/.exec(send.err);
    expect(report, send.err).not.toBeNull();
    const total = Number(report?.[1]);
    const attempts = [...(report?.[2] ?? '').matchAll(/from chunk (\d+): sent (\d+)/g)].map(
      (m) => ({
        from: Number(m[1]),
        sent: Number(m[2]),
      }),
    );
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    expect(attempts[0]?.from).toBe(0);
    const last = attempts[attempts.length - 1] as { from: number; sent: number };
    // Resumed where the restarted relay's durable chunks ended: fewer sent than the total.
    expect(last.from).toBeGreaterThan(0);
    expect(last.sent).toBe(total - last.from);
    expect(last.sent).toBeLessThan(total);

    const saveDir = join(dir, 'saved');
    mkdirSync(saveDir);
    const read = await parleyMain(
      'pw-bob',
      'read',
      '--profile',
      profile('bob'),
      '--json',
      '--save-dir',
      saveDir,
    );
    expect(read.code, read.stderr).toBe(0);
    const line = JSON.parse(read.stdout.trim().split('\n').pop() as string) as {
      file: { name: string; size: number; sha256: string; saved: string; blob: string };
    };
    expect(line.file.name).toBe(name);
    expect(line.file.size).toBe(plain.length);
    expect(line.file).not.toHaveProperty('key');
    expect(line.file.saved).toBe(join(saveDir, name));
    expect(sha256(readFileSync(line.file.saved))).toBe(sha256(plain));
    expect(line.file.sha256).toBe(sha256(plain));

    // Everything the relay wrote: databases, WAL files, blob files, audit log.
    const needles = [
      Buffer.from(name),
      Buffer.from('PARLEY-PLAINTEXT-MARKER-000123'),
      Buffer.from('PLAINTEXT-MARKER'),
      plain.subarray(5_000_000, 5_000_032),
      plain.subarray(plain.length - 40, plain.length - 8),
    ];
    const stored = filesUnder(data);
    expect(stored.some((f) => f.endsWith(`${line.file.blob}.blob`))).toBe(true);
    for (const f of stored) {
      const bytes = readFileSync(f);
      for (const n of needles) expect(bytes.indexOf(n), `${f} holds plaintext`).toBe(-1);
    }
    // The stored blob is the padded size class (32 MiB) plus tags, not the file size.
    const blobFile = join(data, 'blobs', `${line.file.blob}.blob`);
    expect(statSync(blobFile).size).toBeGreaterThanOrEqual(32 * 1024 * 1024);

    // A tampered chunk: flip one byte of a second file's stored blob.
    const small = randomBytes(200_000);
    const smallPath = join(dir, 'tampered.txt');
    writeFileSync(smallPath, small);
    const s2 = await parleyMain(
      'pw-alice',
      'send',
      '--profile',
      profile('alice'),
      'bob',
      '--file',
      smallPath,
    );
    expect(s2.code, s2.stderr).toBe(0);
    const other = readdirSync(join(data, 'blobs')).find(
      (f) => f.endsWith('.blob') && !f.startsWith(line.file.blob),
    ) as string;
    const victim = join(data, 'blobs', other);
    const blob = readFileSync(victim);
    blob[10_000] = (blob[10_000] as number) ^ 0x01;
    writeFileSync(victim, blob);
    const tamperDir = join(dir, 'saved-tampered');
    mkdirSync(tamperDir);
    const bad = await parleyMain(
      'pw-bob',
      'read',
      '--profile',
      profile('bob'),
      '--save-dir',
      tamperDir,
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(
      /failed its integrity check \(tampered or corrupted\); nothing was saved/,
    );
    expect(readdirSync(tamperDir)).toEqual([]);
    relay.child.kill('SIGKILL');
  }, 400_000);
});
