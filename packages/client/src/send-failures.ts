/**
 * Why an outgoing message was marked `failed`: meta `send-failure:<peer>:<id>` = UTF-8
 * JSON `{"code": ClientErrorCode, "reason": string}`, written in the batch that sets
 * the status, read by `ParleyClient.sendFailure` and `waitForStatus`.
 */
import { utf8Decode, utf8Encode } from '@parley/crypto';
import type { ClientErrorCode } from './errors.js';
import type { ClientStore, StoreWrite } from './store/types.js';

const META_SEND_FAILURE_PREFIX = 'send-failure:';

export interface SendFailure {
  readonly code: ClientErrorCode;
  readonly reason: string;
}

export function sendFailureWrite(peer: string, id: string, f: SendFailure): StoreWrite {
  return {
    op: 'meta.put',
    key: `${META_SEND_FAILURE_PREFIX}${peer}:${id}`,
    value: utf8Encode(JSON.stringify({ code: f.code, reason: f.reason })),
  };
}

export function sendFailureDelete(peer: string, id: string): StoreWrite {
  return { op: 'meta.delete', key: `${META_SEND_FAILURE_PREFIX}${peer}:${id}` };
}

export async function readSendFailure(
  store: ClientStore,
  peer: string,
  id: string,
): Promise<SendFailure | undefined> {
  const raw = await store.getMeta(`${META_SEND_FAILURE_PREFIX}${peer}:${id}`);
  return raw === undefined ? undefined : (JSON.parse(utf8Decode(raw)) as SendFailure);
}
