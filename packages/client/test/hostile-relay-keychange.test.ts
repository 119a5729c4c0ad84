/**
 * M41/M30, open mode: a contact the user verified gets a different key from the relay
 * (here a hostile relay, hostile-relay.ts, substituting the bundle when a new session
 * is needed). The warning comes ("key-changed"), but the message that needed the new
 * session must not already be encrypted to the new key and handed to the relay: that
 * is exactly what an attacker holding that key wants. Held until the user accepts the
 * new key (as Signal does for a verified contact), nothing leaves the device.
 *
 * Fails on the code of this branch: the client warns and sends anyway.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerFrame } from '@parley/wire';
import { until } from './e2e-helpers.js';
import {
  impostorIdentity,
  passThrough,
  sendOf,
  startBehindHostileRelay,
  substitutedBundle,
  trap,
  type Victim,
} from './hostile-relay.js';

const root = mkdtempSync(join(tmpdir(), 'parley-hostile-keychange-'));
let setup: Awaited<ReturnType<typeof startBehindHostileRelay>>;
let alice: Victim;
let carol: Victim;

beforeAll(async () => {
  setup = await startBehindHostileRelay(root, ['alice', 'carol'], 'open');
  carol = await setup.connect('carol');
  alice = await setup.connect('alice');
}, 120_000);

afterAll(async () => {
  await setup?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('a verified contact whose key the relay changes (M30)', () => {
  it('nothing is encrypted to the new key before the user accepts it', async () => {
    const first = await alice.c.client.send('carol', 'honest first contact');
    await alice.c.client.waitForStatus('carol', first.id, 'delivered', 20_000);
    await alice.c.client.markVerified('carol');
    await alice.c.client.terminate('carol');
    await until(() => carol.events.some((e) => e.type === 'session-ended'), 'carol sees the end');

    const impostor = impostorIdentity();
    const t = trap(
      (x) => x.leg === 'down' && x.name === 'alice' && x.frame.type === 'keys.bundle',
      (x) => [
        substitutedBundle(x.frame as Extract<ServerFrame, { type: 'keys.bundle' }>, impostor),
      ],
    );
    setup.hostile.policy = t.policy;
    const from = setup.hostile.seen.length;
    await alice.c.client.send('carol', 'after verification').catch(() => undefined);
    expect(t.hits).toBe(1);
    setup.hostile.policy = passThrough;
    await until(() => alice.events.some((e) => e.type === 'key-changed'), 'alice is warned');
    // A round trip on the same connection: a send made before it has reached the relay.
    await alice.c.client.requestPresence();
    const sent = setup.hostile.seen.slice(from).filter((x) => sendOf(x, 'alice', 'carol'));
    expect(sent, 'messages encrypted to the unaccepted key and sent').toEqual([]);
    const status = (await alice.c.client.messages('carol')).find(
      (m) => m.text === 'after verification',
    )?.status;
    expect(['queued', 'on-device', 'delivered']).not.toContain(status);
  });
});
