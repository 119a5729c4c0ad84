/// <reference lib="dom" />
/**
 * Test page for the browser platform against a real relay that serves this page:
 * create and unlock profiles, connect over the page-origin WebSocket, send and read,
 * and the profile lock seen from a second tab. Called through `page.evaluate`.
 */
import { MIN_KDF_MEMORY_KIB } from '@parley/client';
import { createWebProfile, openWebClient } from '../../src/platform/profile.js';
import type { WebClient } from '../../src/platform/profile.js';
import type { ConnectionState } from '@parley/client';
import { rawDump } from './raw-dump.js';

const KDF = { memoryKiB: MIN_KDF_MEMORY_KIB, iterations: 1 };
let web: WebClient | undefined;
const states: ConnectionState['kind'][] = [];

function describe(err: unknown): string {
  return `error:${String((err as { code?: string }).code)}:${(err as Error).message}`;
}

const api = {
  async create(name: string, passphrase: string): Promise<string> {
    try {
      return (await createWebProfile({ name, passphrase, kdf: KDF })).status;
    } catch (err) {
      return describe(err);
    }
  },
  async open(profile: string, passphrase: string): Promise<string> {
    try {
      const r = await openWebClient({ profile, passphrase });
      if (r.status !== 'open') return r.status;
      web = r.web;
      web.connection.onState((s) => states.push(s.kind));
      return 'open';
    } catch (err) {
      return describe(err);
    }
  },
  /** Opens once the tab holding the profile lets go. */
  async openWhenFree(profile: string, passphrase: string): Promise<string> {
    try {
      const r = await openWebClient({ profile, passphrase, waitForOtherTab: true });
      if (r.status !== 'open') return r.status;
      web = r.web;
      return 'open';
    } catch (err) {
      return describe(err);
    }
  },
  async connect(): Promise<string> {
    try {
      await web?.connect(20_000);
      return web?.client.isReady ? 'ready' : 'not ready';
    } catch (err) {
      return describe(err);
    }
  },
  async send(peer: string, text: string): Promise<string> {
    if (!web) return 'closed';
    return (await web.client.send(peer, text)).status;
  },
  async messages(peer: string): Promise<{ direction: string; text: string; status: string }[]> {
    if (!web) return [];
    return (await web.client.messages(peer)).map((m) => ({
      direction: m.direction,
      text: m.text,
      status: m.status,
    }));
  },
  states: () => states.join(','),
  drop: () => web?.connection.dropConnection(),
  async close(): Promise<void> {
    await web?.close();
    web = undefined;
  },
  url: () => web?.account.info.server ?? '',
  rawDump,
};
(globalThis as unknown as { parleyTest: typeof api }).parleyTest = api;
document.title = 'ready';
