/** Regenerates parley-v1.json: `npx tsx packages/protocol/test/vectors/generate.ts`. */
import { writeFileSync } from 'node:fs';
import { createPortableCrypto } from '@parley/crypto';
import { buildVectors } from './build.js';

writeFileSync(
  new URL('./parley-v1.json', import.meta.url),
  `${JSON.stringify(buildVectors(createPortableCrypto), null, 2)}\n`,
);
