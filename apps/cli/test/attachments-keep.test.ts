/**
 * What keeps an attachment safe across failures, through the real `parley server`
 * process (mtls, real TLS, real SQLite and blob files):
 * - `parley send --file` SIGKILLed in the middle of its upload, run again, resumes the same
 *   blob from the relay's durable count (nothing already stored is sent again) and the
 *   message is sent once;
 * - `parley server backup` taken while the relay serves holds the stored blob; restored
 *   into a fresh data folder, the recipient fetches the file intact;
 * - a file that fails its integrity check is reported as failed and stays unread, so the
 *   next `read --save-dir` tries it again, while the messages around it are marked read.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initPki, issueClient } from '@parley/pki';
import { afterAll, describe, expect, it } from 'vitest';
import { parleyMain } from './cli-main.js';
import { killAll, parleyWithEnv, until, type Proc } from './cli-process.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-attach-keep-'));
const data = join(dir, 'relay');
afterAll(() => {
  killAll();
  rmSync(dir, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function startRelay(dataDir: string, port: number): Promise<Proc> {
  const p = parleyWithEnv(
    {},
    'server',
    '--data',
    dataDir,
    '--port',
    String(port),
    '--log-level',
    'warn',
  );
  await until(() => /listening on wss:/.test(p.out) || p.code != null, 'relay listening', 60_000);
  expect(p.code, p.err).toBeUndefined();
  return p;
}

async function stopRelay(p: Proc): Promise<void> {
  p.child.kill('SIGTERM');
  await until(() => p.code !== undefined, 'relay stopped', 30_000);
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const profile = (n: string): string => join(dir, `profile-${n}`);

interface ReadLine {
  id: string;
  text: string;
  file?: { name: string; sha256: string; saved?: string; failed?: string; retryable?: boolean };
}

async function readJson(
  saveDir: string,
): Promise<{ code: number; lines: ReadLine[]; err: string }> {
  const r = await parleyMain(
    'pw-bob',
    'read',
    '--profile',
    profile('bob'),
    '--json',
    '--save-dir',
    saveDir,
  );
  const lines = r.stdout
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as ReadLine);
  return { code: r.code, lines, err: r.stderr };
}

describe('attachments across failures (real relay process)', () => {
  let relay: Proc | undefined;
  let port = 0;

  it('send --file killed mid-upload resumes the same blob when run again; the message is sent once', async () => {
    await initPki(data);
    port = await freePort();
    relay = await startRelay(data, port);
    const url = /listening on (wss:\/\/\S+)/.exec(relay.out)?.[1] as string;
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
    const plain = randomBytes(12 * 1024 * 1024);
    const path = join(dir, 'resume-me.bin');
    writeFileSync(path, plain);

    const first = parleyWithEnv(
      { PARLEY_PASSPHRASE: 'pw-alice' },
      'send',
      '--profile',
      profile('alice'),
      'bob',
      '--file',
      path,
    );
    // Progress counts durable chunks: at 30 % the relay holds some of them.
    await until(
      () => /upload: 30%/.test(first.err) || first.code != null,
      'upload at 30 %',
      120_000,
    );
    expect(first.code, first.err).toBeUndefined();
    first.child.kill('SIGKILL');
    await until(() => first.code !== undefined, 'sender gone');

    const again = await parleyMain(
      'pw-alice',
      'send',
      '--profile',
      profile('alice'),
      'bob',
      '--file',
      path,
    );
    expect(again.code, again.stderr).toBe(0);
    const report = /attachment stored on the relay \((\d+) chunks; (.*)\)/.exec(again.stderr);
    expect(report, again.stderr).not.toBeNull();
    const total = Number(report?.[1]);
    const attempts = [...(report?.[2] ?? '').matchAll(/from chunk (\d+): sent (\d+)/g)].map(
      (m) => ({
        from: Number(m[1]),
        sent: Number(m[2]),
      }),
    );
    // One attempt in the new process, starting where the relay's durable chunks ended.
    expect(attempts).toHaveLength(1);
    const resumed = attempts[0] as { from: number; sent: number };
    expect(resumed.from).toBeGreaterThan(0);
    expect(resumed.sent).toBe(total - resumed.from);
    // One blob on the relay: the same upload, not a second one started over.
    expect(readdirSync(join(data, 'blobs')).filter((f) => f.endsWith('.blob'))).toHaveLength(1);

    const saveDir = join(dir, 'saved-resume');
    mkdirSync(saveDir);
    const read = await readJson(saveDir);
    expect(read.code, read.err).toBe(0);
    const files = read.lines.filter((l) => l.file !== undefined);
    expect(files).toHaveLength(1);
    expect(files[0]?.file?.sha256).toBe(sha256(plain));
    expect(sha256(readFileSync(files[0]?.file?.saved as string))).toBe(sha256(plain));
    const history = await parleyMain(
      'pw-alice',
      'read',
      '--profile',
      profile('alice'),
      '--history',
      '--json',
      '--peer',
      'bob',
    );
    expect(history.code, history.stderr).toBe(0);
    const sent = history.stdout
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as { direction: string; file?: unknown });
    expect(sent.filter((m) => m.direction === 'out' && m.file !== undefined)).toHaveLength(1);
  }, 400_000);

  it('a relay backup holds the stored blob; restored into a fresh data folder, the recipient fetches it', async () => {
    expect(relay).toBeDefined();
    const plain = randomBytes(700_000);
    const path = join(dir, 'kept-by-backup.pdf');
    writeFileSync(path, plain);
    const s = await parleyMain(
      'pw-alice',
      'send',
      '--profile',
      profile('alice'),
      'bob',
      '--file',
      path,
    );
    expect(s.code, s.stderr).toBe(0);

    const backupFile = join(dir, 'relay-backup.tar');
    const b = await parleyMain('', 'server', 'backup', '--data', data, '--out', backupFile);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toMatch(/2 attachment blobs/);
    await stopRelay(relay as Proc);

    const fresh = join(dir, 'relay-restored');
    const r = await parleyMain('', 'server', 'restore', '--data', fresh, '--from', backupFile);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/attachment blobs restored/);
    relay = await startRelay(fresh, port);

    const saveDir = join(dir, 'saved-restored');
    mkdirSync(saveDir);
    const read = await readJson(saveDir);
    expect(read.code, read.err).toBe(0);
    const files = read.lines.filter((l) => l.file !== undefined);
    expect(files).toHaveLength(1);
    expect(files[0]?.file?.name).toBe('kept-by-backup.pdf');
    expect(sha256(readFileSync(files[0]?.file?.saved as string))).toBe(sha256(plain));
  }, 200_000);

  it('a file failing its integrity check is reported failed and stays unread; the text after it does not', async () => {
    expect(relay).toBeDefined();
    const fresh = join(dir, 'relay-restored');
    const before = new Set(readdirSync(join(fresh, 'blobs')));
    const path = join(dir, 'tampered.bin');
    writeFileSync(path, randomBytes(200_000));
    const s = await parleyMain(
      'pw-alice',
      'send',
      '--profile',
      profile('alice'),
      'bob',
      '--file',
      path,
    );
    expect(s.code, s.stderr).toBe(0);
    const t = await parleyMain(
      'pw-alice',
      'send',
      '--profile',
      profile('alice'),
      'bob',
      'after the file',
    );
    expect(t.code, t.stderr).toBe(0);
    const name = readdirSync(join(fresh, 'blobs')).find(
      (f) => f.endsWith('.blob') && !before.has(f),
    );
    const victim = join(fresh, 'blobs', name as string);
    const blob = readFileSync(victim);
    blob[10_000] = (blob[10_000] as number) ^ 0x01;
    writeFileSync(victim, blob);

    const saveDir = join(dir, 'saved-tampered');
    mkdirSync(saveDir);
    const firstRead = await readJson(saveDir);
    expect(firstRead.code).toBe(1);
    expect(firstRead.err).toMatch(/tampered\.bin FAILED: .*failed its integrity check/);
    const failed = firstRead.lines.find((l) => l.file !== undefined);
    expect(failed?.file?.failed).toMatch(/integrity check/);
    expect(failed?.file?.retryable).toBe(false);
    expect(failed?.file?.saved).toBeUndefined();
    expect(firstRead.lines.some((l) => l.text === 'after the file')).toBe(true);
    expect(readdirSync(saveDir)).toEqual([]);

    // Not marked read: the next read shows (and tries) the file again, and only it.
    const secondRead = await readJson(saveDir);
    expect(secondRead.code).toBe(1);
    expect(secondRead.lines.map((l) => l.id)).toEqual([failed?.id]);
    expect(secondRead.lines[0]?.file?.failed).toMatch(/integrity check/);
    await stopRelay(relay as Proc);
  }, 200_000);
});
