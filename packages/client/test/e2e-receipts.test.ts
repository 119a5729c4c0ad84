/**
 * End to end with the real relay (TLS 1.3 mtls, SQLite) and real profiles: the receipt
 * that the relay kept while the sender was offline (its device receipt, `on-device`) and
 * the recipient's end-to-end receipt (`delivered`, waiting in the sender's mailbox)
 * survive a sender that goes away before it has committed them. The relay sends both
 * again on the next login (`receipt.stored`, `deliver`), the client acks each only after
 * committing, and once acked they never come back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ClientEvent, StoreWrite } from '@parley/client';
import { openNodeClient } from '@parley/client-node';
import type { NodeClient } from '@parley/client-node';
import type { RunningRelay } from '@parley/server';
import { PASS, crypto, startMtlsPair, until } from './e2e-helpers.js';

const root = mkdtempSync(join(tmpdir(), 'parley-e2e-receipts-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A client on `profile` that records the frame types it receives and its events. */
async function open(
  profile: string,
): Promise<{ c: NodeClient; frames: string[]; events: ClientEvent[] }> {
  const c = await openNodeClient({ profile, passphrase: PASS, crypto });
  const frames: string[] = [];
  const events: ClientEvent[] = [];
  const handle = c.client.handleFrame.bind(c.client);
  c.client.handleFrame = (f) => {
    frames.push(f.type);
    return handle(f);
  };
  c.client.on((e) => events.push(e));
  return { c, frames, events };
}

/** Relayed items the relay counted as delivered (acked by their recipient). */
async function deliveredCount(relay: RunningRelay): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${relay.adminPort}/metrics`)).text();
  return Number(/parley_messages_total\{outcome="delivered"\} (\d+)/.exec(text)?.[1] ?? 0);
}

describe('end to end: receipts kept for an offline sender', () => {
  it('mtls: the sender drops before committing its receipts; the next login still ends "delivered", and an acked receipt never returns', async () => {
    const { relay, profiles } = await startMtlsPair(root);
    try {
      {
        const { c: bob } = await open(profiles.bob);
        await bob.connect();
        await bob.client.requestPresence(); // round trip: the prekey upload has been processed
        await bob.close();
      }

      // Alice writes to offline bob ("queued") and leaves.
      let { c: alice } = await open(profiles.alice);
      await alice.connect();
      const m = await alice.client.send('bob', 'kept receipt');
      await alice.client.waitForStatus('bob', m.id, 'queued', 20_000);
      await alice.close();

      // Bob receives and acks while alice is offline: the relay keeps "delivered" for her.
      const before = await deliveredCount(relay);
      const { c: bob } = await open(profiles.bob);
      await bob.connect();
      await until(async () => (await bob.client.messages('alice')).length === 1, 'bob has it');
      await until(async () => (await deliveredCount(relay)) > before, 'relay saw the ack');
      await bob.close();

      // First login: the kept receipts arrive, but the process "dies" before its store
      // commits any new status (so it must not have acked them).
      const first = await open(profiles.alice);
      alice = first.c;
      let crashed = false;
      const commit = alice.store.commit.bind(alice.store);
      alice.store.commit = (writes: readonly StoreWrite[]) => {
        if (writes.some((w) => w.op === 'message.status' && w.id === m.id)) {
          crashed = true;
          return Promise.reject(new Error('simulated crash before the commit'));
        }
        return commit(writes);
      };
      await alice.connect();
      await until(() => crashed, 'the kept receipt reached the client');
      expect(first.frames).toContain('receipt.stored');
      await alice.close();

      // Second login: the relay still has it; this time it is applied (and acked).
      const second = await open(profiles.alice);
      alice = second.c;
      expect((await alice.client.messages('bob')).map((x) => x.status)).toEqual(['queued']);
      await alice.connect();
      await alice.client.waitForStatus('bob', m.id, 'delivered', 20_000);
      expect(second.frames).toContain('receipt.stored');
      expect(second.frames).toContain('deliver');
      await alice.close();

      // Later logins: the acked receipt is gone from the relay, so no status comes again.
      // (Bounded retry: the relay applies an ack sent just before a close asynchronously.)
      let repeats = -1;
      for (let attempt = 0; attempt < 20 && repeats !== 0; attempt++) {
        const later = await open(profiles.alice);
        await later.c.connect();
        await until(() => later.c.client.mailboxDrained, 'mailbox drained');
        repeats = later.frames.filter((t) => t === 'receipt.stored').length;
        // A repeat (an ack the relay had not applied yet) never changes what alice shows.
        expect(later.events.filter((e) => e.type === 'status' && e.id === m.id)).toEqual([]);
        await later.c.close();
      }
      expect(repeats).toBe(0);
      const last = await open(profiles.alice);
      expect((await last.c.client.messages('bob')).map((x) => x.status)).toEqual(['delivered']);
      await last.c.close();
    } finally {
      await relay.close();
    }
  }, 120_000);
});
