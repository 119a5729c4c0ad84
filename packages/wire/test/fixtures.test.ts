import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame, FRAME_SPECS, type Frame } from '@parley/wire';
import { FIXTURE_PATH, fromJson, hexOf, type Fixture } from './wire-fixtures.js';

const fixtures = JSON.parse(readFileSync(FIXTURE_PATH, 'utf8')) as Fixture[];

describe('saved version-1 encodings still read and write the same', () => {
  it('covers every frame type', () => {
    const types = new Set(fixtures.map((f) => (f.frame as { type: string }).type));
    for (const t of Object.keys(FRAME_SPECS)) expect(types, t).toContain(t);
  });

  it.each(fixtures.map((f, i) => [i, (f.frame as { type: string }).type, f] as const))(
    '#%i %s',
    (_i, _type, f) => {
      const frame = fromJson(f.frame) as Frame;
      const bytes = hexOf(f.hex);
      expect(decodeFrame(bytes)).toEqual(frame);
      expect(encodeFrame(frame)).toEqual(bytes);
    },
  );
});
