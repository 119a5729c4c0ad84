/**
 * Everything the README's commands create inside the checkout (relay data with the CA
 * key, issued credentials, client profiles) is ignored by git, so a CA key is never one
 * `git add .` away from a commit; and no committed file is ignored.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const git = (...args: string[]) =>
  execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });

/** Folders the README's shell examples write to: `--data`, `--out`, `--profile` arguments. */
function readmeFolders(): string[] {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const found = new Set<string>();
  for (const m of readme.matchAll(/--(?:data|out|profile)[ =]+(\.\/)?([A-Za-z0-9_.-]+)/g)) {
    const dir = m[2] ?? '';
    if (dir !== '' && !/^[A-Z]+$/.test(dir)) found.add(dir); // DIR, OUTDIR: placeholders
  }
  return [...found].sort();
}

/** Whether git would ignore PATH (relative to the root) in this checkout. */
function ignored(path: string): boolean {
  try {
    git('check-ignore', '--no-index', '-q', path);
    return true;
  } catch {
    return false;
  }
}

describe('.gitignore', () => {
  it('covers every folder the README steps create, with the keys inside them', () => {
    const folders = readmeFolders();
    expect(folders).toEqual(
      expect.arrayContaining(['parley-data', 'alice-creds', 'bob-creds', 'alice', 'bob']),
    );
    const notIgnored = folders.filter((dir) => !ignored(`${dir}/pki/ca.key`));
    expect(notIgnored).toEqual([]);
    for (const f of ['parley-data/pki/ca.key', 'alice-creds/alice.key', 'open-data/relay.db']) {
      expect(ignored(f), f).toBe(true);
    }
    // The CA folder a relay's first start makes beside each data folder (DIR-ca), all of it:
    // its certificates and records are not secret, but they belong with the key.
    const dataDirs = [
      ...readFileSync(join(root, 'README.md'), 'utf8').matchAll(
        /--data[ =]+(?:\.\/)?([a-z0-9_.-]+)/g,
      ),
    ].map((m) => m[1] ?? '');
    expect(dataDirs).toContain('parley-data');
    for (const d of new Set(dataDirs)) {
      for (const f of ['ca.key', 'ca.crt', 'revoked.json', 'issued/01.crt']) {
        expect(ignored(`${d}-ca/${f}`), `${d}-ca/${f}`).toBe(true);
      }
    }
    // A stray key or CSR is ignored wherever it is written.
    expect(ignored('apps/cli/alice.key')).toBe(true);
    expect(ignored('bob.csr')).toBe(true);
  });

  it('ignores no committed file', () => {
    expect(git('ls-files', '-ci', '--exclude-standard')).toBe('');
    // Source folders are not hidden by the profile names.
    expect(ignored('packages/client/src/index.ts')).toBe(false);
  });
});
