/**
 * Row shapes shared by the relay's SQL backends (SQLite and PostgreSQL: same columns, blobs
 * as Buffer, integers as numbers) and their conversion to the store's records.
 */
import type { DeviceRecord, MailItem, MailKind, OneTimePrekey, SignedPrekey } from './types.js';

export interface DeviceRow {
  name: string;
  device_id: number;
  identity_key: Buffer;
  certificate: Buffer | null;
  registered_at: number;
}
export interface KeyRow {
  kind?: string;
  id: number;
  public_key: Buffer;
  signature: Buffer | null;
}
export interface MailRow {
  id: number;
  r_name: string;
  r_device: number;
  s_name: string;
  s_device: number;
  client_id: Buffer;
  kind: string;
  payload: Buffer;
  stored_at: number;
  expires_at: number;
}

/** What a remembered group upload yields (`group_uploads`): its first copy's id. */
export interface UploadRow {
  first_id: number;
}

export const bytes = (b: Buffer): Uint8Array =>
  new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

export function toDevice(r: DeviceRow): DeviceRecord {
  return {
    name: r.name,
    deviceId: r.device_id,
    identityKey: bytes(r.identity_key),
    ...(r.certificate ? { certificate: bytes(r.certificate) } : {}),
    registeredAt: r.registered_at,
  };
}
export function toSigned(r: KeyRow): SignedPrekey {
  return {
    id: r.id,
    publicKey: bytes(r.public_key),
    signature: bytes(r.signature ?? Buffer.alloc(0)),
  };
}
export function toOneTime(r: KeyRow): OneTimePrekey {
  return {
    id: r.id,
    publicKey: bytes(r.public_key),
    ...(r.signature ? { signature: bytes(r.signature) } : {}),
  };
}
export function toMail(r: MailRow): MailItem {
  return {
    serverMessageId: r.id,
    recipient: { name: r.r_name, deviceId: r.r_device },
    sender: { name: r.s_name, deviceId: r.s_device },
    clientMessageId: bytes(r.client_id),
    kind: r.kind as MailKind,
    payload: bytes(r.payload),
    storedAt: r.stored_at,
    expiresAt: r.expires_at,
  };
}
