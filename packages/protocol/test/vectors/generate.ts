/**
 * Regenerates parley-v1.json (tsx resolves @parley/* to dist, so build first):
 * `npx tsc -b packages/protocol && npx tsx packages/protocol/test/vectors/generate.ts`.
 */
import { writeFileSync } from 'node:fs';
import { createPortableCrypto } from '@parley/crypto';
import { buildVectors } from './build.js';

writeFileSync(
  new URL('./parley-v1.json', import.meta.url),
  `${JSON.stringify(buildVectors(createPortableCrypto), null, 2)}\n`,
);
