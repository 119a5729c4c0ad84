/**
 * `@parley/client`: the client core shared by the terminal and web apps. It does no
 * I/O itself: storage (`ClientStore`), transport and clock are interfaces that the
 * apps supply (Node adapters live in `@parley/client/node`).
 */
export { ClientError } from './errors.js';
export type { ClientErrorCode } from './errors.js';
export { checkUserName, DEFAULT_DEVICE_ID, USER_NAME_PATTERN } from './names.js';
export type {
  ClientStore,
  Contact,
  ConversationSummary,
  ListMessagesOptions,
  MessageStatus,
  OutboxEntry,
  StoreWrite,
  StoredMessage,
  TrustState,
} from './store/types.js';
export { MemoryStore, selectMessages, summarise } from './store/memory.js';
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
