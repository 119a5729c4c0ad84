/**
 * fast-check arbitraries derived from the frame schemas, so every frame type (and
 * every future one) is covered by the property tests without hand-written generators.
 */
import fc from 'fast-check';
import { FRAME_SPECS, type Frame, type FrameType } from '@parley/wire';

type Field = { kind: string; [k: string]: unknown };

const utf8Length = (s: string): number => new TextEncoder().encode(s).length;

/** Arbitrary for one field schema; lengths are kept small unless `large` is set. */
export function fieldArb(field: Field, large = false): fc.Arbitrary<unknown> {
  switch (field.kind) {
    case 'u8':
      return fc.integer({ min: 0, max: 0xff });
    case 'u16':
      return fc.integer({ min: 0, max: 0xffff });
    case 'u32':
      return fc.integer({ min: 0, max: 0xffffffff });
    case 'u64':
      return fc.maxSafeNat();
    case 'bool':
      return fc.boolean();
    case 'bytes': {
      const n = field['length'] as number;
      return fc.uint8Array({ minLength: n, maxLength: n });
    }
    case 'varbytes': {
      const max = field['max'] as number;
      return fc.uint8Array({ maxLength: large ? max : Math.min(max, 64) });
    }
    case 'utf8': {
      const max = field['max'] as number;
      return fc.string({ unit: 'grapheme', maxLength: max }).filter((s) => utf8Length(s) <= max);
    }
    case 'name':
      return fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,63}$/);
    case 'enum':
      return fc.constantFrom(...(field['values'] as string[]));
    case 'optional':
      return fc.option(fieldArb(field['inner'] as Field, large), { nil: undefined });
    case 'list': {
      const max = field['max'] as number;
      return fc.array(fieldArb(field['item'] as Field, large), {
        maxLength: large ? max : Math.min(max, 4),
      });
    }
    case 'struct':
      return structArb(field['fields'] as Record<string, Field>, large);
    default:
      throw new Error(`no arbitrary for ${field.kind}`);
  }
}

/** Struct arbitrary; optional fields are sometimes absent (key omitted), sometimes present. */
export function structArb(
  fields: Record<string, Field>,
  large = false,
): fc.Arbitrary<Record<string, unknown>> {
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  const required: string[] = [];
  for (const [key, f] of Object.entries(fields)) {
    if (f.kind === 'optional') model[key] = fieldArb(f['inner'] as Field, large);
    else {
      model[key] = fieldArb(f, large);
      required.push(key);
    }
  }
  return fc.record(model, { requiredKeys: required });
}

/** Arbitrary frame of one type. */
export function frameArb(type: FrameType, large = false): fc.Arbitrary<Frame> {
  const fields = FRAME_SPECS[type].fields as unknown as Record<string, Field>;
  return structArb(fields, large).map((v) => ({ type, ...v }) as unknown as Frame);
}

/** Arbitrary frame of any type. */
export const anyFrameArb: fc.Arbitrary<Frame> = fc.oneof(
  ...(Object.keys(FRAME_SPECS) as FrameType[]).map((t) => frameArb(t)),
);

/** Frame types by direction, for direction tests. */
export const ALL_TYPES = Object.keys(FRAME_SPECS) as FrameType[];
