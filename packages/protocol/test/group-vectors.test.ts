/**
 * Published group-layer vectors: the code must reproduce parley-group-v1.json byte for
 * byte with both providers, and the first message must be readable with nothing but
 * node:crypto (OpenSSL) and docs/protocol.md §18, as an outside implementer would.
 */
import { createDecipheriv, createHmac, createPublicKey, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createPortableCrypto, fromHex } from '@parley/crypto';
import { createNodeCrypto } from '@parley/crypto/node';
import {
  applyGroupChange,
  deserializeIncomingSenderChains,
  type GroupMembership,
} from '@parley/protocol';
import { buildGroupVectors, type GroupVectors } from './vectors/group-build.js';

const published = JSON.parse(
  readFileSync(new URL('./vectors/parley-group-v1.json', import.meta.url), 'utf8'),
) as GroupVectors;

describe('group known-answer vectors', () => {
  for (const [name, make] of [
    ['portable', createPortableCrypto],
    ['node', createNodeCrypto],
  ] as const) {
    it(`are reproduced exactly by the ${name} provider`, () => {
      expect(buildGroupVectors(make)).toEqual(published);
    });
  }

  it('cover what they claim: every change kind, a refused replay, a removed member locked out', () => {
    expect(published.changes.map((c) => c.kind)).toEqual([
      'create',
      'add',
      'rename',
      'remove',
      'leave',
    ]);
    const outcomes = published.events.filter((e) => e.step === 'receive').map((e) => e.outcome);
    expect(outcomes).toContain('DUPLICATE_MESSAGE');
    const bobAfterRemoval = published.events.find(
      (e) => e.step === 'receive' && e.by === 'bob' && e.outcome === 'UNKNOWN_SENDER_CHAIN',
    );
    expect(bobAfterRemoval).toBeDefined();
    expect(published.events.filter((e) => e.step === 'chain' && e.by === 'alice').length).toBe(3);
    // Every member re-derives each published state from the change bytes alone.
    const crypto = createPortableCrypto();
    let s: GroupMembership | undefined;
    for (const c of published.changes) {
      s = applyGroupChange(crypto, s, fromHex(c.change));
      expect(Buffer.from(s.hash).toString('hex')).toBe(c.stateHash);
    }
    expect(
      deserializeIncomingSenderChains(fromHex(published.carolIncomingFromAliceState)).chainIds
        .length,
    ).toBe(3);
  });

  it('message 0 opens with OpenSSL and the byte layout of §18 alone', () => {
    const dist = Buffer.from(published.events[0]?.distribution ?? '', 'hex');
    const sent = published.events.find((e) => e.step === 'send' && e.id === 0);
    const msg = Buffer.from(sent?.message ?? '', 'hex');
    // Distribution: 0x04 ‖ 0x01 ‖ groupId 16 ‖ chainId u32 ‖ iteration u32 ‖ CK 32 ‖ signing key 32.
    expect(dist.length).toBe(90);
    const chainKey = dist.subarray(26, 58);
    const signingKey = dist.subarray(58, 90);
    const user = Buffer.from(published.parties.alice.address.userId, 'utf8');
    const addr = Buffer.concat([Buffer.of(user.length), user, Buffer.of(0, 0, 0, 1)]);
    // Signature over label ‖ address(sender) ‖ everything before the signature.
    const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), signingKey]);
    const publicKey = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    const signed = Buffer.concat([
      Buffer.from('Parley v1 group message'),
      addr,
      msg.subarray(0, msg.length - 64),
    ]);
    expect(verify(null, signed, publicKey, msg.subarray(msg.length - 64))).toBe(true);
    // Message key = HMAC(CK, 0x01); the nonce follows the iteration; AD = header ‖ address(sender).
    const messageKey = createHmac('sha256', chainKey).update(Buffer.of(1)).digest();
    const header = msg.subarray(0, 38);
    const sealed = msg.subarray(38, msg.length - 64);
    const d = createDecipheriv('aes-256-gcm', messageKey, header.subarray(26, 38));
    d.setAAD(Buffer.concat([header, addr]));
    d.setAuthTag(sealed.subarray(sealed.length - 16));
    const padded = Buffer.concat([d.update(sealed.subarray(0, sealed.length - 16)), d.final()]);
    expect(padded[0]).toBe(0); // stored, not compressed
    const len = padded.readUInt32BE(1);
    expect(padded.subarray(5, 5 + len).toString('utf8')).toBe(sent?.plaintext);
    expect(msg.length % 3840).toBe(0);
  });
});
