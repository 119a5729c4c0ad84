/** Published known-answer vectors (M43): the code must reproduce parley-v1.json byte for byte. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createPortableCrypto, fromHex } from '@parley/crypto';
import { createNodeCrypto } from '@parley/crypto/node';
import {
  decodePreKeyBundle,
  decrypt,
  deserializeSession,
  envelopeKind,
  verifyPreKeyBundle,
  type Session,
} from '@parley/protocol';
import { buildVectors, type Vectors } from './vectors/build.js';

const published = JSON.parse(
  readFileSync(new URL('./vectors/parley-v1.json', import.meta.url), 'utf8'),
) as Vectors;

describe('known-answer vectors', () => {
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
  for (const [name, make] of [
    ['portable', createPortableCrypto],
    ['node', createNodeCrypto],
  ] as const) {
    it(`reproduces every byte with the ${name} provider`, () => {
      expect(buildVectors(make)).toEqual(published);
    });
  }
});
