/**
 * Notices that cross relay processes on the Redis bus, three nodes on one PostgreSQL
 * and one Redis: `prekeys.low` reaches the owner on its node when lookups on another
 * node spend its one-time prekeys; a CRL reload on one node (SIGHUP, file watching off
 * everywhere) makes every node reload its own, so a revoked device is cut on the node
 * it is connected to and refused by the others, while others stay connected.
 */
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { asEd25519SecretKey } from '@parley/crypto';
import { ed25519SeedFromPkcs8Pem, revoke } from '@parley/pki';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cluster, connect, online, type Cluster, type Tls } from './cluster-harness.js';
import { crypto, prekeyUpload, TestClient, until } from './helpers.js';
import { startPostgres, type TestPostgres } from './pg-server.js';
import { startRedis, type TestRedis } from './redis-server.js';

let pg: TestPostgres;
let redis: TestRedis;
const clusters: Cluster[] = [];

beforeAll(async () => {
  [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
}, 120_000);
afterAll(async () => {
  for (const c of clusters) await c.destroy();
  await Promise.all([pg?.destroy(), redis?.destroy()]);
}, 60_000);

const identityOf = (tls: Tls) =>
  crypto.ed25519.keyPairFromSecret(asEd25519SecretKey(ed25519SeedFromPkcs8Pem(tls.key)));

/** Whether a TLS + WebSocket connection with `tls` is let in by the relay at `port`. */
async function admitted(port: number, tls: Tls): Promise<boolean> {
  const c = new TestClient(`wss://127.0.0.1:${port}/ws`, tls);
  await until(() => c.opened || c.closed, 'handshake', 15_000);
  const ok = c.opened;
  c.close();
  return ok;
}

describe('notices across relay processes (Redis bus)', () => {
  it('prekeys.low reaches the owner on its node when lookups on another node spend its keys', async () => {
    const c = await cluster(pg, redis);
    clusters.push(c);
    const [n1, n2] = [await c.start(1), await c.start(2)];
    const bobTls = await c.creds('bob');
    const bob = await connect(n2.port, bobTls);
    // No one-time keys yet: told at login, on its own node.
    expect((await bob.next('prekeys.low')).remainingOneTime).toBe(0);
    bob.send(prekeyUpload(11, identityOf(bobTls)));
    expect((await bob.next('prekeys.stored', 15_000)).remainingOneTime).toBe(11);
    const alice = await connect(n1.port, await c.creds('alice'));
    // Node 1 knows bob is connected to node 2 before the lookups.
    await online(alice, ['bob'], 1);
    for (let i = 0; i < 3; i++) {
      alice.send({ type: 'keys.lookup', requestId: i, name: 'bob' });
      expect((await alice.next('keys.bundle', 15_000)).oneTimePrekey).toBeDefined();
    }
    // 11 -> 10 (not low) -> 9 -> 8: two warnings, in order, from node 1 via Redis.
    expect((await bob.next('prekeys.low', 20_000)).remainingOneTime).toBe(9);
    expect((await bob.next('prekeys.low', 20_000)).remainingOneTime).toBe(8);
    expect(bob.has('prekeys.low')).toBe(false);
    alice.close();
    bob.close();
  }, 180_000);

  it('a CRL reloaded on one node is reloaded by every node: the revoked device is cut where it is connected, and refused elsewhere', async () => {
    const c = await cluster(pg, redis, { tls: { watchCrl: false } });
    clusters.push(c);
    const nodes = [await c.start(1), await c.start(2), await c.start(3)];
    const [carolTls, daveTls] = [await c.creds('carol'), await c.creds('dave')];
    const carol = await connect(nodes[1]!.port, carolTls);
    const dave = await connect(nodes[1]!.port, daveTls);
    expect(await admitted(nodes[2]!.port, carolTls)).toBe(true);

    // The operator revokes carol with the CA (node 1's folder) and hands the new CRL to
    // every node, as configuration management would; no node watches the file.
    await revoke(c.dataDir(1), 'carol');
    for (const i of [2, 3]) {
      copyFileSync(join(c.dataDir(1), 'pki', 'crl.pem'), join(c.dataDir(i), 'pki', 'crl.pem'));
    }
    expect(carol.closed).toBe(false);
    // Only node 1 is told to reload; it announces it on the bus.
    nodes[0]!.child.kill('SIGHUP');

    // Node 2 reloads its own copy: every session gets the new CRL, carol is cut.
    await until(() => carol.closed, 'carol cut on node 2', 30_000);
    expect(carol.has('crl')).toBe(true);
    await until(() => dave.has('crl'), 'dave told of the new CRL', 30_000);
    expect(dave.closed).toBe(false);
    // Node 3 reloaded as well: carol's handshake is refused there now.
    let refused = false;
    for (let i = 0; i < 100 && !refused; i++) {
      refused = !(await admitted(nodes[2]!.port, carolTls));
      if (!refused) await new Promise((r) => setTimeout(r, 100));
    }
    expect(refused).toBe(true);
    expect(await admitted(nodes[2]!.port, daveTls)).toBe(true);
    for (const n of nodes) expect(n.child.exitCode).toBeNull();
    dave.close();
  }, 180_000);
});
