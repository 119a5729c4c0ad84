/**
 * Structured logging (pino) and metrics (prom-client), plus the admin listener that
 * serves `/healthz` and `/metrics` on 127.0.0.1 only: operators scrape it locally;
 * it is never reachable on the relay's public address.
 *
 * Log lines name events, identities and codes; never payloads, keys or tokens.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type { Logger };

/** A pino logger writing JSON lines to stderr (stdout is the command's own output). */
export function createLogger(level: string): Logger {
  return pino(
    { name: 'parley-relay', level, base: { service: 'parley-relay' } },
    pino.destination(2),
  );
}

/** The relay's metrics, each in one registry per relay instance. */
export class RelayMetrics {
  readonly registry = new Registry();
  readonly connections = new Gauge({
    name: 'parley_connections',
    help: 'Open WebSocket connections (authenticated or not)',
    registers: [this.registry],
  });
  readonly authenticated = new Gauge({
    name: 'parley_authenticated_connections',
    help: 'Authenticated connections',
    registers: [this.registry],
  });
  readonly unauthenticated = new Gauge({
    name: 'parley_unauthenticated_connections',
    help: 'TCP connections accepted but not yet authenticated (all addresses)',
    registers: [this.registry],
  });
  readonly blocksIn = new Counter({
    name: 'parley_blocks_received_total',
    help: 'Blocks received from clients',
    registers: [this.registry],
  });
  readonly blocksOut = new Counter({
    name: 'parley_blocks_sent_total',
    help: 'Blocks sent to clients',
    registers: [this.registry],
  });
  readonly messages = new Counter({
    name: 'parley_messages_total',
    help: 'Relayed items by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly rejections = new Counter({
    name: 'parley_rejections_total',
    help: 'Closed connections and dropped frames by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly auditRecords = new Counter({
    name: 'parley_audit_records_total',
    help: 'Audit records written',
    registers: [this.registry],
  });
  readonly groupUploads = new Counter({
    name: 'parley_group_uploads_total',
    help: 'Group uploads (group.send) by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly groupCopies = new Counter({
    name: 'parley_group_copies_total',
    help: 'Mailbox copies of group uploads by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly groupRecipients = new Histogram({
    name: 'parley_group_upload_recipients',
    help: 'Recipients listed per group upload',
    buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500],
    registers: [this.registry],
  });
  readonly enqueueSeconds = new Histogram({
    name: 'parley_mailbox_enqueue_seconds',
    help: 'Time to store a message durably',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
    registers: [this.registry],
  });

  constructor(withProcessMetrics = true) {
    if (withProcessMetrics) collectDefaultMetrics({ register: this.registry });
  }
}

/** A started admin listener. */
export interface AdminServer {
  readonly port: number;
  close(): Promise<void>;
}

/** What a dependency (the storage engine) reports to `/healthz`. */
export interface DependencyHealth {
  readonly ok: boolean;
  readonly error?: string;
}

/** Dependencies `/healthz` probes per request, each reported under its own key. */
export interface HealthProbes {
  readonly storage?: () => Promise<DependencyHealth>;
  readonly bus?: () => Promise<DependencyHealth>;
}

const probe = (p: (() => Promise<DependencyHealth>) | undefined) =>
  p
    ? p().catch((err: unknown): DependencyHealth => ({ ok: false, error: (err as Error).message }))
    : Promise.resolve(undefined);

/**
 * Starts the admin listener on 127.0.0.1. `/healthz` answers 200 while `healthy()`
 * is true and every probed dependency (storage, bus) reports ok, 503 otherwise, with
 * each report in the body; `/metrics` is the Prometheus text format.
 */
export async function startAdmin(
  port: number,
  metrics: RelayMetrics,
  healthy: () => boolean,
  probes: HealthProbes = {},
): Promise<AdminServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405).end();
      return;
    }
    if (path === '/healthz') {
      void Promise.all([probe(probes.storage), probe(probes.bus)]).then(([storage, bus]) => {
        const ok = healthy() && (storage?.ok ?? true) && (bus?.ok ?? true);
        res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            status: ok ? 'ok' : 'unavailable',
            ...(storage ? { storage } : {}),
            ...(bus ? { bus } : {}),
          }),
        );
      });
      return;
    }
    if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(text);
        },
        () => res.writeHead(500).end(),
      );
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
