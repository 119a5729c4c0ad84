/**
 * The wire layer over a real WebSocket on 127.0.0.1 (plain ws: TLS is the relay's
 * concern, and record sizes are checked there). Proves that what `ws` hands over is
 * accepted as-is, that every message in both directions is exactly one block, and
 * that multi-block frames survive a real socket.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import {
  BLOCK_BYTES,
  FrameReader,
  FrameWriter,
  validateBlockSize,
  type ClientFrame,
  type ServerFrame,
} from '@parley/wire';

let server: WebSocketServer;
let url: string;
const serverSawSizes: number[] = [];

beforeAll(async () => {
  server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  server.on('connection', (ws) => {
    const reader = new FrameReader({ direction: 'toServer', now: () => 0 });
    const writer = new FrameWriter();
    const send = (f: ServerFrame) => {
      for (const b of writer.write(f)) ws.send(b);
    };
    ws.on('message', (data, isBinary) => {
      const checked = validateBlockSize(data, isBinary);
      serverSawSizes.push(checked.ok ? checked.value.length : -1);
      if (!checked.ok) return ws.close(1008);
      const frame: ClientFrame | undefined = reader.push(checked.value);
      if (frame?.type === 'ping') send({ type: 'pong', timestamp: frame.timestamp });
      if (frame?.type === 'send') {
        send({
          type: 'deliver',
          serverMessageId: 1,
          kind: 'message',
          from: frame.from,
          timestamp: 7,
          payload: frame.payload,
        });
      }
    });
  });
});

afterAll(async () => {
  for (const c of server.clients) c.terminate();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

it('frames round-trip over a real socket, one block per message both ways', async () => {
  const ws = new WebSocket(url);
  await once(ws, 'open');
  const reader = new FrameReader({ direction: 'toClient', now: () => 0 });
  const writer = new FrameWriter();
  const clientSawSizes: number[] = [];
  const received: ServerFrame[] = [];
  const done = new Promise<void>((resolve) => {
    ws.on('message', (data, isBinary) => {
      const checked = validateBlockSize(data, isBinary);
      clientSawSizes.push(checked.ok ? checked.value.length : -1);
      if (!checked.ok) return;
      const f = reader.push(checked.value);
      if (f) received.push(f);
      if (received.length === 2) resolve();
    });
  });
  const payload = Uint8Array.from({ length: 20_000 }, (_, i) => i & 0xff);
  const frames: ClientFrame[] = [
    { type: 'ping', timestamp: 42 },
    {
      type: 'send',
      clientMessageId: new Uint8Array(16).fill(1),
      from: { name: 'alice', deviceId: 1 },
      to: { name: 'bob', deviceId: 1 },
      payload,
    },
  ];
  for (const f of frames) for (const b of writer.write(f)) ws.send(b);
  await done;
  ws.close();

  expect(received[0]).toEqual({ type: 'pong', timestamp: 42 });
  expect(received[1]).toMatchObject({ type: 'deliver', from: { name: 'alice', deviceId: 1 } });
  expect((received[1] as { payload: Uint8Array }).payload).toEqual(payload);
  // 1 ping block + 5 blocks for a 20 kB send; 1 pong + 5 deliver blocks back.
  expect(serverSawSizes).toEqual(new Array<number>(6).fill(BLOCK_BYTES));
  expect(clientSawSizes).toEqual(new Array<number>(6).fill(BLOCK_BYTES));
});

it.each([
  ['a short binary message', new Uint8Array(BLOCK_BYTES - 1)],
  ['a long binary message', new Uint8Array(BLOCK_BYTES + 1)],
  ['a text message of block size', 'x'.repeat(BLOCK_BYTES)],
] as const)('%s is refused before decoding', async (_name, message) => {
  const ws = new WebSocket(url);
  await once(ws, 'open');
  const before = serverSawSizes.length;
  ws.send(message);
  const [code] = (await once(ws, 'close')) as [number];
  expect(code).toBe(1008);
  expect(serverSawSizes.slice(before)).toEqual([-1]);
});
