/**
 * Relay configuration (M15): one JSON file, validated at start with errors that name
 * the offending field; command-line flags override the file; every field has a
 * documented default from `limits.ts`.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ServerError } from './errors.js';
import * as L from './limits.js';

const port = z.number().int().min(0).max(65535);
const positiveMs = z.number().int().min(1);
const count = z.number().int().min(1);

/** Connection to PostgreSQL: a URL, or its parts; fields given beside a URL override it. */
const postgresSchema = z.strictObject({
  url: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  host: z.string().min(1).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  database: z.string().min(1).optional(),
  user: z.string().min(1).optional(),
  password: z.string().min(1).optional(),
  /** File holding the password (first line), so it need not sit in the config file. */
  passwordFile: z.string().min(1).optional(),
  /** Connections this relay node keeps open; each node has its own pool. */
  poolSize: z.number().int().min(1).max(1000).optional(),
});

/** Connection to Redis: a URL, or host and port; fields given beside a URL override it. */
const redisSchema = z.strictObject({
  url: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
    .optional(),
  host: z.string().min(1).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  /** File holding the password (first line), so it need not sit in the config file. */
  passwordFile: z.string().min(1).optional(),
  /** Prefix of every key and channel, so several relays (or other software) share a server. */
  keyPrefix: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9:._-]+$/, 'letters, digits and : . _ - only')
    .optional(),
});

/** Schema of the configuration file. Every field is optional; unknown fields are errors. */
const fileSchema = z.strictObject({
  host: z.string().min(1).optional(),
  port: port.optional(),
  auth: z.enum(['mtls', 'open']).optional(),
  /** Names this relay signs into challenges (open mode) and puts in the server certificate SANs. */
  serverId: z.string().min(1).max(253).optional(),
  serverNames: z.array(z.string().min(1).max(253)).optional(),
  /** Broadcast join/leave to every connected client (seed 003's user list). */
  presenceBroadcast: z.boolean().optional(),
  adminPort: port.optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional(),
  tls: z
    .strictObject({
      certFile: z.string().min(1).optional(),
      keyFile: z.string().min(1).optional(),
      caFile: z.string().min(1).optional(),
      crlFile: z.string().min(1).optional(),
      /**
       * Poll crl.pem for changes (default true). Off, the CRL is re-read only on SIGHUP,
       * the daily refresh or `reloadCrl()`: for operators who stage CRL files and apply
       * them deliberately.
       */
      watchCrl: z.boolean().optional(),
    })
    .optional(),
  storage: z
    .strictObject({
      /** sqlite (default, embedded) or postgres (shared by several relay nodes). */
      engine: z.enum(['sqlite', 'postgres']).optional(),
      /** Older spelling of `engine: 'sqlite'`, still accepted. */
      kind: z.literal('sqlite').optional(),
      file: z.string().min(1).optional(),
      /** full: fsync per commit (power-loss safe); normal: survives process crashes only. */
      synchronous: z.enum(['full', 'normal']).optional(),
      postgres: postgresSchema.optional(),
    })
    .optional(),
  bus: z
    .strictObject({
      /** local (default: one node, in process) or redis (shared by several relay nodes). */
      engine: z.enum(['local', 'redis']).optional(),
      redis: redisSchema.optional(),
    })
    .optional(),
  auditFile: z.string().min(1).optional(),
  /**
   * mtls only: a second, server-authenticated TLS listener for browsers, which log in
   * with a CA-signed device certificate inside the connection (docs/client.md). It
   * serves the web client; the mTLS port is unchanged. Off unless given.
   */
  browser: z
    .strictObject({
      port,
      /** Bind address; default: the relay's `host`. */
      host: z.string().min(1).optional(),
    })
    .optional(),
  /** The browser client, served at `/` on the TLS port (open mode) or the browser listener (mtls). */
  web: z
    .strictObject({
      enabled: z.boolean().optional(),
      /** The built app (apps/web/dist); relative paths are taken from the working directory. */
      dir: z.string().min(1).optional(),
    })
    .optional(),
  limits: z
    .strictObject({
      blockBytes: z.number().int().min(512).max(65536).optional(),
      maxPayloadBytes: z.number().int().min(1).max(L.DEFAULT_MAX_PAYLOAD_BYTES).optional(),
      maxFrameBytes: z.number().int().min(512).max(L.DEFAULT_MAX_FRAME_BYTES).optional(),
      handshakeTimeoutMs: positiveMs.optional(),
      authTimeoutMs: positiveMs.optional(),
      idleTimeoutMs: z.number().int().min(100).optional(),
      sessionTtlMs: positiveMs.optional(),
      freshnessWindowMs: positiveMs.optional(),
      maxConnections: count.optional(),
      maxConnectionsPerIdentity: count.optional(),
      maxUnauthenticatedPerAddress: count.optional(),
      maxMailboxPerRecipient: count.optional(),
      mailboxTtlMs: positiveMs.optional(),
      expirySweepMs: positiveMs.optional(),
      lowPrekeyThreshold: z.number().int().min(0).optional(),
      presenceBroadcastMaxOnline: z.number().int().min(0).optional(),
    })
    .optional(),
  attachments: z
    .strictObject({
      maxBlobBytes: count.optional(),
      quotaBytesPerIdentity: count.optional(),
      ttlMs: positiveMs.optional(),
      maxChunksPerConnection: count.optional(),
    })
    .optional(),
  rateLimit: z
    .strictObject({
      windowMs: positiveMs.optional(),
      maxBlocksPerConnection: count.optional(),
      maxBlocksPerIdentity: count.optional(),
      maxMessagesPerConnection: count.optional(),
      maxGroupCopiesPerConnection: count.optional(),
    })
    .optional(),
});

/** What the configuration file may contain (all optional). */
export type RelayConfigFile = z.infer<typeof fileSchema>;

/** The resolved configuration the relay runs with. Paths are absolute or data-dir relative. */
export interface RelayConfig {
  readonly host: string;
  readonly port: number;
  readonly auth: 'mtls' | 'open';
  readonly serverId: string;
  readonly serverNames: readonly string[];
  readonly presenceBroadcast: boolean;
  readonly adminPort: number;
  readonly logLevel: string;
  readonly tls: {
    readonly certFile?: string;
    readonly keyFile?: string;
    readonly caFile?: string;
    readonly crlFile?: string;
    readonly watchCrl?: boolean;
  };
  readonly storage: StorageConfig;
  readonly bus: BusConfig;
  readonly auditFile?: string;
  readonly web: { readonly enabled: boolean; readonly dir?: string };
  /** mtls: the browser listener (certificate login), if configured. */
  readonly browser?: { readonly host: string; readonly port: number };
  readonly limits: RelayLimits;
  readonly rateLimit: RateLimitConfig;
  readonly attachments: AttachmentLimits;
}

/** Attachment blobs (docs/operations.md, "Attachments"). */
export interface AttachmentLimits {
  /** Largest blob in stored bytes (chunk count × chunk size). */
  readonly maxBlobBytes: number;
  /** Stored bytes of unexpired blobs one identity may have uploaded. */
  readonly quotaBytesPerIdentity: number;
  readonly ttlMs: number;
  /** Chunk blocks per connection per `rateLimit.windowMs`. */
  readonly maxChunksPerConnection: number;
}

export const DEFAULT_ATTACHMENTS: AttachmentLimits = {
  maxBlobBytes: L.DEFAULT_MAX_BLOB_BYTES,
  quotaBytesPerIdentity: L.DEFAULT_BLOB_QUOTA_BYTES_PER_IDENTITY,
  ttlMs: L.DEFAULT_BLOB_TTL_MS,
  maxChunksPerConnection: L.DEFAULT_MAX_CHUNKS_PER_CONNECTION,
};

/** PostgreSQL connection settings as configured (the password file is read at start). */
export type PostgresConfig = z.infer<typeof postgresSchema>;

export type StorageConfig =
  | {
      readonly engine: 'sqlite';
      /** Data-dir relative or absolute; default relay.db. */
      readonly file?: string;
      readonly synchronous: 'full' | 'normal';
    }
  | { readonly engine: 'postgres'; readonly postgres: PostgresConfig };

/** Redis connection settings as configured (the password file is read at start). */
export type RedisConfig = z.infer<typeof redisSchema>;

/** Key prefix when none is configured. */
export const DEFAULT_REDIS_KEY_PREFIX = 'parley:';

export type BusConfig =
  | { readonly engine: 'local' }
  | {
      readonly engine: 'redis';
      readonly redis: RedisConfig & { readonly keyPrefix: string };
    };

export interface RelayLimits {
  readonly blockBytes: number;
  readonly maxPayloadBytes: number;
  readonly maxFrameBytes: number;
  readonly handshakeTimeoutMs: number;
  readonly authTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly sessionTtlMs: number;
  readonly freshnessWindowMs: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerIdentity: number;
  /** Connections from one remote address not yet authenticated (TCP accept to welcome). */
  readonly maxUnauthenticatedPerAddress: number;
  readonly maxMailboxPerRecipient: number;
  readonly mailboxTtlMs: number;
  readonly expirySweepMs: number;
  readonly lowPrekeyThreshold: number;
  readonly presenceBroadcastMaxOnline: number;
}

export interface RateLimitConfig {
  readonly windowMs: number;
  readonly maxBlocksPerConnection: number;
  readonly maxBlocksPerIdentity: number;
  readonly maxMessagesPerConnection: number;
  /** Mailbox copies of group uploads (recipients listed) per connection per window. */
  readonly maxGroupCopiesPerConnection: number;
}

/** Defaults of every limit (see `limits.ts` for the reasons). */
export const DEFAULT_LIMITS: RelayLimits = {
  blockBytes: L.DEFAULT_BLOCK_BYTES,
  maxPayloadBytes: L.DEFAULT_MAX_PAYLOAD_BYTES,
  maxFrameBytes: L.DEFAULT_MAX_FRAME_BYTES,
  handshakeTimeoutMs: L.DEFAULT_HANDSHAKE_TIMEOUT_MS,
  authTimeoutMs: L.DEFAULT_AUTH_TIMEOUT_MS,
  idleTimeoutMs: L.DEFAULT_IDLE_TIMEOUT_MS,
  sessionTtlMs: L.DEFAULT_SESSION_TTL_MS,
  freshnessWindowMs: L.DEFAULT_FRESHNESS_WINDOW_MS,
  maxConnections: L.DEFAULT_MAX_CONNECTIONS,
  maxConnectionsPerIdentity: L.DEFAULT_MAX_CONNECTIONS_PER_IDENTITY,
  maxUnauthenticatedPerAddress: L.DEFAULT_MAX_UNAUTHENTICATED_PER_ADDRESS,
  maxMailboxPerRecipient: L.DEFAULT_MAX_MAILBOX_PER_RECIPIENT,
  mailboxTtlMs: L.DEFAULT_MAILBOX_TTL_MS,
  expirySweepMs: L.DEFAULT_EXPIRY_SWEEP_MS,
  lowPrekeyThreshold: L.DEFAULT_LOW_PREKEY_THRESHOLD,
  presenceBroadcastMaxOnline: L.DEFAULT_PRESENCE_BROADCAST_MAX_ONLINE,
};

export const DEFAULT_RATE_LIMIT: RateLimitConfig = {
  windowMs: L.DEFAULT_RATE_WINDOW_MS,
  maxBlocksPerConnection: L.DEFAULT_MAX_BLOCKS_PER_CONNECTION,
  maxBlocksPerIdentity: L.DEFAULT_MAX_BLOCKS_PER_IDENTITY,
  maxMessagesPerConnection: L.DEFAULT_MAX_MESSAGES_PER_CONNECTION,
  maxGroupCopiesPerConnection: L.DEFAULT_MAX_GROUP_COPIES_PER_CONNECTION,
};

/** Overrides from flags or from a program (tests, benches); they win over the file. */
export interface ConfigOverrides {
  readonly host?: string;
  readonly port?: number;
  readonly auth?: 'mtls' | 'open';
  readonly adminPort?: number;
  readonly logLevel?: string;
  /** `--web`: serve the browser client. */
  readonly web?: boolean;
  /** `--browser-port`: the mtls browser listener's port. */
  readonly browserPort?: number;
  readonly config?: RelayConfigFile;
}

function describeIssues(source: string, error: z.ZodError): string {
  return error.issues
    .map((i) => {
      const field = i.path.length > 0 ? i.path.join('.') : '(root)';
      return `${source}: field "${field}": ${i.message}`;
    })
    .join('; ');
}

/** Validates an already-parsed configuration object. Throws `CONFIG_INVALID` naming the field. */
export function validateConfigFile(value: unknown, source = 'config'): RelayConfigFile {
  const parsed = fileSchema.safeParse(value);
  if (!parsed.success)
    throw new ServerError('CONFIG_INVALID', describeIssues(source, parsed.error));
  return parsed.data;
}

/** Reads and validates a JSON configuration file. */
export function readConfigFile(path: string): RelayConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'unreadable';
    throw new ServerError('CONFIG_INVALID', `${path}: cannot read (${code})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ServerError(
      'CONFIG_INVALID',
      `${path}: not valid JSON (${err instanceof Error ? err.message : 'parse error'})`,
    );
  }
  return validateConfigFile(json, path);
}

function definedOnly<T extends object>(o: T | undefined): Partial<T> {
  const out: Partial<T> = {};
  if (!o) return out;
  for (const [k, v] of Object.entries(o))
    if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/**
 * Resolves the configuration: defaults, then the file, then program overrides, then
 * flags. Cross-field rules are checked last and also name the field.
 */
export function resolveConfig(file: RelayConfigFile, overrides: ConfigOverrides = {}): RelayConfig {
  const extra = overrides.config ? validateConfigFile(overrides.config, 'overrides') : {};
  const flags = validateConfigFile(
    definedOnly({
      host: overrides.host,
      port: overrides.port,
      auth: overrides.auth,
      adminPort: overrides.adminPort,
      logLevel: overrides.logLevel,
      web: overrides.web === undefined ? undefined : { enabled: overrides.web },
      browser: overrides.browserPort === undefined ? undefined : { port: overrides.browserPort },
    }),
    'flags',
  );
  const layers = [file, extra, flags];
  const pick = <K extends keyof RelayConfigFile>(k: K): RelayConfigFile[K] => {
    let v: RelayConfigFile[K] = undefined;
    for (const l of layers) if (l[k] !== undefined) v = l[k];
    return v;
  };
  const merge = <T extends object>(
    base: T,
    k: 'limits' | 'rateLimit' | 'tls' | 'storage' | 'attachments' | 'web' | 'bus' | 'browser',
  ): T => {
    let out = { ...base };
    for (const l of layers) out = { ...out, ...definedOnly(l[k] as object | undefined) };
    return out;
  };
  const limits = merge(DEFAULT_LIMITS, 'limits');
  const rateLimit = merge(DEFAULT_RATE_LIMIT, 'rateLimit');
  if (limits.maxConnectionsPerIdentity > limits.maxConnections) {
    throw new ServerError(
      'CONFIG_INVALID',
      'config: field "limits.maxConnectionsPerIdentity": must not exceed limits.maxConnections',
    );
  }
  if (limits.maxPayloadBytes < limits.blockBytes) {
    throw new ServerError(
      'CONFIG_INVALID',
      'config: field "limits.maxPayloadBytes": must be at least limits.blockBytes',
    );
  }
  if (rateLimit.maxBlocksPerIdentity < rateLimit.maxBlocksPerConnection) {
    throw new ServerError(
      'CONFIG_INVALID',
      'config: field "rateLimit.maxBlocksPerIdentity": must be at least rateLimit.maxBlocksPerConnection',
    );
  }
  const web = merge<{ enabled?: boolean; dir?: string }>({}, 'web');
  const auth = pick('auth') ?? 'mtls';
  const browserFile = merge<{ port?: number; host?: string }>({}, 'browser');
  const browserPort = browserFile.port;
  if (browserPort !== undefined && auth !== 'mtls') {
    throw new ServerError(
      'CONFIG_INVALID',
      'config: field "browser": the browser listener is for mtls relays (open mode serves browsers on its TLS port)',
    );
  }
  if (web.enabled === true && auth !== 'open' && browserPort === undefined) {
    throw new ServerError(
      'CONFIG_INVALID',
      'config: field "web.enabled": an mtls relay serves the web client on its browser listener only: set "browser.port" (--browser-port)',
    );
  }
  const auditFile = pick('auditFile');
  return {
    host: pick('host') ?? L.DEFAULT_HOST,
    port: pick('port') ?? L.DEFAULT_PORT,
    auth,
    serverId: pick('serverId') ?? 'parley-relay',
    serverNames: pick('serverNames') ?? [],
    presenceBroadcast: pick('presenceBroadcast') ?? true,
    adminPort: pick('adminPort') ?? 0,
    logLevel: pick('logLevel') ?? 'info',
    tls: merge({}, 'tls'),
    storage: resolveStorage(merge<NonNullable<RelayConfigFile['storage']>>({}, 'storage')),
    bus: resolveBus(merge<NonNullable<RelayConfigFile['bus']>>({}, 'bus')),
    ...(auditFile !== undefined ? { auditFile } : {}),
    // The browser listener exists for the web client: it serves it unless told not to.
    web: {
      enabled: web.enabled ?? browserPort !== undefined,
      ...(web.dir !== undefined ? { dir: web.dir } : {}),
    },
    ...(browserPort !== undefined
      ? { browser: { port: browserPort, host: browserFile.host ?? pick('host') ?? L.DEFAULT_HOST } }
      : {}),
    limits,
    rateLimit,
    attachments: merge(DEFAULT_ATTACHMENTS, 'attachments'),
  };
}

const storageField = (field: string, rule: string): ServerError =>
  new ServerError('CONFIG_INVALID', `config: field "storage.${field}": ${rule}`);

/** The storage section's cross-field rules; each error names the field. */
function resolveStorage(s: NonNullable<RelayConfigFile['storage']>): StorageConfig {
  const engine = s.engine ?? 'sqlite';
  if (engine === 'sqlite') {
    if (s.postgres !== undefined) {
      throw storageField('postgres', 'given, but storage.engine is not "postgres"');
    }
    return {
      engine,
      synchronous: s.synchronous ?? 'full',
      ...(s.file !== undefined ? { file: s.file } : {}),
    };
  }
  if (s.kind !== undefined) throw storageField('kind', 'contradicts storage.engine "postgres"');
  for (const f of ['file', 'synchronous'] as const) {
    if (s[f] !== undefined) throw storageField(f, 'applies to the sqlite engine only');
  }
  const pg = s.postgres;
  if (pg === undefined)
    throw storageField('postgres', 'required when storage.engine is "postgres"');
  if (pg.url === undefined && pg.host === undefined) {
    throw storageField('postgres.url', 'give a url or a host');
  }
  if (pg.password !== undefined && pg.passwordFile !== undefined) {
    throw storageField('postgres.passwordFile', 'give either password or passwordFile, not both');
  }
  return { engine, postgres: pg };
}

const busField = (field: string, rule: string): ServerError =>
  new ServerError('CONFIG_INVALID', `config: field "bus.${field}": ${rule}`);

/** The bus section's cross-field rules; each error names the field. */
function resolveBus(b: NonNullable<RelayConfigFile['bus']>): BusConfig {
  const engine = b.engine ?? 'local';
  if (engine === 'local') {
    if (b.redis !== undefined) throw busField('redis', 'given, but bus.engine is not "redis"');
    return { engine };
  }
  const r = b.redis;
  if (r === undefined) throw busField('redis', 'required when bus.engine is "redis"');
  if (r.url === undefined && r.host === undefined) {
    throw busField('redis.url', 'give a url or a host');
  }
  return { engine, redis: { ...r, keyPrefix: r.keyPrefix ?? DEFAULT_REDIS_KEY_PREFIX } };
}
