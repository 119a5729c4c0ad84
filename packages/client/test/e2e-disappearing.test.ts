/**
 * End to end with the real relay (TLS 1.3 mtls) and real SQLCipher profiles: a
 * disappearing message is deleted on both sides when its time is up, the recipient's
 * copy also when its app was closed at that time (the sweep when it opens), and
 * afterwards neither profile's database file nor its WAL holds the text (SQLCipher
 * encrypts both, so that check alone is weak; the recipient's WAL is also checked to be
 * checkpointed and truncated by the deleting batch). Time is moved
 * with the clock the client takes (`openNodeClient({ clock })`).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openNodeClient, PROFILE_DB_FILE } from '@parley/client-node';
import { PASS, crypto, startMtlsPair, until } from './e2e-helpers.js';

const root = mkdtempSync(join(tmpdir(), 'parley-e2e-disappearing-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const FIVE_MIN = 5 * 60_000;
const SECRET = 'quokka-disappearing-5512';

/** Both the database file and its WAL, as raw bytes. */
function rawFiles(profile: string): Buffer {
  const db = join(profile, PROFILE_DB_FILE);
  const wal = `${db}-wal`;
  return Buffer.concat([readFileSync(db), existsSync(wal) ? readFileSync(wal) : Buffer.alloc(0)]);
}

describe('end to end: disappearing messages', () => {
  it('mtls: both profiles delete the message at expiry, the closed one when it opens', async () => {
    const { relay, profiles } = await startMtlsPair(root);
    let skew = 0;
    const clock = (): number => Date.now() + skew;
    try {
      let bob = await openNodeClient({ profile: profiles.bob, passphrase: PASS, crypto, clock });
      await bob.connect();
      await bob.client.requestPresence(); // round trip: the prekey upload has been processed
      const alice = await openNodeClient({
        profile: profiles.alice,
        passphrase: PASS,
        crypto,
        clock,
      });
      await alice.connect();
      const t = await alice.client.setTimer('bob', FIVE_MIN);
      await alice.client.waitForStatus('bob', t.id, 'delivered', 20_000);
      expect(await bob.client.timer('alice')).toBe(FIVE_MIN);
      const m = await alice.client.send('bob', SECRET);
      await alice.client.waitForStatus('bob', m.id, 'delivered', 20_000);
      const got = await bob.store.getMessage('alice', 'in', m.id);
      expect(got?.text).toBe(SECRET);
      expect(got?.expiresAt).toBeGreaterThan(clock());
      expect((await bob.store.searchMessages('quokka')).map((x) => x.id)).toEqual([m.id]);
      await bob.close();

      // Past the expiry: alice (running) sweeps; bob's app is closed.
      skew = FIVE_MIN + 1_000;
      await alice.client.expireNow();
      expect(await alice.store.getMessage('bob', 'out', m.id)).toBeUndefined();
      expect((await alice.client.messages('bob')).map((x) => x.timerMs)).toEqual([FIVE_MIN]);

      bob = await openNodeClient({ profile: profiles.bob, passphrase: PASS, crypto, clock });
      await until(
        async () => (await bob.store.getMessage('alice', 'in', m.id)) === undefined,
        'bob deletes it at open',
      );
      expect((await bob.client.messages('alice')).map((x) => x.timerMs)).toEqual([FIVE_MIN]);
      // Gone from the search index too (the same deletion path).
      expect(await bob.store.searchMessages('quokka')).toEqual([]);
      expect(await alice.store.searchMessages('quokka')).toEqual([]);
      // The deleting batch checkpointed the WAL: no older page version of the row is left
      // there (bob is not connected, so nothing was written since).
      expect(statSync(`${join(profiles.bob, PROFILE_DB_FILE)}-wal`).size).toBe(0);
      await bob.close();
      await alice.close();

      for (const p of [profiles.alice, profiles.bob])
        expect(rawFiles(p).includes(Buffer.from(SECRET, 'utf8'))).toBe(false);
    } finally {
      await relay.close();
    }
  });
});
