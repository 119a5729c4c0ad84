/// <reference lib="dom" />
/**
 * bench:web's minimal harness page: the real platform (IndexedDB store, Web Lock,
 * page-origin socket, client core) behind a bare text box and message list, so the
 * bench times Enter in one browser to the text shown in the other without depending
 * on the UI's markup. Times are `performance.timeOrigin + performance.now()` (the
 * machine's clock, shared by both browsers).
 */
import { createWebProfile, openWebClient } from '../../apps/web/src/platform/profile.js';
import type { WebClient } from '../../apps/web/src/platform/profile.js';

const now = (): number => performance.timeOrigin + performance.now();
let web: WebClient | undefined;
let peer = '';
const shown = new Map<string, number>();
const entered = new Map<string, number>();
let unlockedAt = 0;

const input = document.createElement('textarea');
const list = document.createElement('ol');
document.body.append(input, list);

input.addEventListener('keydown', (e) => {
  if (e.key !== 'Enter' || e.shiftKey) return;
  e.preventDefault();
  const text = input.value;
  input.value = '';
  entered.set(text, now());
  void web?.client.send(peer, text);
});

function show(text: string): void {
  const li = document.createElement('li');
  li.textContent = text;
  list.append(li);
  // Shown = in the document; the next frame paints it.
  requestAnimationFrame(() => shown.set(text, now()));
}

const api = {
  async create(name: string, passphrase: string): Promise<string> {
    return (await createWebProfile({ name, passphrase })).status;
  },
  async unlock(name: string, passphrase: string, to: string): Promise<number> {
    const r = await openWebClient({ profile: name, passphrase });
    if (r.status !== 'open') throw new Error(r.status);
    web = r.web;
    peer = to;
    web.client.on((e) => {
      if (e.type === 'message' && e.message.direction === 'in') show(e.message.text);
    });
    await web.connect(30_000);
    unlockedAt = now();
    return unlockedAt - performance.timeOrigin;
  },
  unlockedMs: () => unlockedAt - performance.timeOrigin,
  enteredAt: (text: string) => entered.get(text) ?? 0,
  shownAt: (text: string) => shown.get(text) ?? 0,
  async close(): Promise<void> {
    await web?.close();
  },
};
(globalThis as unknown as { parleyBench: typeof api }).parleyBench = api;

// `#unlock=NAME&pass=P&to=PEER` unlocks at load, so "open to unlocked" starts at the
// navigation itself, not at a later call from the bench. (Bench only: a passphrase in a
// URL is no way to run the real app.)
const params = new URLSearchParams(location.hash.slice(1));
const auto = params.get('unlock');
if (auto) {
  api.unlock(auto, params.get('pass') ?? '', params.get('to') ?? '').then(
    () => (document.title = 'unlocked'),
    (err: unknown) => (document.title = `error: ${(err as Error).message}`),
  );
} else document.title = 'ready';
