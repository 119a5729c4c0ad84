/**
 * The relay's `blob.*` handling over real TLS (mtls): chunk blocks are counted against
 * their own limit, not the block limits (an upload of more blocks than
 * `maxBlocksPerConnection` goes through), the chunk limit itself holds, chunks out of
 * order close the connection, and only complete blobs can be fetched, by anyone with the id.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobChunkCapacity } from '@parley/wire';
import { startHarness, TestClient, until, type Harness } from './helpers.js';

const chunkBytes = blobChunkCapacity(4096);
const blobId = (n: number): Uint8Array => new Uint8Array(16).fill(n);

async function connected(h: Harness, name: string): Promise<TestClient> {
  const c = await TestClient.connect(h, await h.credentials(name));
  await c.hello();
  return c;
}

describe('blob frames', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      config: {
        rateLimit: { maxBlocksPerConnection: 50, maxBlocksPerIdentity: 100 },
        attachments: { maxChunksPerConnection: 300 },
      },
    });
  });
  afterAll(() => h.close());

  const upload = async (c: TestClient, id: Uint8Array, count: number, from = 0): Promise<void> => {
    c.send({ type: 'blob.begin', requestId: 7, blobId: id, chunkCount: count, chunkBytes });
    for (let i = from; i < count; i++) {
      c.send({
        type: 'blob.chunk',
        blobId: id,
        index: i,
        data: new Uint8Array(chunkBytes).fill(i),
      });
    }
  };

  it('takes 200 chunk blocks where 50 other blocks are the limit; fetch returns them', async () => {
    const alice = await connected(h, 'alice');
    await upload(alice, blobId(1), 200);
    await until(
      () =>
        alice.frames.some((f) => f.type === 'blob.status' && f.chunksStored === 200) ||
        alice.closeCode !== undefined,
      'all chunks stored',
    );
    expect(alice.closeCode, JSON.stringify(h.audit().slice(-3))).toBeUndefined();
    const bob = await connected(h, 'bob');
    bob.send({ type: 'blob.fetch', requestId: 9, blobId: blobId(1), fromIndex: 150 });
    await until(() => bob.frames.filter((f) => f.type === 'blob.data').length === 50, 'data');
    const data = bob.frames.filter((f) => f.type === 'blob.data');
    expect(data.map((f) => f.index)).toEqual(Array.from({ length: 50 }, (_, i) => 150 + i));
    expect(data[0]?.data[0]).toBe(150);
    // Unknown or incomplete blobs: the uniform `failed`.
    bob.send({ type: 'blob.fetch', requestId: 10, blobId: blobId(99), fromIndex: 0 });
    await until(() => bob.frames.some((f) => f.type === 'error' && f.requestId === 10), 'error');
    alice.close();
    bob.close();
  });

  it('closes a connection that exceeds the chunk limit, or sends chunks out of order', async () => {
    const carol = await connected(h, 'carol');
    await upload(carol, blobId(2), 400);
    expect(await carol.waitClosed()).toBe(1008);
    const dave = await connected(h, 'dave');
    dave.send({ type: 'blob.begin', requestId: 1, blobId: blobId(3), chunkCount: 5, chunkBytes });
    dave.send({
      type: 'blob.chunk',
      blobId: blobId(3),
      index: 2,
      data: new Uint8Array(chunkBytes),
    });
    expect(await dave.waitClosed()).toBe(1008);
    const codes = h.audit().map((r) => [r.identity, r.code]);
    expect(codes).toContainEqual(['carol', 'connection-chunks']);
    expect(codes).toContainEqual(['dave', 'blob-chunk-order']);
  });
});

describe('blob expiry', () => {
  it('the sweep deletes an expired blob file; a fetch of it then fails', async () => {
    let clock = Date.now();
    const h = await startHarness({
      now: () => clock,
      config: { attachments: { ttlMs: 60_000 }, limits: { expirySweepMs: 50 } },
    });
    try {
      const c = await connected(h, 'erin');
      c.send({ type: 'blob.begin', requestId: 1, blobId: blobId(5), chunkCount: 1, chunkBytes });
      c.send({ type: 'blob.chunk', blobId: blobId(5), index: 0, data: new Uint8Array(chunkBytes) });
      await until(
        () => c.frames.some((f) => f.type === 'blob.status' && f.chunksStored === 1),
        'stored',
      );
      const file = join(h.dir, 'data', 'blobs', `${'05'.repeat(16)}.blob`);
      expect(existsSync(file)).toBe(true);
      clock += 61_000;
      await until(() => !existsSync(file), 'blob file deleted by the sweep');
      c.send({ type: 'blob.fetch', requestId: 2, blobId: blobId(5), fromIndex: 0 });
      await until(() => c.frames.some((f) => f.type === 'error' && f.requestId === 2), 'refused');
      c.close();
    } finally {
      await h.close();
    }
  });
});
