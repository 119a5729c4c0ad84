/**
 * `parley server`: runs the relay in the foreground until SIGINT or SIGTERM.
 */
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { startRelay, tuneRelayProcess, type StartRelayOptions } from '@parley/server';
import { registerServerBackup } from './server-backup.js';

/** Backstop for leaving the process after a failed start (normally it ends at once). */
const STARTUP_FAILURE_EXIT_MS = 2_000;

interface ServerFlags {
  readonly data?: string;
  readonly host?: string;
  readonly port?: string;
  readonly auth?: string;
  readonly config?: string;
  readonly adminPort?: string;
  readonly logLevel?: string;
  readonly web?: boolean;
  readonly webDir?: string;
  readonly browserPort?: string;
}

/** The web client built in this checkout (same depth from src/ and dist/). */
export const DEFAULT_WEB_DIR = fileURLToPath(new URL('../../../web/dist/', import.meta.url));

function parsePort(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new Error(`${flag}: expected a port number 0..65535, got "${value}"`);
  }
  return n;
}

export function registerServer(program: Command): void {
  const server = program
    .command('server')
    .description(
      'run the relay (first start of a fresh DIR: creates the CA in DIR-ca and the relay pieces in DIR/pki)',
    )
    // Checked in the action, not by commander: a mandatory option of `server` would also
    // be demanded before `server backup --data …`.
    .option('--data <DIR>', 'data directory (PKI, database, audit log); required')
    .option('--host <HOST>', 'bind address (default 127.0.0.1)')
    .option('--port <PORT>', 'TLS port (default 8443; 0 picks a free port)')
    .option('--auth <MODE>', 'client authentication: mtls or open (default mtls)')
    .option('--config <FILE>', 'JSON configuration file (flags override it)')
    .option('--admin-port <PORT>', 'admin listener port on 127.0.0.1 (/healthz, /metrics)')
    .option('--log-level <LEVEL>', 'pino log level (default info)')
    .option(
      '--web',
      'serve the browser client at https://HOST:PORT/ beside /ws (open mode; mtls: --browser-port)',
    )
    .option('--web-dir <DIR>', 'the built web client to serve (default: apps/web/dist)')
    .option(
      '--browser-port <PORT>',
      'mtls: open the browser listener (web client + certificate login) on PORT; off by default',
    )
    .addHelpText(
      'after',
      [
        '',
        'Web client: build it once (npm run build -w apps/web), then',
        '  parley server --data DIR --auth open --web',
        'and open the printed https://HOST:PORT/ in a browser. The relay certificate is',
        "signed by the data directory's own CA (DIR/pki/ca.crt): import that into the",
        "browser's trusted authorities, or accept the warning once on 127.0.0.1.",
        '`npm start` in the checkout does all of this on embedded defaults.',
        '',
        'Browsers on an mtls relay: the mTLS port keeps refusing handshakes without a',
        'client certificate, so browsers get their own listener:',
        '  parley server --data DIR --browser-port 8445     (or "browser": { "port": 8445 })',
        'then open https://HOST:8445/. A new browser profile shows a certificate request:',
        'sign it where the CA key is kept (parley pki sign NAME.csr --data DIR --out NAME.crt)',
        'and paste or upload NAME.crt in the page. Revoked certificates are refused there too.',
      ].join('\n'),
    )
    .action(async (flags: ServerFlags) => {
      if (flags.data === undefined) throw new Error("required option '--data <DIR>' not specified");
      if (flags.auth !== undefined && flags.auth !== 'mtls' && flags.auth !== 'open') {
        throw new Error(`--auth: expected mtls or open, got "${flags.auth}"`);
      }
      const port = parsePort('--port', flags.port);
      const adminPort = parsePort('--admin-port', flags.adminPort);
      const browserPort = parsePort('--browser-port', flags.browserPort);
      const dataDir = flags.data;
      const opts: StartRelayOptions = {
        dataDir,
        handleSignals: true,
        ...(flags.host !== undefined ? { host: flags.host } : {}),
        ...(port !== undefined ? { port } : {}),
        ...(flags.auth !== undefined ? { auth: flags.auth } : {}),
        ...(flags.config !== undefined ? { configFile: flags.config } : {}),
        ...(adminPort !== undefined ? { adminPort } : {}),
        ...(flags.logLevel !== undefined ? { logLevel: flags.logLevel } : {}),
        ...(flags.web !== undefined ? { web: flags.web } : {}),
        ...(browserPort !== undefined ? { browserPort } : {}),
        ...(flags.webDir !== undefined ? { config: { web: { dir: flags.webDir } } } : {}),
        defaultWebDir: DEFAULT_WEB_DIR,
      };
      tuneRelayProcess();
      let relay;
      try {
        relay = await startRelay(opts);
      } catch (err) {
        // startRelay has closed what it opened; should any handle still be alive, the
        // process must not linger as a relay that never serves.
        setTimeout(() => process.exit(1), STARTUP_FAILURE_EXIT_MS).unref();
        throw err;
      }
      process.stdout.write(
        [
          `parley relay listening on ${relay.url} (auth ${relay.auth})`,
          `admin: http://127.0.0.1:${relay.adminPort}/healthz and /metrics`,
          ...(relay.createdCaDir !== undefined
            ? [
                `created the CA in ${relay.createdCaDir} (its key; the relay never reads this folder: move it offline)`,
              ]
            : []),
          `CA certificate: ${relay.paths.caCert}`,
          `server credentials: ${relay.paths.serverCert}, ${relay.paths.serverKey}`,
          `audit log: ${relay.paths.auditLog} (encrypted; key ${relay.paths.auditKey})`,
          `enrol a device: parley keygen --profile DIR --name NAME --server ${relay.url} --csr NAME.csr, then parley pki sign NAME.csr --data ${relay.paths.dataDir} --out NAME.crt`,
          `(quick tests: parley pki issue NAME --data ${relay.paths.dataDir} --out OUTDIR)`,
          ...(relay.webUrl !== undefined
            ? [`web client: open ${relay.webUrl} in a browser (CA to trust: ${relay.paths.caCert})`]
            : []),
          ...(relay.browserPort !== undefined
            ? [
                `browser sign-in: a new browser profile shows NAME.csr; sign it with parley pki sign NAME.csr --data ${relay.paths.dataDir} --out NAME.crt and import NAME.crt in the page`,
              ]
            : []),
          '',
        ].join('\n'),
      );
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      await relay.close();
      process.stdout.write('parley relay stopped\n');
    });
  registerServerBackup(server);
}
