import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  decodeFrame,
  encodeFrame,
  FRAME_SPECS,
  RETIRED_FRAME_CODES,
  type Frame,
} from '@parley/wire';
import { codeOf } from './error-code.js';
import { FIXTURE_PATH, fromJson, hexOf, type Fixture } from './wire-fixtures.js';

const saved = JSON.parse(readFileSync(FIXTURE_PATH, 'utf8')) as Fixture[];
const retiredNames = new Set(RETIRED_FRAME_CODES.values());
const isRetired = (f: Fixture): boolean => retiredNames.has((f.frame as { type: string }).type);
const fixtures = saved.filter((f) => !isRetired(f));

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

  it('saved frames of retired types are refused, and their codes are never reused', () => {
    const retired = saved.filter(isRetired);
    expect(retired.length).toBeGreaterThan(0);
    for (const f of retired) {
      expect(codeOf(() => decodeFrame(hexOf(f.hex)))).toBe('FRAME_UNKNOWN_TYPE');
    }
    const codes = new Set<number>(Object.values(FRAME_SPECS).map((s) => s.code));
    for (const code of RETIRED_FRAME_CODES.keys()) expect(codes.has(code)).toBe(false);
  });
});
