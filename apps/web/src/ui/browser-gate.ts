/**
 * The default profile gate: this browser's IndexedDB profile (platform/idb-store.ts)
 * on the relay that served the page, in open mode.
 *
 * Stopgap until the platform's profile, socket and single-writer lock modules land:
 * the WebSocket glue below (one wire block per message, reconnect with backoff) is the
 * minimum the UI needs to run against a real relay, and is to be replaced by the
 * platform's socket over the core's connection driver. It holds no Web Lock yet, so two
 * tabs of one profile are not kept apart by it.
 */
import { createPortableCrypto, zeroize } from '@parley/crypto';
import {
  Account,
  ClientError,
  DEFAULT_DEVICE_ID,
  ParleyClient,
  checkUserName,
  createProtocolE2ee,
} from '@parley/client';
import type { ClientStore } from '@parley/client';
import { FrameReader, FrameWriter } from '@parley/wire';
import type { ClientFrame } from '@parley/wire';
import { createIdbProfile, listIdbProfiles, openIdbProfile } from '../platform/idb-store.js';
import type { ChatSession, ProfileGate } from './session.js';

/** First reconnect delay and cap: a relay restart is barely noticed, a long outage not hammered. */
const RECONNECT_INITIAL_MS = 250;
const RECONNECT_MAX_MS = 15_000;

function relayUrl(): string {
  return `wss://${location.host}/ws`;
}

/** Keeps one WebSocket to the relay open for `client`, reconnecting until stopped. */
function connectLoop(client: ParleyClient, url: string): () => void {
  let stopped = false;
  let ws: WebSocket | undefined;
  let delay = RECONNECT_INITIAL_MS;
  let timer: ReturnType<typeof setTimeout> | undefined;
  client.on((e) => {
    if (e.type === 'ready') delay = RECONNECT_INITIAL_MS;
  });
  const open = (): void => {
    if (stopped) return;
    const sock = new WebSocket(url);
    sock.binaryType = 'arraybuffer';
    ws = sock;
    const writer = new FrameWriter();
    const reader = new FrameReader({ direction: 'toClient', now: () => Date.now() });
    sock.onopen = () =>
      client.connectionOpened({
        send: (frame: ClientFrame) => {
          if (sock.readyState !== WebSocket.OPEN) return false;
          for (const block of writer.write(frame)) sock.send(block);
          return true;
        },
      });
    sock.onmessage = (ev: MessageEvent) => {
      if (!(ev.data instanceof ArrayBuffer)) return sock.close(1003, 'binary only');
      let frame;
      try {
        frame = reader.push(new Uint8Array(ev.data));
      } catch {
        return sock.close(1002, 'malformed block');
      }
      if (frame) void client.handleFrame(frame);
    };
    sock.onclose = () => {
      if (ws !== sock) return;
      ws = undefined;
      client.connectionClosed();
      if (stopped) return;
      timer = setTimeout(open, delay);
      delay = Math.min(RECONNECT_MAX_MS, delay * 2);
    };
  };
  open();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    ws?.close(1000, 'closed');
  };
}

async function start(store: ClientStore): Promise<ChatSession> {
  const crypto = createPortableCrypto();
  const account = await Account.load(store, crypto);
  const client = new ParleyClient({ store, crypto, e2ee: createProtocolE2ee(crypto), account });
  const stop = connectLoop(client, relayUrl());
  let closed: Promise<void> | undefined;
  return {
    client,
    name: account.name,
    mode: account.info.mode,
    close: () =>
      (closed ??= (async () => {
        stop();
        await client.close();
        await store.close();
      })()),
  };
}

export function browserGate(): ProfileGate {
  const crypto = createPortableCrypto();
  const first = async (): Promise<string | undefined> => (await listIdbProfiles())[0];
  return {
    exists: async () => (await first()) !== undefined,
    storedName: first,
    create: async ({ name, passphrase }) => {
      const user = checkUserName(name, 'name');
      const store = await createIdbProfile(user, passphrase, { crypto });
      const seed = crypto.randomBytes(32);
      try {
        await store.commit(
          Account.creationWrites(
            {
              name: user,
              deviceId: DEFAULT_DEVICE_ID,
              server: relayUrl(),
              mode: 'open',
              registered: false,
              createdAt: Date.now(),
            },
            seed,
          ),
        );
      } catch (err) {
        await store.close();
        throw err;
      } finally {
        // The store sealed its own copy.
        zeroize(seed);
      }
      return start(store);
    },
    unlock: async (passphrase) => {
      const profile = await first();
      if (profile === undefined) throw new ClientError('PROFILE_NOT_FOUND', 'no profile here');
      return start(await openIdbProfile(profile, passphrase, { crypto }));
    },
  };
}
