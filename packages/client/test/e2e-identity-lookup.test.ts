/**
 * mtls: checking the certificate of a first message's sender, or of a contact before
 * any message (`verify`), asks the relay with `identity.lookup`, which spends none of
 * the peer's prekeys (docs/wire.md §4.2). A `keys.lookup` here would take one one-time
 * X25519 and one one-time ML-KEM key of the sender each time. Real relay (TLS 1.3,
 * SQLite), real SQLCipher profiles; the stock is read from the relay's database.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import { afterAll, describe, expect, it } from 'vitest';
import { ONE_TIME_PQ_PREKEYS_TARGET, ONE_TIME_PREKEYS_TARGET } from '@parley/client';
import { openNodeClient, type NodeClient } from '@parley/client-node';
import { PASS, crypto, startMtlsPair, until } from './e2e-helpers.js';

const root = mkdtempSync(join(tmpdir(), 'parley-idlookup-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function connect(profile: string): Promise<NodeClient> {
  const c = await openNodeClient({ profile, passphrase: PASS, crypto });
  await c.connect();
  await until(() => c.client.mailboxDrained, 'mailbox drained');
  return c;
}

describe('certificate checks spend no prekeys', () => {
  it("receiving a first message and verifying a contact leave the sender's one-time stock as it was", async () => {
    const { relay, profiles } = await startMtlsPair(root);
    const db = new Database(relay.paths.database, { readonly: true, fileMustExist: true });
    const count = db.prepare<[string, string], { n: number }>(
      'SELECT COUNT(*) AS n FROM one_time_prekeys WHERE name = ? AND kind = ?',
    );
    const stock = (name: string): [number, number] => [
      count.get(name, 'ec')?.n ?? -1,
      count.get(name, 'pq')?.n ?? -1,
    ];
    const full: [number, number] = [ONE_TIME_PREKEYS_TARGET, ONE_TIME_PQ_PREKEYS_TARGET];
    try {
      const alice = await connect(profiles.alice);
      const bob = await connect(profiles.bob);
      await until(
        () => stock('alice')[0] === full[0] && stock('bob')[0] === full[0],
        `both uploads stored (${stock('alice').join('/')} ${stock('bob').join('/')})`,
      );
      expect(stock('bob')).toEqual(full);

      // Bob starts the session: that takes one of each of Alice's keys, as it must.
      await bob.client.send('alice', 'hello alice');
      await until(
        async () => (await alice.client.messages('bob')).length === 1,
        'first message at alice',
      );
      expect(stock('alice')).toEqual([full[0] - 1, full[1] - 1]);
      // Alice checked Bob's certificate (the contact is CA-attested) without taking his keys.
      const contact = (await alice.client.contacts()).find((k) => k.name === 'bob');
      expect(contact?.trust).toBe('ca-attested');
      expect(stock('bob')).toEqual(full);

      // `verify` before any message: Bob checks Alice the same way.
      await bob.client.fetchContact('alice');
      expect(stock('alice')).toEqual([full[0] - 1, full[1] - 1]);

      await alice.close();
      await bob.close();
    } finally {
      db.close();
      await relay.close();
    }
  });
});
