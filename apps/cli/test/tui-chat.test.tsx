/**
 * The chat UI rendered in memory (ink-testing-library) over a real client core and
 * store with no network: conversation list with unread counts, timestamps and status
 * marks, the key-change banner, typing and sending, the help screen.
 */
import React from 'react';
import { render } from 'ink-testing-library';
import { afterEach, describe, expect, it } from 'vitest';
import { createPortableCrypto } from '@parley/crypto';
import { Account, MemoryStore, ParleyClient, createProtocolE2ee } from '@parley/client';
import type { StoredMessage } from '@parley/client';
import type { NodeClient } from '@parley/client-node';
import { ChatApp } from '../src/tui/chat.js';

const crypto = createPortableCrypto();
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

const msg = (
  m: Partial<StoredMessage> & Pick<StoredMessage, 'id' | 'peer' | 'text'>,
): StoredMessage => ({
  direction: 'in',
  sentAt: Date.UTC(2026, 0, 1, 9, 30),
  storedAt: 1,
  status: 'received',
  shown: false,
  ...m,
});

async function harness(): Promise<NodeClient> {
  const store = new MemoryStore();
  await store.commit(
    Account.creationWrites(
      {
        name: 'alice',
        deviceId: 1,
        server: 'wss://relay.test/ws',
        mode: 'open',
        registered: true,
        createdAt: 1,
      },
      crypto.randomBytes(32),
    ),
  );
  await store.commit([
    {
      op: 'message.put',
      message: msg({
        id: 'c0',
        peer: 'carol',
        text: 'first try',
        direction: 'out',
        status: 'failed',
        shown: true,
      }),
    },
    { op: 'message.put', message: msg({ id: 'c1', peer: 'carol', text: 'carol one' }) },
    { op: 'message.put', message: msg({ id: 'c2', peer: 'carol', text: 'carol two' }) },
    { op: 'message.put', message: msg({ id: 'b1', peer: 'bob', text: 'hello alice' }) },
    {
      op: 'message.put',
      message: msg({
        id: 'b2',
        peer: 'bob',
        text: 'sent one',
        direction: 'out',
        status: 'delivered',
        shown: true,
      }),
    },
    {
      op: 'message.put',
      message: msg({
        id: 'b3',
        peer: 'bob',
        text: 'sent two',
        direction: 'out',
        status: 'queued',
        shown: true,
      }),
    },
    {
      op: 'contact.put',
      contact: {
        name: 'dave',
        deviceId: 1,
        identityKey: new Uint8Array(32).fill(2),
        previousIdentityKey: new Uint8Array(32).fill(1),
        trust: 'key-changed',
        addedAt: 1,
        updatedAt: 2,
      },
    },
  ]);
  const account = await Account.load(store, crypto);
  const client = new ParleyClient({ store, crypto, e2ee: createProtocolE2ee(crypto), account });
  return {
    client,
    store,
    account,
    transport: undefined as never,
    connect: async () => undefined,
    close: async () => client.close(),
  };
}

/** Bounded wait: generous because CI runs other test files on the same 2 cores. */
const FRAME_WAIT_LIMIT_MS = 20_000;
const FRAME_POLL_MS = 20;

async function frameMatching(lastFrame: () => string | undefined, re: RegExp): Promise<string> {
  let f = '';
  for (let waited = 0; waited < FRAME_WAIT_LIMIT_MS; waited += FRAME_POLL_MS) {
    f = lastFrame() ?? '';
    if (re.test(f)) return f;
    await new Promise((r) => setTimeout(r, FRAME_POLL_MS));
  }
  throw new Error(`frame never matched ${re}:\n${f}`);
}

describe('chat UI', () => {
  it('shows conversations, unread counts, status marks and the key-change banner', async () => {
    const c = await harness();
    const ui = render(<ChatApp c={c} />);
    cleanups.push(() => ui.unmount());
    const f = await frameMatching(ui.lastFrame, /hello alice/);
    expect(f).toContain('alice (open)');
    expect(f).toMatch(/carol \(2\)/); // two unread in the other conversation
    expect(f).toMatch(/bob: hello alice/);
    expect(f).toMatch(/me: sent one ✓✓/);
    expect(f).toMatch(/me: sent two ✓(?!✓)/);
    expect(f).toMatch(/\d\d:\d\d bob/);
    expect(f).toMatch(/dave: identity key changed! Verify with \/verify/);
    // Viewing bob's conversation marked it read; carol's stays unread.
    let unread: (number | undefined)[] = [];
    for (let n = 0; n < 100; n++) {
      const conv = await c.store.listConversations();
      unread = ['bob', 'carol'].map((p) => conv.find((x) => x.peer === p)?.unread);
      if (unread[0] === 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(unread).toEqual([0, 2]);
    for (const line of f.split('\n')) expect(line.length).toBeLessThanOrEqual(80);
  });

  it('typing: Down selects the next conversation, /help opens the help screen, Esc returns', async () => {
    const c = await harness();
    const ui = render(<ChatApp c={c} />);
    cleanups.push(() => ui.unmount());
    await frameMatching(ui.lastFrame, /bob>/);
    ui.stdin.write('\u001b[B'); // Down
    await frameMatching(ui.lastFrame, /carol>/);
    await frameMatching(ui.lastFrame, /carol: carol two/);
    // A message whose recipient's keys were refused shows why it is not moving.
    await frameMatching(ui.lastFrame, /me: first try ✗ not sent/);
    ui.stdin.write('/help\r');
    await frameMatching(ui.lastFrame, /\/to NAME\s+open a conversation/);
    ui.stdin.write('\u001b');
    await frameMatching(ui.lastFrame, /carol>/);
    ui.stdin.write('hello while offline\r');
    // Offline and without a session: the message is kept (encrypted store) as sending,
    // to be encrypted and sent once connected; nothing is lost or refused.
    const f = await frameMatching(ui.lastFrame, /me: hello while offline …/);
    expect(f).not.toMatch(/not sent: /);
    expect(f).not.toMatch(/hello while offline ✗/);
    const stored = await c.store.listMessages('carol');
    expect(stored.map((m) => [m.direction, m.text, m.status])).toContainEqual([
      'out',
      'hello while offline',
      'sending',
    ]);
    expect(await c.store.listOutbox()).toEqual([]);
  });

  it('long conversations fit the screen: newest messages shown, wrapped lines counted', async () => {
    const c = await harness();
    const long = Array.from({ length: 30 }, (_, i) => ({
      op: 'message.put' as const,
      message: msg({ id: `l${i}`, peer: 'bob', text: `long ${i} ${'word '.repeat(30)}` }),
    }));
    await c.store.commit(long);
    const ui = render(<ChatApp c={c} />);
    cleanups.push(() => ui.unmount());
    const f = await frameMatching(ui.lastFrame, /long 29 word/);
    const lines = f.split('\n');
    expect(lines.length).toBeLessThanOrEqual(24);
    expect(f).toMatch(/^Type \/help for commands\.$/m); // the notice line is not overwritten
    expect(f).toMatch(/^bob>/m);
    expect(f).toContain('bob: no key yet');
    expect(f).not.toContain('long 0 ');
  });
});
