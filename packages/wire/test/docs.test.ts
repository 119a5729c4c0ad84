import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { DOC_PATH, generateCatalogue } from './wire-doc.js';

it('docs/wire.md frame catalogue matches FRAME_SPECS (regenerate: npx tsx packages/wire/test/wire-doc.ts --write)', () => {
  expect(readFileSync(DOC_PATH, 'utf8')).toContain(generateCatalogue());
});
