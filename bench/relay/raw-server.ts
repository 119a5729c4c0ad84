/**
 * The baseline: node:https + ws with mutual TLS 1.3 (same CA, same server certificate,
 * same client certificates as the relay), forwarding each 4096-byte block to the other
 * end of its pair (named in the connection URL). In `receipts` mode it also answers
 * each data block with a receipt block to its sender. No framing, no checks, no
 * storage: the floor any relay on this stack pays for TLS and WebSocket alone. Which
 * blocks the load generator sends (acks or not) is its side of the mode: common.ts.
 *
 * Run as a child of run.ts with --expose-gc; argv: DATA_DIR [RAW_MODE].
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  BLOCK_BYTES,
  RAW_DATA,
  RAW_KIND_OFFSET,
  RAW_RECEIPT,
  memReply,
  send,
  type ServerCommand,
  type ServerReply,
} from './common.js';

const dataDir = process.argv[2] ?? '';
const withReceipts = process.argv[3] === 'receipts';
/** Receipts carry nothing the load generator reads but their kind; one block serves all. */
const RECEIPT = new Uint8Array(BLOCK_BYTES);
RECEIPT[RAW_KIND_OFFSET] = RAW_RECEIPT;
const pki = (f: string): string => readFileSync(join(dataDir, 'pki', f), 'utf8');

const server = createServer({
  key: pki('server.key'),
  cert: pki('server.crt'),
  ca: pki('ca.crt'),
  crl: pki('crl.pem'),
  requestCert: true,
  rejectUnauthorized: true,
  minVersion: 'TLSv1.3',
});
const wss = new WebSocketServer({ server, path: '/ws', perMessageDeflate: false });
const byName = new Map<string, WebSocket>();

wss.on('connection', (ws, req) => {
  const url = new URL(req.url ?? '/', 'https://x');
  const me = url.searchParams.get('me') ?? '';
  const to = url.searchParams.get('to') ?? '';
  byName.set(me, ws);
  ws.on('message', (data, isBinary) => {
    if (!isBinary) return;
    const block = data as Buffer;
    byName.get(to)?.send(block, { binary: true });
    if (withReceipts && block[RAW_KIND_OFFSET] === RAW_DATA) ws.send(RECEIPT, { binary: true });
  });
  ws.on('close', () => {
    if (byName.get(me) === ws) byName.delete(me);
  });
});

server.listen(0, '127.0.0.1', () => {
  const port = (server.address() as AddressInfo).port;
  send<ServerReply>({ type: 'ready', port, url: `wss://127.0.0.1:${port}/ws` });
});

process.on('message', (m: ServerCommand) => {
  if (m.cmd === 'mem') {
    send<ServerReply>(memReply(m.gc));
  } else {
    for (const ws of wss.clients) ws.terminate();
    server.close(() => process.exit(0));
    server.closeAllConnections();
  }
});
