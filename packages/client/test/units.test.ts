/**
 * Small units of the client core: the application envelope codec, trust transitions,
 * the per-peer queue, and that secret-holding objects never print their secrets.
 */
import { inspect } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createPortableCrypto, toHex, utf8Decode, utf8Encode } from '@parley/crypto';
import { MAX_SINGLE_UNIT_PLAINTEXT_BYTES } from '@parley/protocol';
import {
  Account,
  KeyedQueue,
  MAX_MESSAGE_TEXT_BYTES,
  MAX_RECEIPT_IDS,
  REPAIR_REASONS,
  nextStatus,
  relayReceiptStatus,
  statusRank,
  MemoryStore,
  decodeEnvelope,
  encodeEnvelope,
  markVerified,
  observeIdentityKey,
} from '@parley/client';
import type { Envelope, MessageStatus } from '@parley/client';

const crypto = createPortableCrypto();

describe('envelope', () => {
  it('round-trips any message', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<'msg' | 'end'>('msg', 'end'),
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.string({ maxLength: 200 }),
        (kind, id, sentAt, body) => {
          const e: Envelope = { kind, id: toHex(id), sentAt, body };
          expect(decodeEnvelope(encodeEnvelope(e))).toEqual(e);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('round-trips receipts and resets, byte for byte as documented', () => {
    const hexId = fc.uint8Array({ minLength: 16, maxLength: 16 }).map(toHex);
    fc.assert(
      fc.property(
        hexId,
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.array(hexId, { minLength: 1, maxLength: MAX_RECEIPT_IDS }),
        fc.constantFrom(...REPAIR_REASONS),
        (id, sentAt, ids, why) => {
          const r: Envelope = { kind: 'rcpt', id, sentAt, ids };
          expect(decodeEnvelope(encodeEnvelope(r))).toEqual(r);
          const x: Envelope = { kind: 'reset', id, sentAt, why };
          expect(decodeEnvelope(encodeEnvelope(x))).toEqual(x);
        },
      ),
      { numRuns: 100 },
    );
    const id = 'ab'.repeat(16);
    expect(utf8Decode(encodeEnvelope({ kind: 'rcpt', id, sentAt: 5, ids: [id] }))).toBe(
      `{"v":1,"t":"rcpt","id":"${id}","at":5,"ids":["${id}"]}`,
    );
    expect(utf8Decode(encodeEnvelope({ kind: 'reset', id, sentAt: 5, why: 'no-session' }))).toBe(
      `{"v":1,"t":"reset","id":"${id}","at":5,"why":"no-session"}`,
    );
    // A full receipt still fits one envelope unit, so it is one wire block.
    const full = encodeEnvelope({
      kind: 'rcpt',
      id,
      sentAt: Number.MAX_SAFE_INTEGER,
      ids: Array.from({ length: MAX_RECEIPT_IDS }, () => id),
    });
    expect(full.length).toBeLessThanOrEqual(MAX_SINGLE_UNIT_PLAINTEXT_BYTES);
    const tooMany = Array.from({ length: MAX_RECEIPT_IDS + 1 }, () => id);
    expect(() => encodeEnvelope({ kind: 'rcpt', id, sentAt: 1, ids: tooMany })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    for (const b of [
      `{"v":1,"t":"rcpt","id":"${id}","at":1,"ids":[]}`,
      `{"v":1,"t":"rcpt","id":"${id}","at":1,"ids":["short"]}`,
      `{"v":1,"t":"rcpt","id":"${id}","at":1,"ids":"${id}"}`,
      `{"v":1,"t":"rcpt","id":"${id}","at":1,"ids":${JSON.stringify(tooMany)}}`,
      `{"v":1,"t":"reset","id":"${id}","at":1,"why":"because"}`,
      `{"v":1,"t":"reset","id":"${id}","at":1}`,
    ])
      expect(() => decodeEnvelope(utf8Encode(b))).toThrow(
        expect.objectContaining({ code: 'PROTOCOL' }),
      );
  });

  it('rejects malformed or oversized envelopes with PROTOCOL, and over-long text on encode', () => {
    const bad = [
      '',
      'null',
      '[]',
      '{"v":2,"t":"msg","id":"00000000000000000000000000000000","at":1,"body":""}',
      '{"v":1,"t":"xyz","id":"00000000000000000000000000000000","at":1,"body":""}',
      '{"v":1,"t":"msg","id":"short","at":1,"body":""}',
      '{"v":1,"t":"msg","id":"00000000000000000000000000000000","at":-1,"body":""}',
      '{"v":1,"t":"msg","id":"00000000000000000000000000000000","at":1,"body":5}',
    ];
    for (const b of bad)
      expect(() => decodeEnvelope(utf8Encode(b))).toThrow(
        expect.objectContaining({ code: 'PROTOCOL' }),
      );
    expect(() => decodeEnvelope(new Uint8Array([0xff, 0xfe]))).toThrow(
      expect.objectContaining({ code: 'PROTOCOL' }),
    );
    const long = 'x'.repeat(MAX_MESSAGE_TEXT_BYTES + 1);
    expect(() =>
      encodeEnvelope({ kind: 'msg', id: '0'.repeat(32), sentAt: 1, body: long }),
    ).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('delivery status rules', () => {
  const outgoing: MessageStatus[] = ['sending', 'queued', 'on-device', 'delivered', 'failed'];

  it("the relay's receipts never give delivered, never lower a status, never revive a failed one", () => {
    expect(relayReceiptStatus('queued')).toBe('queued');
    expect(relayReceiptStatus('delivered')).toBe('on-device');
    for (const current of outgoing) {
      for (const wire of ['queued', 'delivered'] as const) {
        const next = nextStatus(current, relayReceiptStatus(wire));
        expect(next).not.toBe('delivered');
        if (next !== undefined) expect(statusRank(next)).toBeGreaterThan(statusRank(current));
        if (current === 'delivered' || current === 'failed') expect(next).toBeUndefined();
      }
    }
  });

  it("only the recipient's receipt gives delivered, from any outgoing status", () => {
    for (const current of outgoing) {
      expect(nextStatus(current, 'delivered')).toBe(
        current === 'delivered' ? undefined : 'delivered',
      );
    }
    expect(nextStatus('received', 'delivered')).toBeUndefined();
  });
});

describe('trust', () => {
  const k1 = new Uint8Array(32).fill(1);
  const k2 = new Uint8Array(32).fill(2);

  it('TOFU, CA attestation, key change and re-verification', () => {
    const first = observeIdentityKey(undefined, 'bob', 1, k1, false, 10);
    expect(first.contact.trust).toBe('unverified');
    expect(first.changed).toBe(true);
    const same = observeIdentityKey(first.contact, 'bob', 1, k1, false, 11);
    expect(same.changed).toBe(false);
    const attested = observeIdentityKey(first.contact, 'bob', 1, k1, true, 12);
    expect(attested.contact.trust).toBe('ca-attested');
    const changed = observeIdentityKey(attested.contact, 'bob', 1, k2, false, 13);
    expect(changed.keyChanged).toBe(true);
    expect(changed.contact.trust).toBe('key-changed');
    expect(changed.contact.previousIdentityKey).toEqual(k1);
    const verified = markVerified(changed.contact, 14);
    expect(verified.trust).toBe('verified');
    expect(verified.previousIdentityKey).toBeUndefined();
    // A later CA attestation does not override the user's own verification.
    expect(observeIdentityKey(verified, 'bob', 1, k2, true, 15).contact.trust).toBe('verified');
    expect(observeIdentityKey(undefined, 'carol', 1, k1, true, 16).contact.trust).toBe(
      'ca-attested',
    );
  });
});

describe('KeyedQueue', () => {
  it('runs one key in order, keeps going after a failure, and lets keys interleave', async () => {
    const q = new KeyedQueue();
    const log: string[] = [];
    const step = (k: string, i: number, ms: number, fail = false) =>
      q.run(k, async () => {
        await new Promise((r) => setTimeout(r, ms));
        log.push(`${k}${i}`);
        if (fail) throw new Error('boom');
      });
    const jobs = [step('a', 1, 20), step('a', 2, 1, true), step('a', 3, 1), step('b', 1, 1)];
    const results = await Promise.allSettled(jobs);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'rejected',
      'fulfilled',
      'fulfilled',
    ]);
    expect(log.filter((x) => x.startsWith('a'))).toEqual(['a1', 'a2', 'a3']);
    expect(log.indexOf('b1')).toBeLessThan(log.indexOf('a1'));
    await q.idle();
  });
});

describe('secrets are not printable', () => {
  it('Account shows only public parts in toString, JSON and inspect', async () => {
    const store = new MemoryStore();
    const seed = crypto.randomBytes(32);
    await store.commit(
      Account.creationWrites(
        {
          name: 'alice',
          deviceId: 1,
          server: 'wss://x/ws',
          mode: 'open',
          registered: false,
          createdAt: 1,
        },
        seed.slice(),
      ),
    );
    const a = await Account.load(store, crypto);
    const secretHex = toHex(seed);
    for (const printed of [
      String(a),
      JSON.stringify(a),
      inspect(a),
      inspect(a, { depth: 10, showHidden: true }),
    ]) {
      expect(printed).not.toContain(secretHex);
      expect(printed).toContain('alice');
    }
    expect(JSON.stringify(a)).toContain(toHex(a.keyPair.publicKey));
  });
});
