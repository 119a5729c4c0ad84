/**
 * Row shapes of the relay's PostgreSQL tables and their conversion to the store's
 * records (`bytea` arrives as Buffer; bigint columns are read as numbers, see
 * `postgres-pool.ts`).
 */

export type { DeviceRow, KeyRow, MailRow, UploadRow } from './rows.js';
export { bytes, toDevice, toMail, toOneTime, toSigned } from './rows.js';

export const buf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
