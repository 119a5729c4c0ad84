/**
 * The shared backup file format: records round-trip through a sealed file, a recovery
 * key opens it however it is typed, and every bad input is a clear typed error.
 */
import { describe, expect, it } from 'vitest';
import { createPortableCrypto, utf8Decode, utf8Encode } from '@parley/crypto';
import {
  BACKUP_FORMAT_VERSION,
  BACKUP_HEADER_BYTES,
  MIN_KDF_MEMORY_KIB,
  backupCounts,
  newRecoveryKey,
  openBackup,
  readBackupHeader,
  sealBackup,
} from '@parley/client';
import type { StoreWrite } from '@parley/client';

const crypto = createPortableCrypto();
const kdf = { memoryKiB: MIN_KDF_MEMORY_KIB, iterations: 1 };
const records: StoreWrite[] = [
  { op: 'meta.put', key: 'account', value: utf8Encode('{"name":"alice"}') },
  { op: 'session.put', peer: 'bob', deviceId: 1, state: new Uint8Array([1, 2, 3]) },
  {
    op: 'message.put',
    message: {
      id: '00'.repeat(16),
      peer: 'bob',
      direction: 'in',
      text: 'the secret harbour plan',
      sentAt: 1,
      storedAt: 2,
      status: 'received',
      shown: true,
      expiresAt: 99,
    },
  },
  { op: 'seen.add', key: 'k' },
];

describe('backup format', () => {
  it('round-trips records, bytes included, under a passphrase', async () => {
    const file = await sealBackup({
      crypto,
      records,
      secret: { kind: 'passphrase', value: 'pw' },
      kdf,
    });
    expect(utf8Decode(file.subarray(0, 8))).toBe('PARLEYBK');
    expect(readBackupHeader(file)).toMatchObject({
      version: BACKUP_FORMAT_VERSION,
      secret: 'passphrase',
    });
    expect(Buffer.from(file).includes(Buffer.from('harbour'))).toBe(false);
    const opened = await openBackup(crypto, file, 'pw');
    expect(opened).toEqual({ version: BACKUP_FORMAT_VERSION, records });
    expect(backupCounts(records)).toEqual({ messages: 1, contacts: 0, sessions: 1 });
  });

  it('restores an outbox from before typed records as typed records', async () => {
    const legacy = [
      {
        op: 'message.put',
        message: {
          id: 'm1',
          peer: 'bob',
          direction: 'out',
          text: 'hello',
          sentAt: 1,
          storedAt: 1,
          status: 'sending',
          shown: true,
        },
      },
      {
        op: 'outbox.put',
        entry: {
          id: 'm1',
          peer: 'bob',
          deviceId: 1,
          payload: new Uint8Array([1]),
          createdAt: 1,
          attempts: 0,
        },
      },
      {
        op: 'meta.put',
        key: 'outbox:w0',
        value: utf8Encode('{"frame":"send","kind":"msg","message":"m1"}'),
      },
      { op: 'meta.put', key: 'account', value: utf8Encode('{}') },
    ] as unknown as StoreWrite[];
    const file = await sealBackup({
      crypto,
      records: legacy,
      secret: { kind: 'passphrase', value: 'pw' },
      kdf,
    });
    const opened = await openBackup(crypto, file, 'pw');
    if (opened.version !== BACKUP_FORMAT_VERSION) throw new Error('format');
    expect(opened.records.filter((w) => w.op === 'meta.put').map((w) => w.key)).toEqual([
      'account',
    ]);
    const entries = opened.records.flatMap((w) => (w.op === 'outbox.put' ? [w.entry] : []));
    expect(entries.map((e) => [e.id, e.peer, e.frame, e.kind, e.message, e.state])).toEqual([
      ['m1', 'bob', 'send', 'msg', 'm1', 'pending'],
      ['w0', 'bob', 'send', 'msg', 'm1', 'sent'],
    ]);
  });

  it('a recovery key opens it in lower case and without dashes; anything else is refused', async () => {
    const key = newRecoveryKey(crypto);
    expect(key).toMatch(/^([A-Z2-7]{4}-){7}[A-Z2-7]{4}$/);
    const file = await sealBackup({
      crypto,
      records,
      secret: { kind: 'recovery-key', value: key },
      kdf,
    });
    const typed = key.toLowerCase().replaceAll('-', ' ');
    expect((await openBackup(crypto, file, typed)).version).toBe(BACKUP_FORMAT_VERSION);
    await expect(openBackup(crypto, file, 'AAAA-BBBB')).rejects.toMatchObject({
      code: 'WRONG_PASSPHRASE',
    });
    const altered = file.slice();
    altered[BACKUP_HEADER_BYTES + 5] = (altered[BACKUP_HEADER_BYTES + 5] as number) ^ 1;
    await expect(openBackup(crypto, altered, key)).rejects.toMatchObject({
      code: 'WRONG_PASSPHRASE',
    });
    const header = file.slice();
    header[9] = 7; // the secret kind
    expect(() => readBackupHeader(header)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(() => readBackupHeader(utf8Encode('not a backup at all, not at all'))).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    const future = file.slice();
    future[8] = 9;
    expect(() => readBackupHeader(future)).toThrow(/backup format 9 is not supported/);
    await expect(
      sealBackup({ crypto, records, secret: { kind: 'passphrase', value: '' }, kdf }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
