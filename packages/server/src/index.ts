/**
 * `@parley/server`: the zero-knowledge relay. It authenticates devices (mutual TLS or
 * signed challenge), binds every frame to the authenticated identity, enforces limits,
 * and routes and stores opaque ciphertext it cannot read.
 *
 * @example
 * ```ts
 * import { startRelay } from '@parley/server';
 * const relay = await startRelay({ dataDir: '/tmp/parley', port: 0 });
 * console.log(relay.url); // wss://127.0.0.1:PORT/ws
 * await relay.close();
 * ```
 */
export {
  startRelay,
  type CrlReloadTrigger,
  type StartRelayOptions,
  type RunningRelay,
} from './start.js';
export { ServerError, type ServerErrorCode } from './errors.js';
export {
  BACKUP_FILES,
  backupRelay,
  restoreRelay,
  type BackupOptions,
  type BackupResult,
  type RestoreResult,
} from './backup.js';
export { DATA_LOCK_FILE, lockDataDir, type DataLock } from './data-lock.js';
export { relayPaths, type RelayPaths } from './paths.js';
export { tuneRelayProcess } from './runtime.js';
export {
  DEFAULT_LIMITS,
  DEFAULT_RATE_LIMIT,
  readConfigFile,
  resolveConfig,
  validateConfigFile,
  type ConfigOverrides,
  type RateLimitConfig,
  type RelayConfig,
  type RelayConfigFile,
  type RelayLimits,
} from './config.js';
export * from './limits.js';
export {
  AUDIT_CHECKPOINT_INTERVAL_MS,
  AUDIT_CHECKPOINT_RECORDS,
  AUDIT_KEY_BYTES,
  AuditLog,
  describeAuditFailure,
  loadAuditKey,
  loadOrCreateAuditKey,
  parseAuditCheckpoint,
  readAuditCheckpoints,
  verifyAuditLog,
  type AuditCheckpoint,
  type AuditEvent,
  type AuditEventType,
  type AuditFailureReason,
  type AuditLogOptions,
  type AuditRecord,
  type AuditVerification,
  type VerifyAuditOptions,
} from './audit.js';
export { SlidingWindowLimiter } from './rate-limit.js';
export {
  MemoryStore,
  PostgresStore,
  SqliteStore,
  type PostgresConnection,
} from './storage/index.js';
export type * from './storage/types.js';
export { RelayCore, type RelayCoreDeps } from './relay.js';
export type { Connection, PeerInfo } from './connection.js';
export type * from './bus/types.js';
export { LocalBus, LocalBusHub, LocalQuota, type LocalQuotaLimits } from './bus/local.js';
export { decodeBusMessage, encodeBusMessage } from './bus/codec.js';
export type { AuditSink, CoreMetrics, TokenRegistry } from './host.js';
