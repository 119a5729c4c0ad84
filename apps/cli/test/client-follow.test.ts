/**
 * `parley read --follow --json` as a real process: messages sent while it runs are
 * printed as they arrive, one JSON object per line, each once; SIGINT ends it cleanly
 * and a later `read` has nothing new.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createPortableCrypto } from '@parley/crypto';
import { MIN_KDF_MEMORY_KIB } from '@parley/client';
import { initProfile, openNodeClient } from '@parley/client-node';
import { issueClient } from '@parley/pki';
import { startRelay } from '@parley/server';

const BIN = resolve(import.meta.dirname, '../bin/parley.js');

describe('parley read --follow', () => {
  const root = mkdtempSync(join(tmpdir(), 'parley-follow-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('prints each arriving message once as JSON and exits 0 on SIGINT', async () => {
    expect(existsSync(join(import.meta.dirname, '../dist/main.js'))).toBe(true);
    const data = join(root, 'relay');
    const relay = await startRelay({ dataDir: data, port: 0, auth: 'mtls', logLevel: 'silent' });
    const crypto = createPortableCrypto();
    try {
      for (const n of ['alice', 'bob']) {
        const issued = await issueClient(data, n, join(root, `creds-${n}`));
        await initProfile({
          profile: join(root, n),
          passphrase: `pw-${n}`,
          server: relay.url,
          mode: 'mtls',
          certPem: readFileSync(issued.certPath, 'utf8'),
          keyPem: readFileSync(issued.keyPath, 'utf8'),
          caPem: readFileSync(issued.caPath, 'utf8'),
          crypto,
          kdf: { memoryKiB: MIN_KDF_MEMORY_KIB, iterations: 1 },
        });
      }
      // Bob publishes his prekeys before Alice writes.
      const bob0 = await openNodeClient({
        profile: join(root, 'bob'),
        passphrase: 'pw-bob',
        crypto,
      });
      await bob0.connect();
      await bob0.client.requestPresence();
      await bob0.close();

      const child = spawn(
        process.execPath,
        [BIN, 'read', '--profile', join(root, 'bob'), '--follow', '--json'],
        {
          env: { ...process.env, PARLEY_PASSPHRASE: 'pw-bob' },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));

      const alice = await openNodeClient({
        profile: join(root, 'alice'),
        passphrase: 'pw-alice',
        crypto,
      });
      await alice.connect();
      const lines = async (n: number): Promise<{ from: string; text: string }[]> => {
        for (let i = 0; i < 200 && out.trim().split('\n').filter(Boolean).length < n; i++) {
          await new Promise((r) => setTimeout(r, 100));
        }
        return out
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { from: string; text: string });
      };
      const m1 = await alice.client.send('bob', 'follow one');
      await alice.client.waitForStatus('bob', m1.id, 'delivered', 20_000);
      expect((await lines(1)).map((l) => l.text)).toEqual(['follow one']);
      const m2 = await alice.client.send('bob', 'follow two');
      await alice.client.waitForStatus('bob', m2.id, 'delivered', 20_000);
      expect((await lines(2)).map((l) => [l.from, l.text])).toEqual([
        ['alice', 'follow one'],
        ['alice', 'follow two'],
      ]);
      await alice.close();
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(err).toBe('');
      // Both were marked shown: a later read has nothing new.
      const bob = await openNodeClient({
        profile: join(root, 'bob'),
        passphrase: 'pw-bob',
        crypto,
      });
      expect(await bob.client.messages(undefined, { unshownOnly: true })).toEqual([]);
      expect((await bob.client.messages('alice')).length).toBe(2);
      await bob.close();
    } finally {
      await relay.close();
    }
  }, 90_000);
});
