/**
 * M41 in open mode, where no CA vouches for keys: what a hostile relay (hostile-relay.ts)
 * can do with the key directory, and what the user is shown. At first contact it can
 * hand out a key of its own: the client takes it on trust ("unverified"), and only a
 * comparison of safety numbers reveals it. Once a contact is verified, a different key
 * later is announced loudly ("key-changed"), never silently accepted.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProtocolE2ee } from '@parley/client';
import type { ServerFrame } from '@parley/wire';
import { crypto, until } from './e2e-helpers.js';
import {
  impostorIdentity,
  passThrough,
  startBehindHostileRelay,
  substitutedBundle,
  trap,
  type Victim,
} from './hostile-relay.js';

const root = mkdtempSync(join(tmpdir(), 'parley-hostile-open-'));
let setup: Awaited<ReturnType<typeof startBehindHostileRelay>>;
let alice: Victim;
let bob: Victim;
let carol: Victim;

beforeAll(async () => {
  setup = await startBehindHostileRelay(root, ['alice', 'bob', 'carol'], 'open');
  bob = await setup.connect('bob');
  carol = await setup.connect('carol');
  alice = await setup.connect('alice');
}, 120_000);

afterAll(async () => {
  await setup?.close();
  rmSync(root, { recursive: true, force: true });
});

const incoming = async (v: Victim, peer: string): Promise<string[]> =>
  (await v.c.client.messages(peer)).filter((m) => m.direction === 'in').map((m) => m.text);

/** The next key bundle the relay sends alice is replaced by one for a key it holds. */
function substituteNextBundle(): ReturnType<typeof trap> {
  const impostor = impostorIdentity();
  const t = trap(
    (x) => x.leg === 'down' && x.name === 'alice' && x.frame.type === 'keys.bundle',
    (x) => [substitutedBundle(x.frame as Extract<ServerFrame, { type: 'keys.bundle' }>, impostor)],
  );
  setup.hostile.policy = t.policy;
  return t;
}

describe('a hostile relay in open mode (M41, M30)', () => {
  it('first contact: a substituted key is taken on trust as "unverified"; the safety number gives it away', async () => {
    const t = substituteNextBundle();
    await alice.c.client.send('bob', 'meant for bob');
    expect(t.hits).toBe(1);
    setup.hostile.policy = passThrough;
    const contact = (await alice.c.client.contacts()).find((c) => c.name === 'bob');
    expect(contact?.trust).toBe('unverified');
    expect(
      Buffer.from(contact?.identityKey ?? []).equals(Buffer.from(bob.c.client.identityKey)),
    ).toBe(false);
    // What alice would compare with bob out of band is not what bob's real key gives.
    const shown = (await alice.c.client.safetyNumber('bob')).number.digits;
    const genuine = createProtocolE2ee(crypto).safetyNumber(
      { name: 'alice', identityKey: alice.c.client.identityKey },
      { name: 'bob', identityKey: bob.c.client.identityKey },
    ).digits;
    expect(shown).not.toBe(genuine);
  });

  it('a verified contact: a key substituted later is announced as "key-changed", not accepted quietly', async () => {
    const first = await alice.c.client.send('carol', 'honest first contact');
    await until(
      async () => (await incoming(carol, 'alice')).includes('honest first contact'),
      'carol reads it',
    );
    await alice.c.client.waitForStatus('carol', first.id, 'delivered', 20_000);
    await alice.c.client.markVerified('carol');
    // A new session needs a new bundle: the relay's chance.
    await alice.c.client.terminate('carol');
    await until(() => carol.events.some((e) => e.type === 'session-ended'), 'carol sees the end');
    const t = substituteNextBundle();
    const changedBefore = alice.events.filter((e) => e.type === 'key-changed').length;
    await alice.c.client.send('carol', 'after verification').catch(() => undefined);
    expect(t.hits).toBe(1);
    setup.hostile.policy = passThrough;
    await until(
      () => alice.events.filter((e) => e.type === 'key-changed').length > changedBefore,
      'alice is warned',
    );
    const contact = (await alice.c.client.contacts()).find((c) => c.name === 'carol');
    expect(contact?.trust).toBe('key-changed');
    expect(
      Buffer.from(contact?.previousIdentityKey ?? []).equals(
        Buffer.from(carol.c.client.identityKey),
      ),
    ).toBe(true);
    expect(await incoming(carol, 'alice')).not.toContain('after verification');
  });
});
