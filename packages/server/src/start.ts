/**
 * Relay entry point: wires configuration, PKI, storage, audit log, admin listener and
 * the TLS/WebSocket transport together. (In progress.)
 */

/** Options of {@link startRelay}. Flags given here override the config file. */
export interface StartRelayOptions {
  readonly dataDir: string;
  /** Bind address; default 127.0.0.1. */
  readonly host?: string;
  /** TLS port; 0 picks a free port. Default 8443. */
  readonly port?: number;
  readonly auth?: 'mtls' | 'open';
  /** Admin listener port on 127.0.0.1; 0 picks a free port. */
  readonly adminPort?: number;
  /** JSON configuration file, validated at start. */
  readonly configFile?: string;
  readonly logLevel?: string;
}

/** A started relay. */
export interface RunningRelay {
  readonly port: number;
  readonly adminPort: number;
  /** `wss://HOST:PORT/ws` */
  readonly url: string;
  readonly auth: 'mtls' | 'open';
  /** PEM of the private CA that signed the server certificate. */
  readonly caPem: string;
  readonly paths: {
    readonly caCert: string;
    readonly serverCert: string;
    readonly serverKey: string;
    readonly auditLog: string;
  };
  close(): Promise<void>;
}

/** Starts the relay. */
export function startRelay(_opts: StartRelayOptions): Promise<RunningRelay> {
  return Promise.reject(new Error('startRelay: not implemented yet'));
}
