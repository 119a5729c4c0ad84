/**
 * Backup while serving, restore into a stopped relay (issue 9 §4): one-time prekeys
 * handed out after the backup was taken are never handed out again; the identity a
 * device authenticates with replaces the stored one (new prekeys, no mixing).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  backupRelay,
  loadOrCreateAuditKey,
  restoreRelay,
  startRelay,
  verifyAuditLog,
  type RunningRelay,
} from '../src/index.js';
import { TestClient, crypto, prekeyUpload, startHarness, until, type Harness } from './helpers.js';

/** A TestClient against a relay that is not the harness's own (after a restart). */
async function connectTo(relay: RunningRelay, creds: { cert: string; key: string; ca: string }) {
  const c = new TestClient(relay.url, creds);
  await until(() => c.opened || c.closeCode !== undefined, 'open');
  return c;
}

describe('relay backup and restore', () => {
  let h: Harness | undefined;
  let restarted: RunningRelay | undefined;
  afterAll(async () => {
    await restarted?.close();
    await h?.close();
  });

  it('restores a backup taken while serving without handing out a used one-time prekey again', async () => {
    h = await startHarness();
    const dataDir = h.relay.paths.dataDir;
    const bobCreds = await h.credentials('bob');
    const aliceCreds = await h.credentials('alice');
    const bob = await TestClient.connect(h, bobCreds);
    await bob.hello();
    bob.send(prekeyUpload(3, bobCreds.identity));
    const alice = await TestClient.connect(h, aliceCreds);
    await alice.hello();
    // The upload has committed once a lookup hands out one of its keys.
    alice.send({ type: 'keys.lookup', requestId: 1, name: 'bob' });
    const first = await alice.next('keys.bundle');
    expect(first.oneTimePrekey).toBeDefined();

    const backupFile = join(h.dir, 'relay-backup.tar');
    const r = await backupRelay({ dataDir, outFile: backupFile });
    expect(r.outFile).toBe(backupFile);
    expect(r.auditRecords).toBeGreaterThan(0);
    expect(statSync(backupFile).isFile()).toBe(true);
    // A second backup to the same file is refused; the first stays as it was.
    const bytes = readFileSync(backupFile);
    await expect(backupRelay({ dataDir, outFile: backupFile })).rejects.toThrow(/already exists/);
    expect(readFileSync(backupFile).equals(bytes)).toBe(true);
    // What the archive holds, unpacked with a tar the relay does not share.
    const backupDir = join(h.dir, 'unpacked');
    mkdirSync(backupDir);
    execFileSync('tar', ['-xf', backupFile, '-C', backupDir]);
    expect(existsSync(join(backupDir, 'relay.db'))).toBe(true);
    expect(existsSync(join(backupDir, 'pki', 'ca.key'))).toBe(false);
    const key = loadOrCreateAuditKey(join(backupDir, 'audit.key'), crypto);
    expect(verifyAuditLog(readFileSync(join(backupDir, 'audit.log'), 'utf8'), key, crypto).ok).toBe(
      true,
    );

    // Used after the backup: the restored database still lists these as unused.
    const usedAfterBackup = new Set<number>();
    for (let i = 2; i <= 3; i++) {
      alice.send({ type: 'keys.lookup', requestId: i, name: 'bob' });
      const b = await alice.next('keys.bundle');
      usedAfterBackup.add(b.oneTimePrekey?.id ?? -1);
    }
    expect(usedAfterBackup.has(-1)).toBe(false);
    alice.close();
    bob.close();

    // A running relay holds the folder: restore refuses to touch it.
    expect(() => restoreRelay({ dataDir, fromFile: backupFile })).toThrow(/in use/);
    await h.relay.close();
    const restored = restoreRelay({ dataDir, fromFile: backupFile });
    expect(restored.spentPrekeys).toBe(2);
    expect(restored.previousDatabase).toBeDefined();

    restarted = await startRelay({ dataDir, port: 0, logLevel: 'silent' });
    const alice2 = await connectTo(restarted, aliceCreds);
    await alice2.hello();
    alice2.send({ type: 'keys.lookup', requestId: 9, name: 'bob' });
    const after = await alice2.next('keys.bundle');
    expect(after.oneTimePrekey).toBeUndefined();
    // The owner is asked for new ones at its next login.
    const bob2 = await connectTo(restarted, bobCreds);
    await bob2.hello();
    expect((await bob2.next('prekeys.low')).remainingOneTime).toBe(0);
    alice2.close();
    bob2.close();

    await restarted.close();
    const v = verifyAuditLog(
      readFileSync(restarted.paths.auditLog, 'utf8'),
      loadOrCreateAuditKey(restarted.paths.auditKey, crypto),
      crypto,
    );
    expect(v.ok).toBe(true);
    if (v.ok)
      expect(v.records.some((x) => x.type === 'relay.restored' && x.value === 2)).toBe(true);
    restarted = undefined;
  });
});

describe('relay key directory', () => {
  let h: Harness | undefined;
  afterAll(async () => h?.close());

  it('a new certified key for a registered name replaces the identity and its prekeys', async () => {
    h = await startHarness();
    const oldBob = await h.credentials('bob');
    const bob = await TestClient.connect(h, oldBob);
    await bob.hello();
    bob.send(prekeyUpload(2, oldBob.identity));
    const alice = await TestClient.connect(h, await h.credentials('alice'));
    await alice.hello();
    alice.send({ type: 'keys.lookup', requestId: 1, name: 'bob' });
    expect((await alice.next('keys.bundle')).oneTimePrekey).toBeDefined();
    bob.close();

    const newBob = await h.credentials('bob', { replace: true, overwrite: true });
    const bob2 = await TestClient.connect(h, newBob);
    await bob2.hello();
    // Nothing of the old key is handed out with the new one.
    alice.send({ type: 'keys.lookup', requestId: 2, name: 'bob' });
    const none = await alice.next('error');
    expect(none.requestId).toBe(2);
    bob2.send(prekeyUpload(1, newBob.identity));
    let bundle;
    for (let i = 3; bundle === undefined && i < 200; i++) {
      alice.send({ type: 'keys.lookup', requestId: i, name: 'bob' });
      await until(() => alice.has('keys.bundle') || alice.has('error'), 'answer');
      if (alice.has('keys.bundle')) bundle = await alice.next('keys.bundle');
      else await alice.next('error');
    }
    expect(bundle?.identityKey).toEqual(newBob.identity.publicKey);
    alice.close();
    bob2.close();
    expect(h.audit().some((r) => r.type === 'identity.replaced' && r.identity === 'bob')).toBe(
      true,
    );
  });
});
