/**
 * The client core keeps time only through the clock and timers it is given: a relay
 * that never confirms the first prekey upload holds `ready` back for exactly
 * `REQUEST_TIMEOUT_MS` of the injected time, with no host timer involved.
 */
import { describe, expect, it } from 'vitest';
import type { ClientFrame } from '@parley/wire';
import { Account, MemoryStore, ParleyClient, REQUEST_TIMEOUT_MS } from '@parley/client';
import type { ClientEvent, Timers } from '@parley/client';
import { crypto, e2ee, makeAccount, until } from './harness.js';

class ManualTimers implements Timers {
  now = 5_000_000;
  private next = 1;
  private readonly due = new Map<number, { at: number; fn: () => void }>();
  set(fn: () => void, delayMs: number): number {
    const id = this.next++;
    this.due.set(id, { at: this.now + delayMs, fn });
    return id;
  }
  clear(handle: unknown): void {
    this.due.delete(handle as number);
  }
  get pending(): number {
    return this.due.size;
  }
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      const first = [...this.due].sort((a, b) => a[1].at - b[1].at)[0];
      if (first === undefined || first[1].at > end) break;
      this.due.delete(first[0]);
      this.now = first[1].at;
      first[1].fn();
    }
    this.now = end;
  }
}

describe('the core on injected time', () => {
  it('an unconfirmed prekey upload times out on the injected timers, then the client is ready', async () => {
    const store = new MemoryStore();
    await makeAccount(store, 'erin');
    const time = new ManualTimers();
    const client = new ParleyClient({
      store,
      crypto,
      e2ee,
      account: await Account.load(store, crypto),
      clock: () => time.now,
      timers: time,
    });
    const events: ClientEvent[] = [];
    client.on((e) => events.push(e));
    const sent: ClientFrame[] = [];
    client.connectionOpened({ send: (f) => (sent.push(f), true) });
    expect(sent[0]).toMatchObject({ type: 'hello', timestamp: time.now });
    const welcome = client.handleFrame({
      type: 'welcome',
      version: 1,
      name: 'erin',
      deviceId: 1,
      sessionToken: new Uint8Array(0),
      expiresAt: 0,
      limits: {
        blockBytes: 4096,
        maxFrameBytes: 131072,
        maxPayloadBytes: 65536,
        rateLimitMessages: 100,
        rateLimitWindowMs: 5000,
      },
    });
    await until(() => sent.some((f) => f.type === 'prekeys.upload'), 'the first upload');
    await until(() => time.pending > 0, 'the upload bound is armed');
    time.advance(REQUEST_TIMEOUT_MS - 1);
    await new Promise((r) => setImmediate(r));
    expect(events.some((e) => e.type === 'ready')).toBe(false);
    time.advance(1);
    await welcome;
    expect(events.some((e) => e.type === 'error' && e.error.code === 'TIMEOUT')).toBe(true);
    expect(events.some((e) => e.type === 'ready')).toBe(true);
    await client.close();
  });
});
