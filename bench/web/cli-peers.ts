/**
 * bench:web's CLI side, in a process of its own like a terminal client (not sharing the
 * relay's event loop): two profiles of the `parley` command's core (SQLCipher store,
 * Node TLS transport) on the given open-mode relay; after one message each way (the
 * handshake), N messages alternating, each timed from `send` to the receiver's
 * `message` event (committed in its store). Prints {"lat": [ms, ...]}.
 *
 *   tsx bench/web/cli-peers.ts WSS_URL CA_FILE WORK_DIR N TAG
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createPortableCrypto } from '@parley/crypto';
import { initProfile, openNodeClient } from '@parley/client-node';
import type { NodeClient } from '@parley/client-node';

const [url = '', caFile = '', dir = '', nText = '0', tag = ''] = process.argv.slice(2);
const N = Number(nText);
const crypto = createPortableCrypto();
const names = [`carol${tag}`, `dave${tag}`] as const;
const clients: NodeClient[] = [];
for (const name of names) {
  await initProfile({
    profile: join(dir, name),
    passphrase: 'x',
    server: url,
    mode: 'open',
    name,
    caPem: readFileSync(caFile, 'utf8'),
    crypto,
    kdf: { memoryKiB: 8, iterations: 1 },
  });
  const c = await openNodeClient({ profile: join(dir, name), passphrase: 'x', crypto });
  await c.connect();
  clients.push(c);
}
const [a, b] = clients as [NodeClient, NodeClient];
const one = (from: NodeClient, to: NodeClient, peer: string, text: string): Promise<number> =>
  new Promise((resolve, reject) => {
    const t0 = performance.now();
    const off = to.client.on((e) => {
      if (e.type === 'message' && e.message.text === text) {
        off();
        resolve(performance.now() - t0);
      }
    });
    from.client.send(peer, text).catch(reject);
  });
await one(a, b, names[1], 'warm 1');
await one(b, a, names[0], 'warm 2');
const lat: number[] = [];
for (let i = 0; i < N; i++) {
  lat.push(
    i % 2 === 0 ? await one(a, b, names[1], `1->2 ${i}`) : await one(b, a, names[0], `2->1 ${i}`),
  );
}
for (const c of clients) await c.close();
process.stdout.write(`${JSON.stringify({ lat })}\n`);
