/**
 * The client waits for `prekeys.stored` (docs/wire.md §4.2): its prekeys count as
 * published only once the relay said it stored them, a refusal is reported and the next
 * connection publishes again, and a `prekeys.low` the relay sent before it stored the
 * first upload does not make the client upload a second batch.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStore, ONE_TIME_PREKEYS_TARGET } from '@parley/client';
import { FakeRelay } from './fake-relay.js';
import { device, makeAccount, online, until } from './harness.js';

describe('prekeys.stored', () => {
  it('is ready only after the relay stored the first upload, and uploads one batch', async () => {
    const relay = new FakeRelay();
    const store = new MemoryStore();
    await makeAccount(store, 'carol');
    const carol = await device(relay, 'carol', store);
    let stockAtReady = -1;
    carol.client.on((e) => {
      if (e.type === 'ready') stockAtReady = relay.users.get('carol')?.oneTime.length ?? -1;
    });
    await online(relay, carol);
    expect(stockAtReady).toBe(ONE_TIME_PREKEYS_TARGET);
    // The fake relay says "low" at welcome (stock 0), racing the first upload.
    await carol.client.requestPresence(); // a round trip: any second upload has arrived
    expect(relay.users.get('carol')?.oneTime.length).toBe(ONE_TIME_PREKEYS_TARGET);
  });

  it('a refused upload is reported and the next connection publishes again', async () => {
    const relay = new FakeRelay();
    const store = new MemoryStore();
    await makeAccount(store, 'dave');
    const dave = await device(relay, 'dave', store);
    relay.refuseUploads = true;
    relay.connect('dave', dave.client);
    await until(
      () =>
        dave.events.some(
          (e) => e.type === 'error' && e.error.message.includes('refused the prekey upload'),
        ),
      'refusal reported',
    );
    await until(() => dave.client.isReady, 'ready all the same');
    expect(relay.users.get('dave')?.oneTime.length).toBe(0);
    relay.users.get('dave')?.conn?.close();
    relay.refuseUploads = false;
    await online(relay, dave);
    await until(
      () => relay.users.get('dave')?.oneTime.length === ONE_TIME_PREKEYS_TARGET,
      'published on the next connection',
    );
  });
});
