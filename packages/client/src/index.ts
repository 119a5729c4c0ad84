/**
 * `@parley/client`: the client core shared by the terminal and web apps. It does no
 * I/O itself: storage (`ClientStore`), transport and clock are interfaces that the
 * apps supply (Node adapters live in `@parley/client-node`, a separate package, so
 * this one installs no native module).
 */
export { ClientError } from './errors.js';
export type { ClientErrorCode } from './errors.js';
export { checkUserName, DEFAULT_DEVICE_ID, USER_NAME_PATTERN } from './names.js';
export { normaliseRelayUrl } from './relay-url.js';
export type {
  ClientStore,
  Contact,
  ConversationSummary,
  ListMessagesOptions,
  MessageStatus,
  OutboxEntry,
  OutboxFrame,
  OutboxState,
  StoreWrite,
  StoredMessage,
  TrustState,
} from './store/types.js';
// Store backends convert outboxes from before typed records with these (upgrades).
export { LEGACY_OUTBOX_META_PREFIX, typedOutbox, upgradeOutboxWrites } from './outbox-records.js';
export type { LegacyOutbox, LegacyOutboxEntry } from './outbox-records.js';
export { MemoryStore, selectMessages, summarise } from './store/memory.js';
export {
  parseSearchQuery,
  searchInMessages,
  searchLimit,
  fts5MatchExpression,
  tokenize,
  DEFAULT_SEARCH_LIMIT,
  MAX_SEARCH_LIMIT,
  MAX_SEARCH_TERMS,
} from './store/search.js';
export type { SearchOptions, SearchTerm } from './store/search.js';
export {
  checkKdfParams,
  deriveStoreKey,
  keyCheckValue,
  keyMatchesCheck,
  newKdfParams,
  DEFAULT_KDF_ITERATIONS,
  DEFAULT_KDF_MEMORY_KIB,
  DEFAULT_KDF_PARALLELISM,
  MIN_KDF_MEMORY_KIB,
  SALT_BYTES,
  STORE_KEY_BYTES,
} from './passphrase.js';
export type { KdfParams } from './passphrase.js';
export {
  Account,
  META_ACCOUNT,
  META_IDENTITY_SECRET,
  META_TLS_CA,
  META_TLS_CERT,
  META_NEXT_PREKEY_ID,
  META_PREKEYS_PUBLISHED,
} from './account.js';
export type { AccountInfo } from './account.js';
export {
  ParleyClient,
  REQUEST_TIMEOUT_MS,
  ONE_TIME_PREKEYS_TARGET,
  ONE_TIME_PQ_PREKEYS_TARGET,
} from './client.js';
export type { ClientEvent, ClientListener, ClientOptions } from './client.js';
export {
  ConnectionDriver,
  LIVENESS_TIMEOUT_MS,
  RECONNECT_INITIAL_MS,
  RECONNECT_MAX_MS,
  WATCHDOG_INTERVAL_MS,
} from './connection.js';
export type {
  ClientTransport,
  ConnectionDriverOptions,
  ConnectionState,
  DrivenClient,
} from './connection.js';
export type { ClientSocket, ClientSocketHandlers, SocketOpener } from './socket.js';
export { systemClock, systemTimers } from './timers.js';
export type { Clock, TimerHandle, Timers } from './timers.js';
export type {
  DecryptResult,
  E2ee,
  EncryptResult,
  Identity,
  PrekeyBatch,
  PrekeyRequest,
  SafetyNumber,
} from './e2ee.js';
export {
  decodeEnvelope,
  encodeEnvelope,
  ENVELOPE_VERSION,
  MAX_MESSAGE_TEXT_BYTES,
} from './envelope.js';
export type {
  Envelope,
  EnvelopeKind,
  ReceiptEnvelope,
  RepairReason,
  ResetEnvelope,
  TextEnvelope,
  TimerEnvelope,
} from './envelope.js';
export { DISAPPEARING_TIMERS_MS, MAX_RECEIPT_IDS, REPAIR_REASONS } from './envelope.js';
export { EXPIRY_SWEEP_MAX_WAIT_MS } from './disappearing.js';
export {
  DEFAULT_REPAIR_POLICY,
  MAX_REPAIRS_PER_PEER,
  MAX_RESENDS_PER_MESSAGE,
  REPAIR_RETRY_AFTER_MS,
  REPAIR_WINDOW_MS,
} from './repair.js';
export type { RepairPolicy } from './repair.js';
export { nextStatus, relayReceiptStatus, statusRank } from './receipts.js';
export type { DeliveryEvent } from './delivery.js';
export { KeyedQueue } from './queue.js';
export { describeTrust, markVerified, observeIdentityKey } from './trust.js';
export type { AuthMode, TrustOutcome } from './trust.js';
export { createProtocolE2ee } from './protocol-adapter.js';
export {
  DEFAULT_MAX_ATTACHMENT_BYTES,
  MIN_PADDED_BYTES,
  chunkLayout,
  paddedSize,
} from './attachment-crypto.js';
export {
  FILE_TEXT_PREFIX,
  displayText,
  fileOfText,
  formatBytes,
  safeFileName,
  type FileEntry,
} from './attachment-entry.js';
export {
  Attachments,
  TRANSFER_STALL_MS,
  UPLOAD_WINDOW_CHUNKS,
  type PreparedFile,
  type TransferProgress,
  type UploadReport,
} from './attachments.js';
export type { RevocationHooks } from './revocation-hooks.js';
export { groupConversationId, groupIdOfConversation } from './groups/group-records.js';
export { GROUP_RESYNC_AFTER_MS } from './groups/groups.js';
export type { GroupEvent, GroupInfo } from './groups/groups.js';
export {
  GROUP_PENDING_MAX_MS,
  GROUP_REQUEST_RETRY_MS,
  MAX_PENDING_GROUP_MESSAGES,
} from './groups/group-messages.js';
export { ROOM_JOIN_WAIT_MS } from './groups/room.js';
export {
  BACKUP_FORMAT_SQLITE_IMAGE,
  BACKUP_FORMAT_VERSION,
  BACKUP_HEADER_BYTES,
  RECOVERY_KEY_BYTES,
  backupCounts,
  newRecoveryKey,
  openBackup,
  readBackupHeader,
  sealBackup,
} from './backup-format.js';
export type {
  BackupHeader,
  BackupSecretKind,
  OpenedBackup,
  SealBackupOptions,
} from './backup-format.js';
