/**
 * `identity.lookup` (docs/wire.md §4.2): a device's identity key, signed identity DH key
 * and (mtls) certificate, read without taking anything from its prekey stock. A client
 * that only needs to check who a key belongs to (a first message arrived, `verify`) asks
 * this instead of `keys.lookup`, which hands out one-time keys and so costs the owner one
 * of each per call.
 *
 * Owns: the answer to one lookup. Knows nothing of connections: the session sends it.
 */
import type { ClientFrame, ServerFrame } from '@parley/wire';
import type { RelayStore } from './storage/types.js';

type IdentityLookup = Extract<ClientFrame, { type: 'identity.lookup' }>;
type Answer = Extract<ServerFrame, { type: 'identity.result' | 'error' }>;

/**
 * The frame answering `frame`. An unknown device, or one that has not uploaded its
 * identity DH key yet, gets the uniform `failed` (M13), exactly as `keys.lookup` does.
 */
export async function answerIdentityLookup(
  store: Pick<RelayStore, 'getDevice' | 'getIdentityDh'>,
  frame: IdentityLookup,
): Promise<Answer> {
  const target = { name: frame.name, deviceId: frame.deviceId ?? 1 };
  const [device, identityDh] = await Promise.all([
    store.getDevice(target),
    store.getIdentityDh(target),
  ]);
  if (!device || !identityDh) {
    return { type: 'error', code: 'failed', requestId: frame.requestId };
  }
  return {
    type: 'identity.result',
    requestId: frame.requestId,
    name: device.name,
    deviceId: device.deviceId,
    identityKey: device.identityKey,
    identityDh,
    ...(device.certificate ? { certificate: device.certificate } : {}),
  };
}
