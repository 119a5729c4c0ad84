/**
 * Rules every backend applies to a group upload before storing it, kept in one place so
 * the backends cannot drift: which listed devices count, and the key an upload is
 * remembered under for retries.
 */
import type { Address, NewGroupMail } from './types.js';

/** Mailbox key of a device, as the backends index their in-memory state. */
export const deviceKey = (a: Address): string => `${a.deviceId}:${a.name}`;

/** The listed devices, each once, in the order first listed (copy ids follow it). */
export function distinctRecipients(mail: NewGroupMail): Address[] {
  const seen = new Set<string>();
  const out: Address[] = [];
  for (const r of mail.recipients) {
    const k = deviceKey(r);
    if (seen.has(k)) continue;
    seen.add(k);
    out.push({ name: r.name, deviceId: r.deviceId });
  }
  return out;
}

/** Key of an upload (sender and client message id): what a retry is recognised by. */
export const uploadKey = (sender: Address, clientMessageId: Uint8Array): string =>
  `${deviceKey(sender)}:${Buffer.from(clientMessageId).toString('hex')}`;
