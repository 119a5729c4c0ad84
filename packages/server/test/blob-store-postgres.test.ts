/** The `BlobStore` contract on a real PostgreSQL server (started by the test). */
import { afterAll, beforeAll } from 'vitest';
import { PostgresBlobStore } from '../src/blobs/index.js';
import { runBlobStoreContract } from './blob-store-contract.js';
import { startPostgres, type TestPostgres } from './pg-server.js';

let server: TestPostgres;
beforeAll(async () => {
  server = await startPostgres();
}, 120_000);
afterAll(async () => {
  await server?.destroy();
}, 60_000);

runBlobStoreContract('postgres', async () => {
  const url = server.url(await server.createDatabase());
  return {
    store: await PostgresBlobStore.open({ url, poolSize: 2 }),
    reopen: () => PostgresBlobStore.open({ url, poolSize: 2 }),
  };
});
