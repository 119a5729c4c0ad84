/**
 * Where a relay's files are, from its data directory and configuration: the one place
 * `startRelay`, backup and restore agree on.
 */
import { isAbsolute, join } from 'node:path';
import type { RelayConfig } from './config.js';

/** Absolute paths of a relay's files. */
export interface RelayPaths {
  readonly dataDir: string;
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly crl: string;
  readonly database: string;
  readonly auditLog: string;
  readonly auditKey: string;
}

const under = (dir: string, p: string | undefined, fallback: string): string =>
  p === undefined ? join(dir, fallback) : isAbsolute(p) ? p : join(dir, p);

/** Paths of the relay in `dataDir` (absolute) under `config`. */
export function relayPaths(
  dataDir: string,
  config: Pick<RelayConfig, 'tls' | 'storage' | 'auditFile'>,
): RelayPaths {
  return {
    dataDir,
    caCert: under(dataDir, config.tls.caFile, 'pki/ca.crt'),
    serverCert: under(dataDir, config.tls.certFile, 'pki/server.crt'),
    serverKey: under(dataDir, config.tls.keyFile, 'pki/server.key'),
    crl: under(dataDir, config.tls.crlFile, 'pki/crl.pem'),
    database: under(
      dataDir,
      config.storage.engine === 'sqlite' ? config.storage.file : undefined,
      'relay.db',
    ),
    auditLog: under(dataDir, config.auditFile, 'audit.log'),
    auditKey: join(dataDir, 'audit.key'),
  };
}
