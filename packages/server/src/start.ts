/**
 * Relay entry point: configuration, PKI, storage, audit log, logging and metrics, the
 * relay core, the TLS/WebSocket transport, the admin listener, and CRL reloading
 * (on SIGHUP and when crl.pem changes).
 */
import {
  accessSync,
  constants as fsConstants,
  existsSync,
  mkdirSync,
  readFileSync,
  unwatchFile,
  watchFile,
} from 'node:fs';
import { resolve } from 'node:path';
import { createNodeCrypto } from '@parley/crypto/node';
import {
  CRL_REFRESH_BEFORE_DAYS,
  createClientVerifier,
  crlNextUpdate,
  crlToDer,
  defaultCaDir,
  initPki,
  pkiPaths,
  readPkiFiles,
  refreshCrl,
} from '@parley/pki';
import { WS_PATH } from '@parley/wire';
import { SqliteFileBlobStore } from './blobs/sqlite-files.js';
import { AUDIT_CHECKPOINT_INTERVAL_MS, AuditLog, loadOrCreateAuditKey } from './audit.js';
import { lockDataDir } from './data-lock.js';
import { readConfigFile, resolveConfig, type RelayConfig, type RelayConfigFile } from './config.js';
import { createLogger, RelayMetrics, startAdmin } from './observability.js';
import { relayPaths, type RelayPaths } from './paths.js';
import { RelayCore } from './relay.js';
import { openBus } from './bus/engine.js';
import { openStorage } from './storage/engine.js';
import { startTransport, type TlsMaterial } from './transport.js';
import { ServerError } from './errors.js';
import { createWebHandler } from './web.js';

/** How often the CRL file is polled for changes (fs.watchFile; survives atomic renames). */
const CRL_POLL_MS = 500;
/** Log levels that would hide audit checkpoints (logged at info); `silent` is not one. */
const QUIETER_THAN_INFO: ReadonlySet<string> = new Set(['warn', 'error', 'fatal']);
/** The CRL is re-signed when close to its nextUpdate; checking daily is enough. */
const CRL_REFRESH_CHECK_MS = 24 * 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

/** True if this process can read `path` (the CA key must not be readable by the relay). */
function readable(path: string): boolean {
  try {
    accessSync(path, fsConstants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * What made the relay re-read its CRL; the `code` of the `crl.reloaded` audit record.
 * `signal`: SIGHUP; `file`: the crl.pem poll saw a change; `refresh`: the daily re-sign
 * near nextUpdate; `api`: {@link RunningRelay.reloadCrl}; `bus`: another relay node
 * reloaded its CRL (this node then reloads its own and does not announce it again).
 */
export type CrlReloadTrigger = 'signal' | 'file' | 'refresh' | 'api' | 'bus';

/** Options of {@link startRelay}. Flags given here override the config file. */
export interface StartRelayOptions {
  readonly dataDir: string;
  /** Bind address; default 127.0.0.1. */
  readonly host?: string;
  /** TLS port; 0 picks a free port. Default 8443. */
  readonly port?: number;
  readonly auth?: 'mtls' | 'open';
  /** Admin listener port on 127.0.0.1; 0 (default) picks a free port. */
  readonly adminPort?: number;
  /** JSON configuration file, validated at start. */
  readonly configFile?: string;
  /** Programmatic configuration (tests, benches); validated like the file, wins over it. */
  readonly config?: RelayConfigFile;
  readonly logLevel?: string;
  /** Serve the web client (`--web`); overrides `web.enabled` of the file. */
  readonly web?: boolean;
  /** Where the built web client is when the configuration names no `web.dir`. */
  readonly defaultWebDir?: string;
  /** mtls: open the browser listener on this port (`--browser-port`; 0 picks a free one). */
  readonly browserPort?: number;
  /** Re-read the CRL on SIGHUP (the `parley server` command sets this). */
  readonly handleSignals?: boolean;
  /** Clock in ms since the epoch; default Date.now. */
  readonly now?: () => number;
}

/** A started relay. */
export interface RunningRelay {
  readonly port: number;
  readonly adminPort: number;
  /** `wss://HOST:PORT/ws` */
  readonly url: string;
  /** `https://HOST:PORT/` when the web client is served (mtls: the browser listener's). */
  readonly webUrl?: string;
  /** mtls: the browser listener's port, when it is open. */
  readonly browserPort?: number;
  readonly auth: 'mtls' | 'open';
  /** PEM of the private CA that signed the server certificate. */
  readonly caPem: string;
  readonly config: RelayConfig;
  readonly paths: RelayPaths;
  /** The CA folder this start created (first start of a fresh data folder), else undefined. */
  readonly createdCaDir?: string;
  /** Re-reads the CRL now (as SIGHUP does); closes sessions whose certificate is revoked. */
  reloadCrl(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A relay whose CA key is offline cannot re-sign its CRL; OpenSSL refuses every client
 * once the CRL is past nextUpdate, so the operator is told well before.
 */
function warnIfCrlDue(
  crlPem: string,
  offline: boolean,
  now: () => number,
  logger: { warn(o: object, m: string): void },
): void {
  if (!offline) return;
  const next = crlNextUpdate(crlPem);
  if (next === undefined) return;
  const daysLeft = Math.floor((next.getTime() - now()) / DAY_MS);
  if (daysLeft <= CRL_REFRESH_BEFORE_DAYS) {
    logger.warn(
      { crlNextUpdate: next.toISOString(), daysLeft },
      'the CRL expires soon and the CA key is offline: sign a new one where the CA key is kept (parley pki crl --data DIR, or --ca-dir CADIR); after nextUpdate every client is refused',
    );
  }
}

/** Starts the relay. Initialises the PKI in `dataDir` when absent. */
export async function startRelay(opts: StartRelayOptions): Promise<RunningRelay> {
  const dataDir = resolve(opts.dataDir);
  const file = opts.configFile ? readConfigFile(opts.configFile) : {};
  const config = resolveConfig(file, {
    ...(opts.host !== undefined ? { host: opts.host } : {}),
    ...(opts.port !== undefined ? { port: opts.port } : {}),
    ...(opts.auth !== undefined ? { auth: opts.auth } : {}),
    ...(opts.adminPort !== undefined ? { adminPort: opts.adminPort } : {}),
    ...(opts.logLevel !== undefined ? { logLevel: opts.logLevel } : {}),
    ...(opts.web !== undefined ? { web: opts.web } : {}),
    ...(opts.browserPort !== undefined ? { browserPort: opts.browserPort } : {}),
    ...(opts.config !== undefined ? { config: opts.config } : {}),
  });
  const now = opts.now ?? Date.now;
  // Loaded before anything is created or bound: a missing app fails the start cleanly.
  const webDir = config.web.dir ?? opts.defaultWebDir;
  if (config.web.enabled && webDir === undefined) {
    throw new ServerError(
      'CONFIG_INVALID',
      'config: field "web.dir": required to serve the web client',
    );
  }
  // The mtls page also learns the CA the relay enforces (read further down).
  let caForPage: string | undefined;
  const web =
    config.web.enabled && webDir !== undefined
      ? createWebHandler(resolve(webDir), () => ({
          auth: config.auth,
          ...(config.auth === 'mtls' && caForPage !== undefined ? { caPem: caForPage } : {}),
        }))
      : undefined;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  // Before anything is opened: a second relay on this folder stops here, untouched.
  const lock = lockDataDir(dataDir);
  // What start-up has opened so far, closed in reverse if a later step fails, so a
  // relay that cannot start releases its database, writer thread and lock and the
  // process can exit.
  const undo: (() => unknown)[] = [() => lock.release()];
  const unwind = async (): Promise<void> => {
    for (const step of undo.reverse()) {
      try {
        await step();
      } catch {
        // Already failing; the first error is the one reported.
      }
    }
  };
  try {
    return await startInLockedDir();
  } catch (err) {
    await unwind();
    throw err;
  }

  async function startInLockedDir(): Promise<RunningRelay> {
    const logger = createLogger(config.logLevel);
    // The relay works from DATA/pki alone (ca.crt, its credentials, crl.pem). Only the
    // very first start of a fresh folder makes a CA, in the default CA folder beside
    // DATA (one command to a working relay); afterwards that folder is never read, so it
    // may be moved offline. Never creates a CA over an existing ca.crt.
    const own = pkiPaths(dataDir);
    const firstStart = !existsSync(own.caCert);
    const ownOnly = firstStart ? {} : { caDir: own.dir };
    const pki = await initPki(dataDir, { serverNames: config.serverNames, ...ownOnly });
    for (const w of pki.warnings) logger.warn(w);
    // Re-signs only with a CA key inside DATA/pki (an older layout; warned about below).
    await refreshCrl(dataDir, { caDir: own.dir });
    await readPkiFiles(dataDir); // fails early, with a PKI error, if the CA is unusable
    const createdCaDir = pki.createdCa && pki.paths.dir !== own.dir ? pki.paths.dir : undefined;
    if (createdCaDir !== undefined) {
      logger.info(
        { caDir: createdCaDir },
        'created the CA in its own folder; the relay does not read it again (keep it offline)',
      );
    }
    const caKey = own.caKey;
    if (readable(caKey)) {
      logger.warn(
        { caKey },
        'the CA private key is readable by the relay process: whoever controls this host can mint a certificate for any name. ' +
          `Move ${caKey} and the rest of the CA (issued/, revoked.json) into the CA folder DATA-ca beside the data folder, or another offline folder (--ca-dir), see docs/pki.md`,
      );
    }
    // The default CA folder sits beside the data folder, so on a one-user host the relay can
    // still read the key there: the relay never opens it, but whoever runs as this user can.
    const siblingCaKey = pkiPaths(dataDir, defaultCaDir(dataDir)).caKey;
    if (readable(siblingCaKey)) {
      logger.warn(
        { caKey: siblingCaKey },
        'the CA private key is readable by the relay process (it does not use it): whoever controls this host can mint a certificate for any name. ' +
          'Keep the CA folder offline or readable only by another user, see docs/pki.md',
      );
    }
    const paths = relayPaths(dataDir, config);
    const readTls = (): TlsMaterial => ({
      key: readFileSync(paths.serverKey, 'utf8'),
      cert: readFileSync(paths.serverCert, 'utf8'),
      ca: readFileSync(paths.caCert, 'utf8'),
      crl: readFileSync(paths.crl, 'utf8'),
    });
    let tls = readTls();
    caForPage = tls.ca;

    warnIfCrlDue(tls.crl, !readable(caKey), now, logger);

    const crypto = createNodeCrypto();
    const metrics = new RelayMetrics();
    const storage = await openStorage(config.storage, { dataDir, logger, metrics });
    const store = storage.store;
    undo.push(() => store.close());
    // Checkpoints go to the structured log, a different sink from the audit file, so
    // an operator who ships logs off the machine can detect a cut-off audit tail. They
    // are kept at info level even when the relay logs only warnings (not when silent).
    const anchorLog = QUIETER_THAN_INFO.has(logger.level)
      ? logger.child({}, { level: 'info' })
      : logger;
    const audit = new AuditLog(
      paths.auditLog,
      loadOrCreateAuditKey(paths.auditKey, crypto),
      crypto,
      now,
      { onCheckpoint: (c) => anchorLog.info({ auditCheckpoint: c }, 'audit checkpoint') },
    );
    undo.push(() => audit.close());
    // Anchors the tail found on disk now, before anything else is written.
    audit.checkpoint();
    const checkpointTimer = setInterval(() => audit.checkpoint(), AUDIT_CHECKPOINT_INTERVAL_MS);
    checkpointTimer.unref();
    undo.push(() => clearInterval(checkpointTimer));
    // PostgreSQL keeps blobs in the shared database; SQLite, as files in the data dir.
    const blobs = storage.blobs ?? new SqliteFileBlobStore(dataDir);
    undo.push(() => blobs.close());
    const bus = await openBus(config.bus, {
      dataDir,
      // Unique per process: a node restarted on the same folder is a new node to its peers.
      nodeId: `${config.serverId}:${Buffer.from(crypto.randomBytes(6)).toString('hex')}`,
      logger,
      metrics,
      limits: {
        maxBlocksPerIdentity: config.rateLimit.maxBlocksPerIdentity,
        windowMs: config.rateLimit.windowMs,
        maxConnectionsPerIdentity: config.limits.maxConnectionsPerIdentity,
      },
      now,
    });
    undo.push(() => bus.close());
    const core = new RelayCore({
      config,
      store,
      blobs,
      audit,
      metrics,
      logger,
      crypto,
      now,
      bus,
    });
    if (config.auth === 'mtls') core.setCrl(crlToDer(tls.crl));
    undo.push(() => core.shutdown());

    // Fails early, with a PKI error, if the CA or CRL is unusable.
    let verifier = await createClientVerifier({ caPem: tls.ca, crlPem: tls.crl });
    const browserListener = config.auth === 'mtls' ? config.browser : undefined;
    const transport = await startTransport(core, {
      host: config.host,
      port: config.port,
      mtls: config.auth === 'mtls',
      tls,
      // An mtls relay serves the web client on its browser listener only.
      ...(web && !browserListener ? { web } : {}),
    });
    undo.push(() => transport.close());
    const browser = browserListener
      ? await startTransport(core, {
          host: browserListener.host,
          port: browserListener.port,
          mtls: false,
          tls,
          ...(web ? { web } : {}),
          // The verifier of the CRL in force: a reload swaps it before revalidating.
          certificateLogin: (der, at) => verifier.verify({ certDer: der }, at),
        })
      : undefined;
    if (browser) undo.push(() => browser.close());
    let closed = false;
    const admin = await startAdmin(config.adminPort, metrics, () => !closed, {
      storage: storage.health,
      bus: async () => {
        const h = await bus.health();
        return { ...h, ...(h.detail !== undefined ? { error: h.detail } : {}) };
      },
    });
    undo.push(() => admin.close());

    let reloading: Promise<void> = Promise.resolve();
    // The trigger is recorded in the audit record, so an operator (and a test) can tell
    // a signal-driven reload from one the file watcher made.
    const reloadCrl = (trigger: CrlReloadTrigger = 'api'): Promise<void> => {
      reloading = reloading
        .then(async () => {
          if (closed) return;
          const next = readTls();
          if (next.crl === tls.crl) return;
          const nextVerifier = await createClientVerifier({ caPem: next.ca, crlPem: next.crl });
          tls = next;
          verifier = nextVerifier;
          transport.updateTls(tls);
          browser?.updateTls(tls);
          if (config.auth === 'mtls') core.setCrl(crlToDer(tls.crl));
          // Connections made before the change are re-checked: a revoked device is cut now.
          const dropped = core.revalidate((der) => {
            try {
              nextVerifier.verify({ certDer: der }, new Date(now()));
              return true;
            } catch {
              return false;
            }
          }, trigger !== 'bus');
          core.audit({ type: 'crl.reloaded', code: trigger, value: dropped });
        })
        .catch((err: unknown) => {
          logger.error(
            { err: (err as Error).message },
            'CRL reload failed; keeping the previous CRL',
          );
        });
      return reloading;
    };
    core.router.onCrlReloaded = () => void reloadCrl('bus');
    const watchCrl = config.tls.watchCrl ?? true;
    if (watchCrl) watchFile(paths.crl, { interval: CRL_POLL_MS }, () => void reloadCrl('file'));
    const onHup = (): void => void reloadCrl('signal');
    if (opts.handleSignals) process.on('SIGHUP', onHup);
    const refreshTimer = setInterval(() => {
      refreshCrl(dataDir, { caDir: own.dir }).then(
        (rewritten) => {
          if (rewritten) return reloadCrl('refresh');
          warnIfCrlDue(tls.crl, !readable(caKey), now, logger);
          return undefined;
        },
        (err: unknown) => logger.error({ err: (err as Error).message }, 'CRL refresh failed'),
      );
    }, CRL_REFRESH_CHECK_MS);
    refreshTimer.unref();

    core.audit({ type: 'relay.start', code: config.auth });
    logger.info(
      {
        port: transport.port,
        host: config.host,
        auth: config.auth,
        adminPort: admin.port,
        web: web !== undefined,
        ...(browser ? { browserPort: browser.port } : {}),
      },
      'relay listening',
    );

    const bracket = (h: string): string => (h.includes(':') ? `[${h}]` : h);
    const host = bracket(config.host);
    const browserHost = bracket(browserListener?.host ?? config.host);
    return {
      port: transport.port,
      adminPort: admin.port,
      url: `wss://${host}:${transport.port}${WS_PATH}`,
      ...(web
        ? { webUrl: `https://${browser ? browserHost : host}:${(browser ?? transport).port}/` }
        : {}),
      ...(browser ? { browserPort: browser.port } : {}),
      auth: config.auth,
      caPem: tls.ca,
      config,
      paths,
      ...(createdCaDir !== undefined ? { createdCaDir } : {}),
      reloadCrl: () => reloadCrl('api'),
      close: async () => {
        if (closed) return;
        closed = true;
        if (watchCrl) unwatchFile(paths.crl);
        if (opts.handleSignals) process.off('SIGHUP', onHup);
        clearInterval(refreshTimer);
        clearInterval(checkpointTimer);
        await reloading;
        core.shutdown();
        await transport.close();
        await browser?.close();
        await admin.close();
        core.audit({ type: 'relay.stop' });
        await bus.close();
        await store.close();
        await blobs.close();
        audit.close();
        lock.release();
      },
    };
  }
}
