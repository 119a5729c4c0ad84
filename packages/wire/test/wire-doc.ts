/**
 * Generates the frame-catalogue section of docs/wire.md from FRAME_SPECS, so the
 * document cannot drift from the code (docs.test.ts checks it). Regenerate with:
 *   npx tsx packages/wire/test/wire-doc.ts --write
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
// Relative import so `tsx` reads the sources, not a possibly stale dist/.
import { FRAME_SPECS, maxStructBytes, type FrameType } from '../src/index.js';

type Field = { kind: string; [k: string]: unknown };

export const BEGIN = '<!-- BEGIN GENERATED FRAME CATALOGUE (packages/wire/test/wire-doc.ts) -->';
export const END = '<!-- END GENERATED FRAME CATALOGUE -->';

const prefix = (max: number) => (max <= 0xff ? 'u8' : max <= 0xffff ? 'u16' : 'u32');

function describe(f: Field): string {
  switch (f.kind) {
    case 'bytes':
      return `bytes[${f['length'] as number}]`;
    case 'varbytes':
      return `${prefix(f['max'] as number)} length, then 0..${f['max'] as number} bytes`;
    case 'utf8':
      return `${prefix(f['max'] as number)} length, then 0..${f['max'] as number} bytes of UTF-8`;
    case 'name':
      return 'u8 length 1..64, then name bytes [a-z0-9._-] (first [a-z0-9])';
    case 'enum':
      return `u8: ${(f['values'] as string[]).map((v, i) => `${i}=${v}`).join(', ')}`;
    case 'optional':
      return `u8 0 (absent) or 1 (present, then ${describe(f['inner'] as Field)})`;
    case 'list': {
      const item = f['item'] as Field;
      const itemText = item.kind === 'struct' ? 'items as below' : describe(item);
      return `${prefix(f['max'] as number)} count 0..${f['max'] as number}, then ${itemText}`;
    }
    case 'struct':
      return 'struct, fields as below';
    default:
      return f.kind;
  }
}

function rows(fields: Record<string, Field>, path: string, out: string[]): void {
  for (const [key, f] of Object.entries(fields)) {
    const name = path ? `${path}.${key}` : key;
    out.push(`| \`${name}\` | ${describe(f)} |`);
    let inner: Field | undefined = f;
    if (inner.kind === 'optional') inner = inner['inner'] as Field;
    if (inner.kind === 'list') inner = inner['item'] as Field;
    if (inner.kind === 'struct') {
      const suffix =
        f.kind === 'list' || (f.kind === 'optional' && (f['inner'] as Field).kind === 'list')
          ? '[]'
          : '';
      rows(inner['fields'] as Record<string, Field>, name + suffix, out);
    }
  }
}

export function generateCatalogue(): string {
  const out: string[] = [BEGIN, ''];
  const dir = { toServer: 'client → server', toClient: 'server → client', both: 'both ways' };
  for (const type of Object.keys(FRAME_SPECS) as FrameType[]) {
    const spec = FRAME_SPECS[type];
    const fields = spec.fields as unknown as Record<string, Field>;
    const hex = `0x${spec.code.toString(16).padStart(2, '0')}`;
    out.push(
      `#### \`${type}\` — code ${hex}, ${dir[spec.direction]}, at most ${1 + maxStructBytes(spec.fields)} bytes`,
    );
    out.push('');
    if (Object.keys(fields).length === 0) {
      out.push('No fields: the frame is the single type byte.');
    } else {
      out.push('| field | encoding |', '|---|---|');
      rows(fields, '', out);
    }
    out.push('');
  }
  out.push(END);
  return out.join('\n');
}

export const DOC_PATH = fileURLToPath(new URL('../../../docs/wire.md', import.meta.url));

/** Replaces the generated section of docs/wire.md. */
export function writeCatalogue(): void {
  const doc = readFileSync(DOC_PATH, 'utf8');
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  if (a < 0 || b < a) throw new Error('markers not found in docs/wire.md');
  writeFileSync(DOC_PATH, doc.slice(0, a) + generateCatalogue() + doc.slice(b + END.length));
}

if (process.argv.includes('--write')) writeCatalogue();
