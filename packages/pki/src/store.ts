/**
 * On-disk layout of the CA under DATA/pki and the file-writing rules: private keys are
 * created with mode 0600, and every file is written to a temporary name and renamed so
 * a crash never leaves a half-written key or CRL behind.
 */
import { chmod, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CA_LOCK_STALE_MS,
  CA_LOCK_TIMEOUT_MS,
  CA_LOCK_POLL_MS,
  MAX_INPUT_BYTES,
} from './constants.js';
import { PkiError } from './errors.js';

/**
 * Paths of the CA's files and of the copies a relay serves. In the quick-start layout
 * (no CA folder given) both are DATA/pki. With a separate CA folder (`--ca-dir`) the CA
 * key, its records and the master CRL live there, and only the public pieces (`ca.crt`,
 * `crl.pem`) plus the relay's own TLS credentials are written into DATA/pki.
 */
export interface PkiPaths {
  /** The CA's folder (DATA/pki in the quick-start layout). */
  readonly dir: string;
  readonly caCert: string;
  readonly caKey: string;
  readonly serverCert: string;
  readonly serverKey: string;
  /** The CA's CRL. */
  readonly crl: string;
  /** Copies of every client certificate issued, named by serial. */
  readonly issuedDir: string;
  /** JSON list of revoked serials; crl.pem is rebuilt from it. */
  readonly revoked: string;
  /** Directory whose existence means "a writer holds the CA" (mkdir is atomic). */
  readonly lock: string;
  /** The relay's folder (DATA/pki), or undefined when only a CA folder was given. */
  readonly relayDir?: string;
  /** Where the relay reads the CA certificate and the CRL; equal to caCert/crl in one folder. */
  readonly relayCaCert?: string;
  readonly relayCrl?: string;
}

/**
 * Where the CA files live: DIR/pki/... for `pkiPaths(dataDir)`; with `caDir`, the CA's
 * own files in `caDir` and the relay's copies in DATA/pki. Pure; touches no file.
 */
export function pkiPaths(dataDir: string | undefined, caDir?: string): PkiPaths {
  const relayDir = dataDir === undefined ? undefined : join(dataDir, 'pki');
  const dir = caDir ?? relayDir;
  if (dir === undefined) throw new PkiError('not_initialized', 'give a data or CA directory');
  const serverBase = relayDir ?? dir;
  return {
    dir,
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    serverCert: join(serverBase, 'server.crt'),
    serverKey: join(serverBase, 'server.key'),
    crl: join(dir, 'crl.pem'),
    issuedDir: join(dir, 'issued'),
    revoked: join(dir, 'revoked.json'),
    lock: join(dir, '.lock'),
    ...(relayDir !== undefined
      ? {
          relayDir,
          relayCaCert: join(relayDir, 'ca.crt'),
          relayCrl: join(relayDir, 'crl.pem'),
        }
      : {}),
  };
}

/** Mode for private keys: owner read/write only. */
export const SECRET_FILE_MODE = 0o600;
/** Mode for certificates and CRLs, which are public. */
export const PUBLIC_FILE_MODE = 0o644;

let tmpCounter = 0;

/** Writes atomically (temp file + rename) with the given mode, regardless of umask. */
export async function writeFileAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${tmpCounter++}`;
  await writeFile(tmp, data, { mode, flag: 'wx' });
  await chmod(tmp, mode);
  await rename(tmp, path);
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Reads a small text file, refusing anything larger than MAX_INPUT_BYTES. */
export async function readSmallText(path: string): Promise<string> {
  const s = await stat(path);
  if (s.size > MAX_INPUT_BYTES) {
    throw new PkiError('malformed', `${path} is larger than ${MAX_INPUT_BYTES} bytes`);
  }
  return readFile(path, 'utf8');
}

export async function ensureDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: 0o700 });
}

export async function listFiles(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

/** One revoked certificate as stored in revoked.json. */
export interface RevokedRecord {
  readonly serial: string;
  readonly name: string;
  /** ISO-8601. */
  readonly revokedAt: string;
  readonly reason: RevocationReason;
}

/** RFC 5280 §5.3.1 reasons an operator may give (not `unspecified`, which §5.3.1 says to omit). */
export type RevocationReason =
  'keyCompromise' | 'affiliationChanged' | 'superseded' | 'cessationOfOperation';

const REASONS: readonly RevocationReason[] = [
  'keyCompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
];

export async function readRevoked(paths: PkiPaths): Promise<RevokedRecord[]> {
  if (!(await exists(paths.revoked))) return [];
  const parsed: unknown = JSON.parse(await readFile(paths.revoked, 'utf8'));
  if (!Array.isArray(parsed)) throw new PkiError('malformed', `${paths.revoked} is not a list`);
  return parsed.map((r: unknown) => {
    const o = r as Partial<Record<keyof RevokedRecord, unknown>>;
    if (
      typeof o.serial !== 'string' ||
      typeof o.name !== 'string' ||
      typeof o.revokedAt !== 'string'
    ) {
      throw new PkiError('malformed', `${paths.revoked} has a malformed entry`);
    }
    const reason = REASONS.find((x) => x === o.reason) ?? 'cessationOfOperation';
    return { serial: o.serial, name: o.name, revokedAt: o.revokedAt, reason };
  });
}

export async function writeRevoked(paths: PkiPaths, list: readonly RevokedRecord[]): Promise<void> {
  await writeFileAtomic(paths.revoked, `${JSON.stringify(list, null, 2)}\n`, PUBLIC_FILE_MODE);
}

/** True if a process with this id exists (signal 0 only probes). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as { code?: string }).code === 'EPERM';
  }
}

/** Whether an existing lock may be broken: its owner is gone, or it is older than any operation. */
async function lockIsStale(paths: PkiPaths): Promise<boolean> {
  const owner = await readFile(join(paths.lock, 'owner'), 'utf8').catch(() => undefined);
  const pid = owner === undefined ? Number.NaN : Number.parseInt(owner, 10);
  if (Number.isInteger(pid) && pid > 0 && !processAlive(pid)) return true;
  const age = await stat(paths.lock).then(
    (s) => Date.now() - s.mtimeMs,
    () => 0,
  );
  return age > CA_LOCK_STALE_MS;
}

/**
 * Runs `fn` while holding the CA's lock, so a relay re-signing the CRL and a `parley pki
 * revoke` in another process cannot interleave (the later CRL write would otherwise drop
 * a revocation the earlier one added). The lock records its owner's pid: a lock whose
 * owner died (a relay killed mid-operation) is broken at once, any other after
 * CA_LOCK_STALE_MS. Same-host only: the pid means nothing across machines.
 */
export async function withCaLock<T>(paths: PkiPaths, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + CA_LOCK_TIMEOUT_MS;
  for (;;) {
    try {
      await mkdir(paths.lock);
      await writeFile(join(paths.lock, 'owner'), String(process.pid));
      break;
    } catch (err) {
      if ((err as { code?: string }).code !== 'EEXIST') throw err;
      if (await lockIsStale(paths)) {
        await rm(paths.lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new PkiError('locked', `CA in ${paths.dir} is busy (lock ${paths.lock})`);
      }
      await new Promise((r) => setTimeout(r, CA_LOCK_POLL_MS));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(paths.lock, { recursive: true, force: true });
  }
}
