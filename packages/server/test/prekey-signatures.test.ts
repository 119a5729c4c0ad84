/**
 * The relay checks the signatures of uploaded prekeys against the device's registered
 * identity key (docs/protocol.md §4.1) and keeps nothing of an upload that fails:
 * generic `failed`, audit `prekeys.rejected` naming the part. Real TLS 1.3 on 127.0.0.1
 * (mtls and open mode), real SQLite.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assemblePreKeyBundle,
  generateOneTimeKemPreKeys,
  IdentityKeyPair,
  publicKemPreKey,
  verifyPreKeyBundle,
} from '@parley/protocol';
import {
  asEd25519PublicKey,
  asEd25519Signature,
  asMlKem768PublicKey,
  asX25519PublicKey,
} from '@parley/crypto';
import type { ClientFrame, ServerFrame } from '@parley/wire';
import { crypto, prekeyUpload, startHarness, TestClient, until, type Harness } from './helpers.js';

type Upload = Extract<ClientFrame, { type: 'prekeys.upload' }>;

/** A copy of `sig` with one bit flipped. */
const flipped = (sig: Uint8Array): Uint8Array => {
  const out = sig.slice();
  out[7] = (out[7] as number) ^ 0x01;
  return out;
};

/** Sends `upload` and returns the relay's answer: an `error`, or undefined if none came. */
async function answerTo(c: TestClient, upload: Upload): Promise<ServerFrame | undefined> {
  c.send(upload);
  // A presence round trip: the relay handles one connection's frames in order, so any
  // answer to the upload is in before the list result.
  c.send({ type: 'presence.list', requestId: 1 });
  await c.next('presence.list.result');
  const i = c.frames.findIndex((f) => f.type === 'error');
  return i < 0 ? undefined : c.frames.splice(i, 1)[0];
}

function rejections(h: Harness, identity: string): string[] {
  return h
    .audit()
    .filter((r) => r.type === 'prekeys.rejected' && r.identity === identity)
    .map((r) => r.code ?? '');
}

/** Looks `name` up from `c`: the bundle, or the error. */
async function lookup(c: TestClient, name: string, requestId: number): Promise<ServerFrame> {
  c.send({ type: 'keys.lookup', requestId, name });
  await until(() => c.has('keys.bundle') || c.has('error'), 'lookup answer');
  const i = c.frames.findIndex((f) => f.type === 'keys.bundle' || f.type === 'error');
  return c.frames.splice(i, 1)[0] as ServerFrame;
}

describe('prekey signatures checked by the relay (mtls)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ auth: 'mtls' });
  });
  afterAll(async () => {
    await h.close();
  });

  it('refuses each badly signed part, keeps nothing of it, audits it, and keeps the connection', async () => {
    const bobCreds = await h.credentials('sbob');
    const mallory = await h.credentials('smallory');
    const bob = await TestClient.connect(h, bobCreds);
    await bob.hello();
    const alice = await TestClient.connect(h, await h.credentials('salice'));
    await alice.hello();

    const good = prekeyUpload(5, bobCreds.identity);
    const bad: [string, Upload][] = [
      [
        'bad-signature:identity-dh',
        {
          ...good,
          identityDh: {
            publicKey: good.identityDh?.publicKey ?? new Uint8Array(32),
            signature: flipped(good.identityDh?.signature ?? new Uint8Array(64)),
          },
        },
      ],
      [
        'bad-signature:signed-prekey',
        {
          ...good,
          signedPrekey: {
            id: 1,
            publicKey: good.signedPrekey?.publicKey ?? new Uint8Array(32),
            signature: flipped(good.signedPrekey?.signature ?? new Uint8Array(64)),
          },
        },
      ],
      // A signature over another id is a bad signature too (ids are signed).
      [
        'bad-signature:pq-prekey',
        {
          ...good,
          pqLastResort: {
            id: 3,
            publicKey: good.pqLastResort?.publicKey ?? new Uint8Array(1184),
            signature: good.pqLastResort?.signature ?? new Uint8Array(64),
          },
        },
      ],
      // Validly signed, but by another identity: the key the relay registered decides.
      ['bad-signature:identity-dh', prekeyUpload(5, mallory.identity)],
    ];
    for (const [code, upload] of bad) {
      const answer = await answerTo(bob, upload);
      expect(answer).toMatchObject({ type: 'error', code: 'failed' });
      expect(bob.closed).toBe(false);
      // Nothing was stored: bob still has no bundle.
      expect(await lookup(alice, 'sbob', 1)).toMatchObject({ type: 'error', code: 'failed' });
      await until(() => rejections(h, 'sbob').includes(code), `audit ${code}`);
    }
    expect(rejections(h, 'sbob')).toEqual([
      'bad-signature:identity-dh',
      'bad-signature:signed-prekey',
      'bad-signature:pq-prekey',
      'bad-signature:identity-dh',
    ]);

    // The correctly signed upload is accepted and serves a bundle peers can verify.
    expect(await answerTo(bob, good)).toBeUndefined();
    const b = await lookup(alice, 'sbob', 2);
    if (b.type !== 'keys.bundle') throw new Error(`expected a bundle, got ${b.type}`);
    const verified = verifyPreKeyBundle(
      crypto,
      assemblePreKeyBundle({
        identity: {
          signingKey: asEd25519PublicKey(b.identityKey),
          dhKey: asX25519PublicKey(b.identityDh.publicKey),
          dhSignature: asEd25519Signature(b.identityDh.signature),
        },
        signedPreKey: {
          id: b.signedPrekey.id,
          publicKey: asX25519PublicKey(b.signedPrekey.publicKey),
          signature: asEd25519Signature(b.signedPrekey.signature),
        },
        kemPreKey: {
          id: b.pqPrekey.id,
          publicKey: asMlKem768PublicKey(b.pqPrekey.publicKey),
          signature: asEd25519Signature(b.pqPrekey.signature),
        },
      }),
    );
    expect(verified.identity.signingKey).toEqual(bobCreds.identity.publicKey);

    // A later batch of one-time PQ keys with one bad signature is refused as a whole.
    const id = IdentityKeyPair.fromSeed(crypto, bobCreds.identity.secretKey);
    const pq = generateOneTimeKemPreKeys(crypto, id, 500, 3, Date.now()).map(publicKemPreKey);
    id.destroy();
    const batch: Upload = {
      type: 'prekeys.upload',
      oneTime: [],
      oneTimePq: pq.map((k, i) => ({
        id: k.id,
        publicKey: k.publicKey,
        signature: i === 1 ? flipped(k.signature) : k.signature,
      })),
    };
    expect(await answerTo(bob, batch)).toMatchObject({ type: 'error', code: 'failed' });
    await until(
      () => rejections(h, 'sbob').includes('bad-signature:pq-one-time-prekey'),
      'audit of the PQ batch',
    );
    // None of the batch was kept: the next bundle still has the last-resort PQ key (id 2).
    const after = await lookup(alice, 'sbob', 3);
    expect(after).toMatchObject({ type: 'keys.bundle', pqPrekey: { id: 2 } });
    // The same batch, correctly signed, is accepted.
    expect(await answerTo(bob, { ...batch, oneTimePq: pq })).toBeUndefined();
    expect(await lookup(alice, 'sbob', 4)).toMatchObject({
      type: 'keys.bundle',
      pqPrekey: { id: 500 },
    });
    alice.close();
    bob.close();
  });
});

describe('prekey signatures checked by the relay (open mode)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ auth: 'open' });
  });
  afterAll(async () => {
    await h.close();
  });

  it('checks against the key the name was registered with', async () => {
    const dave = crypto.ed25519.generateKeyPair();
    const other = crypto.ed25519.generateKeyPair();
    const c = await TestClient.connect(h);
    expect((await c.openAuth('register', 'dave', dave)).type).toBe('welcome');
    expect(await answerTo(c, prekeyUpload(3, other))).toMatchObject({
      type: 'error',
      code: 'failed',
    });
    await until(() => rejections(h, 'dave').length === 1, 'audit');
    expect(rejections(h, 'dave')).toEqual(['bad-signature:identity-dh']);
    expect(await answerTo(c, prekeyUpload(3, dave))).toBeUndefined();
    expect(await lookup(c, 'dave', 9)).toMatchObject({ type: 'keys.bundle', name: 'dave' });
    c.close();
  });
});
