/**
 * Bus messages as text, for a bus between processes (Redis): JSON with the only byte
 * field (`clientMessageId`) in base64. Decoding checks the shape and throws a
 * `ServerError` naming what is wrong, so a malformed message from a peer is dropped
 * with a clear log line instead of reaching the router.
 */
import { ServerError } from '../errors.js';
import type { BusMessage } from './types.js';

export function encodeBusMessage(message: BusMessage): string {
  if (message.type === 'receipt') {
    return JSON.stringify({
      ...message,
      clientMessageId: Buffer.from(message.clientMessageId).toString('base64'),
    });
  }
  return JSON.stringify(message);
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const isInt = (v: unknown): v is number => Number.isSafeInteger(v);

function address(v: unknown, field: string): { name: string; deviceId: number } {
  if (!isObj(v) || typeof v.name !== 'string' || !isInt(v.deviceId)) {
    throw new ServerError('BUS', `bus message: ${field} is not an address`);
  }
  return { name: v.name, deviceId: v.deviceId };
}

function int(v: unknown, field: string): number {
  if (!isInt(v)) throw new ServerError('BUS', `bus message: ${field} is not an integer`);
  return v;
}

export function decodeBusMessage(text: string): BusMessage {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new ServerError('BUS', 'bus message: not JSON');
  }
  if (!isObj(v)) throw new ServerError('BUS', 'bus message: not an object');
  switch (v.type) {
    case 'presence':
      if (v.event !== 'join' && v.event !== 'leave') {
        throw new ServerError('BUS', 'bus message: presence event');
      }
      return { type: 'presence', event: v.event, device: address(v.device, 'device') };
    case 'presence.sync':
      return { type: 'presence.sync' };
    case 'mail':
      return {
        type: 'mail',
        recipient: address(v.recipient, 'recipient'),
        serverMessageId: int(v.serverMessageId, 'serverMessageId'),
      };
    case 'receipt':
      if (
        typeof v.clientMessageId !== 'string' ||
        (v.status !== 'queued' && v.status !== 'delivered')
      ) {
        throw new ServerError('BUS', 'bus message: receipt fields');
      }
      return {
        type: 'receipt',
        sender: address(v.sender, 'sender'),
        clientMessageId: new Uint8Array(Buffer.from(v.clientMessageId, 'base64')),
        status: v.status,
        serverMessageId: int(v.serverMessageId, 'serverMessageId'),
        timestamp: int(v.timestamp, 'timestamp'),
      };
    case 'prekeys.low':
      return {
        type: 'prekeys.low',
        device: address(v.device, 'device'),
        remainingOneTime: int(v.remainingOneTime, 'remainingOneTime'),
        remainingOneTimePq: int(v.remainingOneTimePq, 'remainingOneTimePq'),
      };
    case 'crl.reloaded':
      return { type: 'crl.reloaded' };
    default:
      throw new ServerError('BUS', 'bus message: unknown type');
  }
}
