/**
 * The chat UI rendered in memory (ink-testing-library) over a real client core and
 * store with no network: conversation list with unread counts, timestamps and status
 * marks, the key-change banner, typing and sending, the help screen.
 */
import React from 'react';
import { render } from 'ink-testing-library';
import { afterEach, describe, expect, it } from 'vitest';
import { createPortableCrypto } from '@parley/crypto';
import {
  Account,
  MAX_MESSAGE_TEXT_BYTES,
  MemoryStore,
  ParleyClient,
  createProtocolE2ee,
} from '@parley/client';
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
      op: 'message.put',
      message: msg({
        id: 'b4',
        peer: 'bob',
        text: 'sent three',
        direction: 'out',
        status: 'on-device',
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
    expect(f).toMatch(/me: sent two ✓$/m);
    // The relay's word that the device has it is not the recipient's receipt.
    expect(f).toMatch(/me: sent three ✓ on device$/m);
    expect(f).toMatch(/\d\d:\d\d bob/);
    expect(f).toMatch(/dave: identity key changed! Verify with \/verify/);
    // Viewing bob's conversation marked it read; carol's stays unread.
    let unread: (number | undefined)[] = [];
    for (let waited = 0; unread[0] !== 0 && waited < FRAME_WAIT_LIMIT_MS; waited += FRAME_POLL_MS) {
      const conv = await c.store.listConversations();
      unread = ['bob', 'carol'].map((p) => conv.find((x) => x.peer === p)?.unread);
      if (unread[0] !== 0) await new Promise((r) => setTimeout(r, FRAME_POLL_MS));
    }
    expect(unread).toEqual([0, 2]);
    for (const line of f.split('\n')) expect(line.length).toBeLessThanOrEqual(80);
  });

  it('typing: Down selects the next conversation, /help opens the help screen, Esc returns', async () => {
    const c = await harness();
    // The reason the core recorded when the recipient's keys were refused.
    c.client.sendFailure = async (peer, id) =>
      peer === 'carol' && id === 'c0'
        ? { code: 'NOT_FOUND', reason: 'carol: unknown to the relay' }
        : undefined;
    const ui = render(<ChatApp c={c} />);
    cleanups.push(() => ui.unmount());
    await frameMatching(ui.lastFrame, /bob>/);
    ui.stdin.write('\u001b[B'); // Down
    await frameMatching(ui.lastFrame, /carol>/);
    await frameMatching(ui.lastFrame, /carol: carol two/);
    // A message whose recipient's keys were refused shows why it is not moving.
    await frameMatching(ui.lastFrame, /me: first try ✗ not sent: carol: unknown to the relay/);
    ui.stdin.write('/help\r');
    await frameMatching(ui.lastFrame, /\/to NAME\s+open a conversation/);
    ui.stdin.write('\u001b');
    await frameMatching(ui.lastFrame, /carol>/);
    ui.stdin.write('hello while offline\r');
    // Offline and without a session: the message is kept (encrypted store) as sending,
    // to be encrypted and sent once connected; nothing is lost or refused.
    const f = await frameMatching(ui.lastFrame, /me: hello while offline …/);
    expect(f).not.toMatch(/^not sent: /m); // no refusal on the notice line
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

/** Writes `keys` and waits (bounded) for a frame different from `before`. */
async function pressUntilChanged(
  ui: { stdin: { write: (s: string) => void }; lastFrame: () => string | undefined },
  keys: string,
  before: string,
): Promise<string> {
  ui.stdin.write(keys);
  for (let waited = 0; waited < FRAME_WAIT_LIMIT_MS; waited += FRAME_POLL_MS) {
    const f = ui.lastFrame() ?? '';
    if (f !== before) return f;
    await new Promise((r) => setTimeout(r, FRAME_POLL_MS));
  }
  throw new Error(`the frame did not change after ${JSON.stringify(keys)}:\n${before}`);
}

describe('chat UI: scrollback, long messages, paste', () => {
  const PAGE_UP = '\u001b[5~';
  const PAGE_DOWN = '\u001b[6~';

  it('PgUp pages back through the whole stored history (older pages read from the store); PgDn and End return', async () => {
    const c = await harness();
    await c.store.commit(
      Array.from({ length: 250 }, (_, i) => ({
        op: 'message.put' as const,
        message: msg({ id: `h${i}`, peer: 'bob', text: `history line ${i} end`, shown: true }),
      })),
    );
    const ui = render(<ChatApp c={c} />);
    cleanups.push(() => ui.unmount());
    let f = await frameMatching(ui.lastFrame, /history line 249 end/);
    expect(f).not.toMatch(/history line 200 end/);
    // Press PgUp until the first message shows; each press must move the view.
    for (let presses = 0; !/history line 0 end/.test(f); presses++) {
      expect(presses).toBeLessThan(40);
      f = await pressUntilChanged(ui, PAGE_UP, f);
    }
    expect(f).toMatch(/start of the conversation · PgUp older · PgDn newer/);
    expect(f).not.toMatch(/history line 249 end/);
    ui.stdin.write(PAGE_DOWN);
    await frameMatching(ui.lastFrame, /history line \d+ end[\s\S]*PgDn newer/);
    ui.stdin.write('\u001b[F'); // End
    f = await frameMatching(ui.lastFrame, /history line 249 end/);
    expect(f).toMatch(/^Type \/help for commands\.$/m);
    for (const line of f.split('\n')) expect(line.length).toBeLessThanOrEqual(100);
  });

  it('scrolled back, new messages arriving do not move the lines being read', async () => {
    const c = await harness();
    const put = (from: number, to: number) =>
      c.store.commit(
        Array.from({ length: to - from }, (_, k) => ({
          op: 'message.put' as const,
          message: msg({
            id: `a${from + k}`,
            peer: 'bob',
            text: `anchor ${from + k} end`,
            shown: true,
          }),
        })),
      );
    await put(0, 60);
    const ui = render(<ChatApp c={c} />);
    cleanups.push(() => ui.unmount());
    let f = await frameMatching(ui.lastFrame, /anchor 59 end/);
    f = await pressUntilChanged(ui, PAGE_UP, f);
    const firstShown = (frame: string): string | undefined => /anchor (\d+) end/.exec(frame)?.[1];
    const before = firstShown(f);
    expect(before).toBeDefined();
    expect(f).not.toMatch(/anchor 59 end/);
    await put(60, 65);
    // Reloading the conversation (leaving the help screen re-reads the store).
    ui.stdin.write('/help\r');
    await frameMatching(ui.lastFrame, /\/to NAME\s+open a conversation/);
    ui.stdin.write('\u001b');
    f = await frameMatching(ui.lastFrame, /PgDn newer/);
    expect(firstShown(f)).toBe(before);
    ui.stdin.write('\u001b[F'); // End
    await frameMatching(ui.lastFrame, /anchor 64 end/);
  });

  it('a 10 KB message is wrapped and shown (its end at once, its start with PgUp)', async () => {
    const c = await harness();
    const words = Array.from({ length: 2000 }, (_, i) => `w${i}`).join(' ');
    const text = `BEGIN-OF-LONG ${words} END-OF-LONG`;
    expect(text.length).toBeGreaterThan(10_000);
    await c.store.commit([
      { op: 'message.put', message: msg({ id: 'big', peer: 'bob', text, shown: true }) },
    ]);
    const ui = render(<ChatApp c={c} />);
    cleanups.push(() => ui.unmount());
    let f = await frameMatching(ui.lastFrame, /END-OF-LONG/);
    expect(f).toMatch(/w1999 END-OF-LONG/);
    expect(f).toMatch(/^bob>/m);
    expect(f.split('\n').length).toBeLessThanOrEqual(24);
    for (let n = 0; !/BEGIN-OF-LONG/.test(f); n++) {
      expect(n).toBeLessThan(20);
      f = await pressUntilChanged(ui, PAGE_UP, f);
    }
    expect(f).toMatch(/\d\d:\d\d bob: BEGIN-OF-LONG w0 w1/);
  });

  it('a bracketed paste of three lines is one message; Alt+Enter adds a line; Enter sends', async () => {
    const c = await harness();
    const ui = render(<ChatApp c={c} />);
    cleanups.push(() => ui.unmount());
    await frameMatching(ui.lastFrame, /bob>/);
    ui.stdin.write('\u001b[200~first pasted\rsecond pasted\rthird pasted\u001b[201~');
    await frameMatching(ui.lastFrame, /third pasted/);
    ui.stdin.write('\u001b\r'); // Alt+Enter
    ui.stdin.write('typed after');
    await frameMatching(ui.lastFrame, /typed after/);
    ui.stdin.write('\r');
    const f = await frameMatching(ui.lastFrame, /me: first pasted\n[\s\S]*third pasted/);
    expect(f).toMatch(/typed after …/);
    const sent = (await c.store.listMessages('bob')).filter(
      (m) => m.direction === 'out' && m.text.includes('pasted'),
    );
    expect(sent.map((m) => m.text)).toEqual([
      'first pasted\nsecond pasted\nthird pasted\ntyped after',
    ]);
  });
});

describe('chat UI: refusing what cannot be sent', () => {
  it('a paste longer than a message can hold is not sent and stays in the input', async () => {
    const c = await harness();
    const ui = render(<ChatApp c={c} />);
    cleanups.push(() => ui.unmount());
    await frameMatching(ui.lastFrame, /bob>/);
    const text = `TOO-LONG ${'x'.repeat(MAX_MESSAGE_TEXT_BYTES)} TAIL-MARK`;
    ui.stdin.write(`\u001b[200~${text}\u001b[201~`);
    await frameMatching(ui.lastFrame, /TAIL-MARK/);
    ui.stdin.write('\r');
    const f = await frameMatching(ui.lastFrame, /not sent: \d+ bytes, a message holds at most/);
    expect(f).toMatch(/TAIL-MARK/); // still in the input
    expect((await c.store.listMessages('bob')).some((m) => m.text.includes('TOO-LONG'))).toBe(
      false,
    );
  });
});
