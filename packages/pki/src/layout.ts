/**
 * Where the CA lives when no CA folder is given. The default keeps the CA key out of the
 * relay's data folder: for `--data DIR` the CA folder is its sibling `DIR-ca` (so
 * `./parley-data` pairs with `./parley-data-ca`), and DIR/pki holds only ca.crt, the
 * relay's own credentials and crl.pem. A data folder made before this rule, whose
 * DIR/pki still holds ca.key, keeps using it there.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pkiPaths, type PkiPaths } from './store.js';

/** Suffix of the default CA folder, next to the data folder. */
export const DEFAULT_CA_DIR_SUFFIX = '-ca';

/** The default CA folder for a data folder: `DIR-ca` beside it (absolute). Pure. */
export function defaultCaDir(dataDir: string): string {
  return `${resolve(dataDir)}${DEFAULT_CA_DIR_SUFFIX}`;
}

/** True if DIR/pki holds a CA key: the single-folder layout of older data folders. */
export function hasLegacyCaKey(dataDir: string): boolean {
  return existsSync(join(dataDir, 'pki', 'ca.key'));
}

/**
 * The CA's paths: `caDir` if given; else DIR/pki when it still holds ca.key (older
 * layout); else the default sibling folder {@link defaultCaDir}.
 */
export function resolvePkiPaths(dataDir: string | undefined, caDir?: string): PkiPaths {
  if (caDir !== undefined || dataDir === undefined) return pkiPaths(dataDir, caDir);
  if (hasLegacyCaKey(dataDir)) return pkiPaths(dataDir);
  return pkiPaths(dataDir, defaultCaDir(dataDir));
}
