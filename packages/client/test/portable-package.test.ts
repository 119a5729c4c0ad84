/**
 * `@parley/client` is the portable core a browser build bundles: neither it nor anything
 * it depends on (transitively) may install a native module or be a Node-only socket or
 * database library. Those live in `@parley/client-node`.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const NODE_ONLY = new Set(['ws', 'better-sqlite3', 'better-sqlite3-multiple-ciphers', 'pg']);

interface Manifest {
  name: string;
  dependencies?: Record<string, string>;
  gypfile?: boolean;
  scripts?: Record<string, string>;
}

/** Finds a dependency's folder the way Node does: node_modules of this folder, then of each parent. */
function manifestDir(name: string, fromDir: string): string {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return realpathSync(candidate);
    if (dirname(dir) === dir) throw new Error(`${name} not installed (from ${fromDir})`);
  }
}

function readManifest(dir: string): Manifest {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;
}

function closure(startDir: string): Map<string, string> {
  const seen = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const dep of Object.keys(readManifest(dir).dependencies ?? {})) {
      if (seen.has(dep)) continue;
      const d = manifestDir(dep, dir);
      seen.set(dep, d);
      walk(d);
    }
  };
  walk(startDir);
  return seen;
}

describe('@parley/client is portable', () => {
  it('pulls in no native module and no Node-only socket or database library', () => {
    const deps = closure(join(root, 'packages', 'client'));
    expect(deps.has('@parley/crypto')).toBe(true);
    for (const [name, dir] of deps) {
      const m = readManifest(dir);
      expect(NODE_ONLY.has(name), `${name} is Node-only`).toBe(false);
      const native =
        m.gypfile === true ||
        existsSync(join(dir, 'binding.gyp')) ||
        /node-gyp|prebuild/.test(`${m.scripts?.install ?? ''} ${m.scripts?.postinstall ?? ''}`);
      expect(native, `${name} installs a native module`).toBe(false);
    }
  });

  it('the Node adapters package does depend on them (the check can see one)', () => {
    const deps = closure(join(root, 'packages', 'client-node'));
    expect(deps.has('better-sqlite3-multiple-ciphers')).toBe(true);
    expect(deps.has('ws')).toBe(true);
  });
});
