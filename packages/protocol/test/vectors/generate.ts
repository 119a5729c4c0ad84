/**
 * Regenerates parley-v1.json from the protocol sources (build.ts imports them by
 * relative path; `@parley/crypto` comes from its dist, so build that first):
 * `npx tsc -b packages/crypto && npx tsx packages/protocol/test/vectors/generate.ts`.
 * vectors.test.ts fails until the committed file is what this writes.
 */
import { writeFileSync } from 'node:fs';
import { createPortableCrypto } from '@parley/crypto';
import { buildVectors } from './build.js';

writeFileSync(
  new URL('./parley-v1.json', import.meta.url),
  `${JSON.stringify(buildVectors(createPortableCrypto), null, 2)}\n`,
);
