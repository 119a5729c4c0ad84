/** Published known-answer vectors (M43): the code must reproduce parley-v1.json byte for byte. */
import { createCipheriv } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createPortableCrypto, createSeededRandom, fromHex } from '@parley/crypto';
import { createNodeCrypto } from '@parley/crypto/node';
import {
  ENVELOPE_UNIT_BYTES,
  MAX_SINGLE_UNIT_PLAINTEXT_BYTES,
  PQ_RATCHET_INTERVAL_CHAINS,
  decodePreKeyBundle,
  decrypt,
  deserializeSession,
  envelopeKind,
  parsePreKeyMessage,
  verifyPreKeyBundle,
  type Session,
} from '@parley/protocol';
import { buildVectors, type Vectors } from './vectors/build.js';
import type { Conversation, ReceiveStep, SendStep } from './vectors/conversations.js';

const published = JSON.parse(
  readFileSync(new URL('./vectors/parley-v1.json', import.meta.url), 'utf8'),
) as Vectors;

describe('known-answer vectors', () => {
  it('draw from the generator docs/protocol.md §13 specifies: ChaCha20, counter 0, a fresh block per draw', () => {
    const seed = fromHex(published.alice.randomSeed);
    // OpenSSL's ChaCha20 (an independent implementation): IV = u32le counter ‖ 12-byte nonce.
    const stream = createCipheriv('chacha20', seed, new Uint8Array(16)).update(new Uint8Array(384));
    const block = (from: number, length: number) =>
      new Uint8Array(stream.subarray(from * 64, from * 64 + length));
    const draw = createSeededRandom(seed);
    expect(draw(32)).toEqual(block(0, 32));
    expect(draw(12)).toEqual(block(1, 12));
    expect(draw(64)).toEqual(block(2, 64));
    expect(draw(65)).toEqual(block(3, 65)); // two blocks; the rest of block 4 is dropped
    expect(draw(1)).toEqual(block(5, 1));
  });
  it('has the published shape: a prekey message first, ordinary messages after the first reply', () => {
    expect(published.messages.length).toBeGreaterThanOrEqual(8);
    const kinds = published.messages.map((m) => envelopeKind(fromHex(m.envelope)));
    expect(kinds[0]).toBe('prekey');
    expect(kinds[1]).toBe('prekey'); // Alice has not heard from Bob yet
    expect(kinds.at(-1)).toBe('message');
    expect(() =>
      verifyPreKeyBundle(createPortableCrypto(), decodePreKeyBundle(fromHex(published.bobBundle))),
    ).not.toThrow();
  });
  // Messages 6 and 7 are Alice's next chain; later ones depend on Bob's fresh ratchet key,
  // which this restored copy (drawing other randomness) does not share.
  it('reads the published saved state (v1 format) and continues the conversation from it', () => {
    const crypto = createPortableCrypto();
    let bob: Session = deserializeSession(fromHex(published.bobStateAfterMessage5));
    for (const m of published.messages.slice(6, 8)) {
      const r = decrypt({ crypto, now: () => 1_760_000_000_000 }, bob, fromHex(m.envelope), {
        sender: published.alice.address,
        recipient: published.bob.address,
        messageType: m.messageType,
        timestampMs: m.timestampMs,
      });
      bob = r.session;
      expect(new TextDecoder().decode(r.plaintext)).toBe(m.plaintext);
    }
  });
  const conversation = (name: string): Conversation => {
    const c = published.conversations.find((x) => x.name === name);
    if (!c) throw new Error(`no conversation ${name}`);
    return c;
  };
  const sends = (c: Conversation): SendStep[] =>
    c.steps.filter((s): s is SendStep => s.op === 'send');
  const receives = (c: Conversation): ReceiveStep[] =>
    c.steps.filter((s): s is ReceiveStep => s.op === 'receive');

  it('the conversations cover loss, reordering, duplicates and several earlier chains', () => {
    const c = conversation('reorder-and-pq');
    const got = receives(c);
    // Out of order: some message is read before one sent earlier by the same party.
    const order = got.filter((r) => r.outcome === 'ok').map((r) => r.id);
    expect(order.some((id, i) => order.slice(i + 1).some((later) => later < id))).toBe(true);
    expect(got.filter((r) => r.outcome === 'DUPLICATE_MESSAGE').length).toBeGreaterThanOrEqual(2);
    // Late messages from at least four distinct earlier chains (sender, chain).
    const byId = new Map(sends(c).map((s) => [s.id, s]));
    const earlier = new Set(
      got
        .filter((r) => r.path === 'earlier-chain')
        .map((r) => `${byId.get(r.id)?.from}:${byId.get(r.id)?.chain}`),
    );
    expect(earlier.size).toBeGreaterThanOrEqual(4);
    expect(got.some((r) => r.path === 'current' && r.skippedKeysHeld > 0)).toBe(true);
  });

  it('the conversations run past the first post-quantum round in both directions', () => {
    const c = conversation('reorder-and-pq');
    const all = sends(c);
    const first = (from: 'alice' | 'bob', what: string) =>
      all.findIndex((s) => s.from === from && s.headerKem.includes(what));
    // Bob's advertisement comes with his 32nd sending chain (his first chain counts,
    // it is made by a DH step); Alice's initial chain does not count, so hers is the 33rd.
    const bobAdvert = all[first('bob', 'publicKey')] as SendStep;
    const aliceAdvert = all[first('alice', 'publicKey')] as SendStep;
    expect(bobAdvert.chain).toBe(PQ_RATCHET_INTERVAL_CHAINS - 1);
    expect(aliceAdvert.chain).toBe(PQ_RATCHET_INTERVAL_CHAINS);
    // Each is answered by the peer's next chain, and messages follow both rounds.
    const aliceCt = first('alice', 'ciphertext');
    const bobCt = first('bob', 'ciphertext');
    expect(aliceCt).toBeGreaterThan(first('bob', 'publicKey'));
    expect(bobCt).toBeGreaterThan(first('alice', 'publicKey'));
    expect(all.length - Math.max(aliceCt, bobCt)).toBeGreaterThanOrEqual(4);
    const ctReads = receives(c).filter(
      (r) => r.outcome === 'ok' && all.find((s) => s.id === r.id)?.headerKem.includes('ciphertext'),
    );
    expect(ctReads.some((r) => r.by === 'bob')).toBe(true);
    expect(ctReads.some((r) => r.by === 'alice')).toBe(true);
  });

  it('the conversations include a compressed, a multi-unit and an OPK-less initial message', () => {
    const c = conversation('no-one-time-prekey');
    const all = sends(c);
    expect(decodePreKeyBundle(fromHex(c.bobBundle)).oneTimePreKey).toBeUndefined();
    const initial = all[0] as SendStep;
    expect(parsePreKeyMessage(fromHex(initial.envelope)).oneTimePreKeyId).toBeUndefined();
    // More plaintext than one unit holds, in one unit: only compression makes it fit.
    const compressed = all.find(
      (s) => s.plaintextHex.length / 2 > MAX_SINGLE_UNIT_PLAINTEXT_BYTES && s.units === 1,
    );
    expect(compressed).toBeDefined();
    expect(all.some((s) => s.units >= 2)).toBe(true);
    for (const s of all) expect(fromHex(s.envelope).length).toBe(s.units * ENVELOPE_UNIT_BYTES);
  });

  for (const [name, make] of [
    ['portable', createPortableCrypto],
    ['node', createNodeCrypto],
  ] as const) {
    it(`reproduces every byte with the ${name} provider`, () => {
      const built = buildVectors(make);
      // Compared part by part first, so a failure names the part that moved.
      expect(built.messages).toEqual(published.messages);
      for (const [i, c] of built.conversations.entries()) {
        expect(c, c.name).toEqual(published.conversations[i]);
      }
      expect(built).toEqual(published);
    });
  }
});
