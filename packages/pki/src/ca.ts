/**
 * The private certificate authority: creates the root and the relay's TLS certificate,
 * certifies device identity keys (Ed25519) as client certificates, revokes them through
 * a CRL, and lists what it issued. State lives in DATA/pki (see store.ts).
 *
 * Concurrency: init, issue, revoke and CRL refresh run under the CA lock (store.ts
 * `withCaLock`), so a relay refreshing the CRL and `parley pki revoke` in another process
 * cannot lose a revocation, and two issues for one name cannot both pass the
 * one-valid-certificate-per-name check.
 *
 * The CA key may be absent ("offline"): everything that only reads the CA certificate
 * (serving, listing) carries on, and nothing ever replaces an existing `ca.crt`.
 */
import { isIP } from 'node:net';
import { stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { systemRandomBytes } from '@parley/crypto';
import {
  CA_VALIDITY_DAYS,
  CLIENT_VALIDITY_DAYS,
  CLOCK_SKEW_BACKDATE_MS,
  CRL_REFRESH_BEFORE_DAYS,
  CRL_VALIDITY_DAYS,
  MAX_INPUT_BYTES,
  SERVER_RENEW_BEFORE_DAYS,
  SERVER_VALIDITY_DAYS,
  daysMs,
} from './constants.js';
import { PkiError } from './errors.js';
import { resolvePkiPaths } from './layout.js';
import { assertValidName } from './names.js';
import {
  PUBLIC_FILE_MODE,
  SECRET_FILE_MODE,
  ensureDir,
  exists,
  listFiles,
  pkiPaths,
  readRevoked,
  readSmallText,
  writeFileAtomic,
  withCaLock,
  writeRevoked,
  type PkiPaths,
  type RevocationReason,
} from './store.js';
import {
  ECDSA_SHA256,
  generateEcdsaKeyPair,
  generateEd25519KeyPair,
  importEcdsaPrivateKey,
  newSerial,
  normalizeSerial,
  privateKeyToPem,
  toPem,
  x509,
  type Key,
  type RandomBytes,
} from './x509.js';

/** Clock and randomness, injectable for tests. */
export interface PkiContext {
  /** Current time; default `new Date()`. */
  readonly now?: () => Date;
  /** Randomness for serial numbers; default the system CSPRNG. */
  readonly random?: RandomBytes;
  /**
   * The CA's own folder (ca.key, ca.crt, issued/, revoked.json, crl.pem), kept apart from
   * the relay's data directory; default DATA-ca beside it, or DATA/pki where an older
   * data folder still holds ca.key there (see resolvePkiPaths).
   */
  readonly caDir?: string;
}

/** Options of {@link initPki}. */
export interface InitPkiOptions extends PkiContext {
  /** Extra DNS names or IP addresses for the server certificate (besides localhost, 127.0.0.1, ::1). */
  readonly serverNames?: readonly string[];
  /** Common name of the root; default "Parley Root CA". */
  readonly caName?: string;
  /** Never create a CA (a relay start with `--ca-dir` elsewhere): fail if there is none. */
  readonly createCa?: boolean;
}

/** Result of {@link initPki}. */
export interface InitPkiResult {
  readonly paths: PkiPaths;
  /** False if a CA already existed (it is never overwritten). */
  readonly createdCa: boolean;
  readonly createdServer: boolean;
  /** ca.crt is present but ca.key is not: nothing that needs the CA key was done. */
  readonly caKeyOffline: boolean;
  /** Things left undone because the CA key is offline (for the operator). */
  readonly warnings: readonly string[];
}

/** Options of {@link issueClient} and {@link signCsr}. */
export interface IssueOptions extends PkiContext {
  /** Validity in days; default {@link CLIENT_VALIDITY_DAYS}. */
  readonly validityDays?: number;
  /** Explicit notBefore (tests of expiry); default now minus a small skew allowance. */
  readonly notBefore?: Date;
  /**
   * `issueClient` only: replace an existing OUTDIR/NAME.key. Off by default because that
   * file is a device's identity secret; overwriting it by mistake cannot be undone.
   */
  readonly overwrite?: boolean;
  /**
   * Issue even though the name has a valid certificate: every live certificate of the
   * name is revoked (`superseded`) and the CRL re-signed in the same locked step. Off by
   * default: two valid certificates for one name are two identity keys for one person.
   */
  readonly replace?: boolean;
  /**
   * Library only, never offered by the CLI: issue beside a valid certificate, as a CA
   * that does not keep the rule would (an outside CA, a CA folder restored from an old
   * copy that lacks its newest records). For tests of how clients cope with that.
   */
  readonly allowDuplicate?: boolean;
}

/** What the CA issued for a device. */
export interface IssuedCertificate {
  readonly name: string;
  /** Lowercase hex. */
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly certPem: string;
  /** Serials revoked because of `replace` (empty otherwise). */
  readonly replaced: readonly string[];
}

/** Result of {@link issueClient}: the certificate plus where its files were written. */
export interface IssuedClientFiles extends IssuedCertificate {
  readonly certPath: string;
  readonly keyPath: string;
  readonly caPath: string;
}

/** One row of {@link listCertificates}. */
export interface CertificateInfo {
  readonly name: string;
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly revoked: boolean;
  readonly revokedAt?: Date;
}

/** Options of {@link revoke}. */
export interface RevokeOptions extends PkiContext {
  /** Default `cessationOfOperation`; use `keyCompromise` for a lost or stolen device. */
  readonly reason?: RevocationReason;
}

/** The CA material a relay needs to serve mutual TLS. */
export interface PkiFiles {
  readonly caPem: string;
  readonly serverCertPem: string;
  readonly serverKeyPem: string;
  readonly crlPem: string;
  readonly paths: PkiPaths;
}

const clock = (ctx: PkiContext): Date => (ctx.now ? ctx.now() : new Date());
const rng = (ctx: PkiContext): RandomBytes => ctx.random ?? systemRandomBytes;

/** The CA's paths for a data directory and the context's CA folder (default: resolvePkiPaths). */
export function caPathsOf(dataDir: string | undefined, ctx: PkiContext): PkiPaths {
  return resolvePkiPaths(dataDir, ctx.caDir);
}

async function readCaCert(paths: PkiPaths): Promise<x509.X509Certificate> {
  if (!(await exists(paths.caCert))) {
    throw new PkiError('not_initialized', `no CA in ${paths.dir} (run: parley pki init)`);
  }
  return new x509.X509Certificate(await readSmallText(paths.caCert));
}

/** The CA certificate and signing key; `ca_offline` when only the certificate is here. */
export async function loadCa(paths: PkiPaths): Promise<{ cert: x509.X509Certificate; key: Key }> {
  const cert = await readCaCert(paths);
  if (!(await exists(paths.caKey))) {
    throw new PkiError(
      'ca_offline',
      `the CA key is offline (${paths.caKey} is absent); run this where the CA key is kept (--ca-dir)`,
    );
  }
  const key = await importEcdsaPrivateKey(await readSmallText(paths.caKey));
  return { cert, key };
}

async function createCa(paths: PkiPaths, opts: InitPkiOptions): Promise<void> {
  const now = clock(opts);
  const keys = await generateEcdsaKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: newSerial(rng(opts)),
    name: [{ CN: [opts.caName ?? 'Parley Root CA'] }, { O: ['Parley'] }],
    notBefore: new Date(now.getTime() - CLOCK_SKEW_BACKDATE_MS),
    notAfter: new Date(now.getTime() + daysMs(CA_VALIDITY_DAYS)),
    keys,
    signingAlgorithm: ECDSA_SHA256,
    extensions: [
      // pathLen 0: this root signs only end-entity certificates, never another CA.
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  // Key first; ca.crt is the file whose presence means "a CA exists here".
  await writeFileAtomic(paths.caKey, await privateKeyToPem(keys.privateKey), SECRET_FILE_MODE);
  await writeFileAtomic(paths.caCert, cert.toString('pem') + '\n', PUBLIC_FILE_MODE);
}

function generalNames(names: readonly string[]): x509.JsonGeneralName[] {
  const seen = new Set<string>();
  const out: x509.JsonGeneralName[] = [];
  for (const n of ['localhost', '127.0.0.1', '::1', ...names]) {
    if (n.length === 0 || seen.has(n)) continue;
    seen.add(n);
    out.push({ type: isIP(n) === 0 ? 'dns' : 'ip', value: n });
  }
  return out;
}

/** Canonical text of a SAN value, so `::1` and `0:0:0:0:0:0:0:1` compare equal. */
function canonicalName(name: string): string {
  const lower = name.toLowerCase();
  if (isIP(lower) === 6) return new URL(`http://[${lower}]/`).hostname;
  return lower;
}

/**
 * True if the relay certificate names every requested host and is not close to expiry;
 * otherwise `initPki` reissues it (same CA), so names added to the config take effect.
 */
function serverCertStillFits(pem: string, names: readonly string[], now: Date): boolean {
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(pem);
  } catch {
    return false;
  }
  if (cert.notAfter.getTime() - now.getTime() < daysMs(SERVER_RENEW_BEFORE_DAYS)) return false;
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const have = new Set((san?.names.items ?? []).map((n) => canonicalName(n.value)));
  return names.every((n) => n.length === 0 || have.has(canonicalName(n)));
}

async function createServerCert(paths: PkiPaths, opts: InitPkiOptions): Promise<void> {
  const ca = await loadCa(paths);
  const now = clock(opts);
  const keys = await generateEcdsaKeyPair();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: newSerial(rng(opts)),
    subject: [{ CN: ['localhost'] }, { O: ['Parley'] }],
    issuer: ca.cert.subjectName,
    notBefore: new Date(now.getTime() - CLOCK_SKEW_BACKDATE_MS),
    notAfter: new Date(
      Math.min(now.getTime() + daysMs(SERVER_VALIDITY_DAYS), ca.cert.notAfter.getTime()),
    ),
    publicKey: keys.publicKey,
    signingKey: ca.key,
    signingAlgorithm: ECDSA_SHA256,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(generalNames(opts.serverNames ?? [])),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
    ],
  });
  await ensureDir(dirname(paths.serverKey));
  await writeFileAtomic(paths.serverKey, await privateKeyToPem(keys.privateKey), SECRET_FILE_MODE);
  await writeFileAtomic(paths.serverCert, cert.toString('pem') + '\n', PUBLIC_FILE_MODE);
}

/** Signs crl.pem from revoked.json and installs a copy where the relay reads it. */
export async function writeCrl(paths: PkiPaths, ctx: PkiContext): Promise<void> {
  const ca = await loadCa(paths);
  const now = clock(ctx);
  const revoked = await readRevoked(paths);
  const crl = await x509.X509CrlGenerator.create({
    issuer: ca.cert.subjectName,
    thisUpdate: new Date(now.getTime() - CLOCK_SKEW_BACKDATE_MS),
    nextUpdate: new Date(now.getTime() + daysMs(CRL_VALIDITY_DAYS)),
    entries: revoked.map((r) => ({
      serialNumber: r.serial,
      revocationDate: new Date(r.revokedAt),
      // A reason code also keeps the entry's extension list non-empty, which RFC 5280
      // requires and OpenSSL enforces when it parses the CRL.
      reason: x509.X509CrlReason[r.reason],
    })),
    signingKey: ca.key,
    signingAlgorithm: ECDSA_SHA256,
    extensions: [await x509.AuthorityKeyIdentifierExtension.create(ca.cert)],
  });
  // RFC 7468 §5 label; @peculiar/x509 writes "CRL", which OpenSSL does not read.
  const pem = toPem(crl.rawData, 'X509 CRL');
  await writeFileAtomic(paths.crl, pem, PUBLIC_FILE_MODE);
  if (paths.relayCrl !== undefined && paths.relayCrl !== paths.crl) {
    await ensureDir(dirname(paths.relayCrl));
    await writeFileAtomic(paths.relayCrl, pem, PUBLIC_FILE_MODE);
  }
}

/** Puts the CA certificate where the relay reads it, refusing to replace a different one. */
async function installCaCert(paths: PkiPaths): Promise<void> {
  const target = paths.relayCaCert;
  if (target === undefined || target === paths.caCert) return;
  const pem = await readSmallText(paths.caCert);
  if (await exists(target)) {
    if ((await readSmallText(target)) === pem) return;
    throw new PkiError(
      'exists',
      `${target} holds a different CA than ${paths.caCert}; refusing to replace it (move it away first if that is really meant)`,
    );
  }
  await ensureDir(dirname(target));
  await writeFileAtomic(target, pem, PUBLIC_FILE_MODE);
}

/**
 * Creates what is missing of the CA (ca.crt, ca.key, issued/, crl.pem in its folder: `caDir`,
 * by default DATA-ca beside the data folder) and of the relay's pieces DATA/pki/{ca.crt,
 * server.crt,server.key,crl.pem}; the CA key never goes into DATA/pki. An existing
 * `ca.crt` is never overwritten, with or without its key. Without the CA key ("offline")
 * nothing that needs it is done: a missing server certificate or CRL is an error
 * (`ca_offline`), a server certificate or CRL that is due for renewal is kept and named
 * in `warnings`. The relay certificate is reissued (new key, same CA) when it lacks a
 * requested server name or has fewer than {@link SERVER_RENEW_BEFORE_DAYS} days left.
 *
 * @example
 * ```ts
 * const { paths } = await initPki('/var/lib/parley', { caDir: '/root/parley-ca' });
 * // paths.caKey === '/root/parley-ca/ca.key'; paths.relayCaCert === '/var/lib/parley/pki/ca.crt'
 * ```
 */
export async function initPki(
  dataDir: string | undefined,
  opts: InitPkiOptions = {},
): Promise<InitPkiResult> {
  const paths = caPathsOf(dataDir, opts);
  await ensureDir(paths.dir);
  // Under the lock, two relays starting on one fresh directory cannot both create a CA.
  return withCaLock(paths, async () => {
    const warnings: string[] = [];
    const hadCert = await exists(paths.caCert);
    if (!hadCert) {
      if (await exists(paths.caKey)) {
        throw new PkiError(
          'malformed',
          `${paths.caKey} exists without ${paths.caCert}; restore the certificate instead of creating a new CA`,
        );
      }
      if (opts.createCa === false) {
        throw new PkiError('not_initialized', `no CA in ${paths.dir} (run: parley pki init)`);
      }
      if (paths.relayCaCert !== undefined && (await exists(paths.relayCaCert))) {
        // The relay already trusts a CA kept elsewhere; a new one here could never be installed.
        throw new PkiError(
          'exists',
          `${paths.relayCaCert} exists but there is no CA in ${paths.dir}: give --ca-dir where that CA is kept`,
        );
      }
      await createCa(paths, opts);
    }
    await ensureDir(paths.issuedDir);
    const offline = !(await exists(paths.caKey));
    await installCaCert(paths);
    let createdServer = false;
    if (paths.relayDir !== undefined) {
      const hasServer = (await exists(paths.serverCert)) && (await exists(paths.serverKey));
      const fits =
        hasServer &&
        serverCertStillFits(
          await readSmallText(paths.serverCert),
          opts.serverNames ?? [],
          clock(opts),
        );
      if (!fits && !offline) {
        await createServerCert(paths, opts);
        createdServer = true;
      } else if (!hasServer) {
        throw new PkiError(
          'ca_offline',
          `no server certificate in ${paths.relayDir} and the CA key is offline: run parley pki init --ca-dir CADIR --data DIR where the CA key is kept`,
        );
      } else if (!fits) {
        warnings.push(
          `the server certificate ${paths.serverCert} lacks a requested name or expires within ${SERVER_RENEW_BEFORE_DAYS} days, but the CA key is offline: run parley pki init --ca-dir CADIR --data DIR`,
        );
      }
    }
    const crlTarget = paths.relayCrl ?? paths.crl;
    if (!(await exists(crlTarget))) {
      if (offline) {
        throw new PkiError(
          'ca_offline',
          `no CRL at ${crlTarget} and the CA key is offline: install one (parley pki crl --ca-dir CADIR --data DIR)`,
        );
      }
      await writeCrl(paths, opts);
    }
    return { paths, createdCa: !hadCert, createdServer, caKeyOffline: offline, warnings };
  });
}

/** Reads what a relay needs to serve mutual TLS (`not_initialized` if absent). */
export async function readPkiFiles(dataDir: string): Promise<PkiFiles> {
  const paths = pkiPaths(dataDir);
  if (!(await exists(paths.caCert))) {
    throw new PkiError('not_initialized', `no CA in ${paths.dir} (run: parley pki init)`);
  }
  return {
    paths,
    caPem: await readSmallText(paths.caCert),
    serverCertPem: await readSmallText(paths.serverCert),
    serverKeyPem: await readSmallText(paths.serverKey),
    crlPem: await readSmallText(paths.crl),
  };
}

/** Signs a device certificate for `publicKey`; the caller holds the CA lock. */
export async function certifyEd25519(
  paths: PkiPaths,
  name: string,
  publicKey: x509.PublicKeyType,
  opts: IssueOptions,
): Promise<Omit<IssuedCertificate, 'replaced'>> {
  assertValidName(name);
  const ca = await loadCa(paths);
  const now = clock(opts);
  const notBefore = opts.notBefore ?? new Date(now.getTime() - CLOCK_SKEW_BACKDATE_MS);
  // Never outlive the root: a chain is refused once its root has expired anyway.
  const notAfter = new Date(
    Math.min(
      now.getTime() + daysMs(opts.validityDays ?? CLIENT_VALIDITY_DAYS),
      ca.cert.notAfter.getTime(),
    ),
  );
  const serial = newSerial(rng(opts));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: [{ CN: [name] }],
    issuer: ca.cert.subjectName,
    notBefore,
    notAfter,
    publicKey,
    signingKey: ca.key,
    signingAlgorithm: ECDSA_SHA256,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
    ],
  });
  const certPem = cert.toString('pem') + '\n';
  await ensureDir(paths.issuedDir);
  await writeFileAtomic(join(paths.issuedDir, `${serial}.crt`), certPem, PUBLIC_FILE_MODE);
  return { name, serial, notBefore: cert.notBefore, notAfter: cert.notAfter, certPem };
}

/** Rows of certificates of `name` that are neither revoked nor expired at `now`. */
async function validCertificatesOf(
  paths: PkiPaths,
  name: string,
  now: Date,
): Promise<CertificateInfo[]> {
  return (await listIssued(paths)).filter(
    (c) => c.name === name && !c.revoked && c.notAfter.getTime() > now.getTime(),
  );
}

/**
 * Issues a certificate for `name` under the CA lock, enforcing one valid certificate
 * per name: refused (`exists`) while one is valid, unless `replace`, which revokes the
 * old ones (`superseded`) and re-signs the CRL before the lock is released.
 */
async function issueUnique(
  paths: PkiPaths,
  name: string,
  publicKey: x509.PublicKeyType,
  opts: IssueOptions,
): Promise<IssuedCertificate> {
  await loadCa(paths); // ca_offline / not_initialized before anything else
  return withCaLock(paths, async () => {
    const live = await validCertificatesOf(paths, name, clock(opts));
    if (opts.allowDuplicate === true) {
      return { ...(await certifyEd25519(paths, name, publicKey, opts)), replaced: [] };
    }
    if (live.length > 0 && opts.replace !== true) {
      throw new PkiError(
        'exists',
        `${name} already has a valid certificate (serial ${live.map((c) => c.serial).join(', ')}); ` +
          `renew it (parley pki renew ${name}) or pass --replace to revoke it and certify a new key`,
      );
    }
    const issued = await certifyEd25519(paths, name, publicKey, opts);
    const replaced = live.map((c) => c.serial);
    if (replaced.length > 0) await revokeSerialsLocked(paths, replaced, 'superseded', opts);
    return { ...issued, replaced };
  });
}

async function pathExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Creates a fresh Ed25519 device key and its client certificate (CN = name, clientAuth,
 * digitalSignature + keyEncipherment) and writes OUTDIR/{NAME.crt, NAME.key (0600), ca.crt}.
 * The key is the device's E2EE identity secret; see {@link ed25519SeedFromPkcs8Pem}.
 * Refused (`exists`) while `name` has a valid certificate, unless `replace`.
 */
export async function issueClient(
  dataDir: string | undefined,
  name: string,
  outDir: string,
  opts: IssueOptions = {},
): Promise<IssuedClientFiles> {
  assertValidName(name);
  const paths = caPathsOf(dataDir, opts);
  await loadCa(paths); // fails with not_initialized before a key is generated
  const caPem = await readSmallText(paths.caCert);
  const keyPath = join(outDir, `${name}.key`);
  const certPath = join(outDir, `${name}.crt`);
  const caPath = join(outDir, 'ca.crt');
  // Checked before anything is issued, so a refusal leaves no orphan certificate behind.
  if (opts.overwrite !== true && (await pathExists(keyPath))) {
    throw new PkiError(
      'exists',
      `${keyPath} already exists (a device's identity key); remove it or pass --force`,
    );
  }
  const keys = await generateEd25519KeyPair();
  const issued = await issueUnique(paths, name, keys.publicKey, opts);
  await ensureDir(outDir);
  await writeFileAtomic(keyPath, await privateKeyToPem(keys.privateKey), SECRET_FILE_MODE);
  await writeFileAtomic(certPath, issued.certPem, PUBLIC_FILE_MODE);
  await writeFileAtomic(caPath, caPem, PUBLIC_FILE_MODE);
  return { ...issued, keyPath, certPath, caPath };
}

/**
 * Certifies a device's own Ed25519 key from a PKCS#10 CSR (the private key never leaves
 * the device). The CSR's self-signature is checked and its CN must be a valid name.
 * Refused (`exists`) while that name has a valid certificate, unless `replace`.
 */
export async function signCsr(
  dataDir: string | undefined,
  csrPem: string,
  opts: IssueOptions = {},
): Promise<IssuedCertificate> {
  if (csrPem.length > MAX_INPUT_BYTES) throw new PkiError('bad_csr', 'CSR is too large');
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (cause) {
    throw new PkiError('bad_csr', 'not a PEM certificate request', { cause });
  }
  if (csr.publicKey.algorithm.name !== 'Ed25519') {
    throw new PkiError('bad_csr', 'CSR key must be Ed25519 (the device identity key)');
  }
  let ok = false;
  try {
    ok = await csr.verify();
  } catch (cause) {
    throw new PkiError('bad_csr', 'CSR signature cannot be checked', { cause });
  }
  if (!ok) throw new PkiError('bad_csr', 'CSR signature is invalid');
  const cns = csr.subjectName.getField('CN');
  const name = cns[0];
  if (cns.length !== 1 || name === undefined) {
    throw new PkiError('bad_csr', 'CSR subject must have exactly one CN');
  }
  assertValidName(name);
  return issueUnique(caPathsOf(dataDir, opts), name, csr.publicKey, opts);
}

/** Every issued certificate with its revocation state, oldest first (needs ca.crt only). */
async function listIssued(paths: PkiPaths): Promise<CertificateInfo[]> {
  await readCaCert(paths);
  const revoked = new Map((await readRevoked(paths)).map((r) => [r.serial, r]));
  const rows: CertificateInfo[] = [];
  for (const file of await listFiles(paths.issuedDir)) {
    if (!file.endsWith('.crt')) continue;
    const cert = new x509.X509Certificate(await readSmallText(join(paths.issuedDir, file)));
    const serial = normalizeSerial(cert.serialNumber);
    const name = cert.subjectName.getField('CN')[0] ?? '';
    const r = revoked.get(serial);
    rows.push({
      name,
      serial,
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
      revoked: r !== undefined,
      ...(r ? { revokedAt: new Date(r.revokedAt) } : {}),
    });
  }
  rows.sort(
    (a, b) => a.notBefore.getTime() - b.notBefore.getTime() || (a.serial < b.serial ? -1 : 1),
  );
  return rows;
}

/** Lists every client certificate the CA issued, oldest first. Works with the CA key offline. */
export async function listCertificates(
  dataDir: string | undefined,
  ctx: PkiContext = {},
): Promise<CertificateInfo[]> {
  return listIssued(caPathsOf(dataDir, ctx));
}

/** Adds `serials` to revoked.json and re-signs the CRL; the caller holds the CA lock. */
export async function revokeSerialsLocked(
  paths: PkiPaths,
  serials: readonly string[],
  reason: RevocationReason,
  ctx: PkiContext,
): Promise<void> {
  const rows = new Map((await listIssued(paths)).map((c) => [c.serial, c]));
  const at = clock(ctx).toISOString();
  const list = await readRevoked(paths);
  for (const serial of serials) {
    list.push({ serial, name: rows.get(serial)?.name ?? '', revokedAt: at, reason });
  }
  await writeRevoked(paths, list);
  await writeCrl(paths, ctx);
}

/**
 * Revokes every not-yet-revoked certificate issued to `name` and re-signs crl.pem.
 * Returns the serials revoked; `not_found` if the name has no live certificate.
 */
export async function revoke(
  dataDir: string | undefined,
  name: string,
  opts: RevokeOptions = {},
): Promise<string[]> {
  assertValidName(name);
  const paths = caPathsOf(dataDir, opts);
  await loadCa(paths);
  return withCaLock(paths, async () => {
    const live = (await listIssued(paths)).filter((c) => c.name === name && !c.revoked);
    if (live.length === 0) {
      throw new PkiError('not_found', `no unrevoked certificate for ${name}`);
    }
    const serials = live.map((c) => c.serial);
    await revokeSerialsLocked(paths, serials, opts.reason ?? 'cessationOfOperation', opts);
    return serials;
  });
}

/**
 * Revokes one certificate by serial (hex, any case, leading zeros ignored) and re-signs
 * crl.pem. Returns the name it was issued to; `not_found` for an unknown or already
 * revoked serial.
 */
export async function revokeSerial(
  dataDir: string | undefined,
  serial: string,
  opts: RevokeOptions = {},
): Promise<string> {
  if (!/^[0-9a-fA-F]{1,40}$/.test(serial)) {
    throw new PkiError('not_found', `--serial: expected hex digits, got "${serial}"`);
  }
  const want = normalizeSerial(serial);
  const paths = caPathsOf(dataDir, opts);
  await loadCa(paths);
  return withCaLock(paths, async () => {
    const row = (await listIssued(paths)).find((c) => c.serial === want && !c.revoked);
    if (!row) throw new PkiError('not_found', `no unrevoked certificate with serial ${want}`);
    await revokeSerialsLocked(paths, [want], opts.reason ?? 'cessationOfOperation', opts);
    return row.name;
  });
}

/**
 * Re-certifies the key of `name`'s newest unrevoked certificate (expired is fine): the
 * same device key, a new serial and validity, so the device keeps its identity (and
 * its safety numbers). The old certificate is not revoked: it binds the same key, and
 * the device keeps using it until it installs the new one.
 */
export async function renew(
  dataDir: string | undefined,
  name: string,
  opts: Omit<IssueOptions, 'overwrite' | 'replace'> = {},
): Promise<IssuedCertificate> {
  assertValidName(name);
  const paths = caPathsOf(dataDir, opts);
  await loadCa(paths);
  return withCaLock(paths, async () => {
    const live = (await listIssued(paths)).filter((c) => c.name === name && !c.revoked);
    const newest = live[live.length - 1];
    if (!newest) throw new PkiError('not_found', `no unrevoked certificate for ${name} to renew`);
    const old = new x509.X509Certificate(
      await readSmallText(join(paths.issuedDir, `${newest.serial}.crt`)),
    );
    const issued = await certifyEd25519(paths, name, old.publicKey, opts);
    return { ...issued, replaced: [] };
  });
}

/**
 * Re-signs crl.pem if it is missing or within {@link CRL_REFRESH_BEFORE_DAYS} of its
 * nextUpdate (or always, with `force`). A relay calls this at start and daily, because
 * TLS stacks reject every client once the CRL has expired. Returns true if re-signed;
 * false also when the CA key is offline (the caller warns, see {@link crlNextUpdate}).
 */
export async function refreshCrl(
  dataDir: string | undefined,
  opts: PkiContext & { readonly force?: boolean } = {},
): Promise<boolean> {
  const paths = caPathsOf(dataDir, opts);
  await readCaCert(paths);
  if (!(await exists(paths.caKey))) return false;
  const target = paths.relayCrl ?? paths.crl;
  const due = async (): Promise<boolean> => {
    if (opts.force || !(await exists(target))) return true;
    const next = new x509.X509Crl(await readSmallText(target)).nextUpdate;
    return !next || next.getTime() - clock(opts).getTime() <= daysMs(CRL_REFRESH_BEFORE_DAYS);
  };
  // Checked once without the lock so the common case (nothing to do) never takes it,
  // and again under it because another writer may have re-signed in between.
  if (!(await due())) return false;
  return withCaLock(paths, async () => {
    if (!(await due())) return false;
    await writeCrl(paths, opts);
    return true;
  });
}

/** nextUpdate of a PEM CRL (undefined if it has none); `crl_invalid` if unparseable. */
export function crlNextUpdate(pem: string): Date | undefined {
  try {
    return new x509.X509Crl(pem).nextUpdate;
  } catch (cause) {
    throw new PkiError('crl_invalid', 'CRL is not parseable', { cause });
  }
}

/** DER bytes of a PEM CRL (what the relay serves in `crl` frames); `crl_invalid` if unparseable. */
export function crlToDer(pem: string): Uint8Array {
  try {
    return new Uint8Array(new x509.X509Crl(pem).rawData);
  } catch (cause) {
    throw new PkiError('crl_invalid', 'CRL is not parseable', { cause });
  }
}
