/**
 * Regenerates parley-group-v1.json from the protocol sources (`@parley/crypto` comes
 * from its dist, so build that first):
 * `npx tsc -b packages/crypto && npx tsx packages/protocol/test/vectors/group-generate.ts`.
 * group-vectors.test.ts fails until the committed file is what this writes.
 */
import { writeFileSync } from 'node:fs';
import { createPortableCrypto } from '@parley/crypto';
import { buildGroupVectors } from './group-build.js';

writeFileSync(
  new URL('./parley-group-v1.json', import.meta.url),
  `${JSON.stringify(buildGroupVectors(createPortableCrypto), null, 2)}\n`,
);
