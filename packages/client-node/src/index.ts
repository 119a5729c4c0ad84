/**
 * `@parley/client-node`: the Node adapters of the client core (SQLite and `ws`, kept out
 * of the portable `@parley/client`): the encrypted SQLite
 * profile store, and (see transport.ts) the WebSocket-over-TLS transport.
 */
export { openSqliteStore, SqliteStore } from './sqlite-store.js';
export type { OpenSqliteOptions } from './sqlite-store.js';
export {
  createProfile,
  openProfile,
  profileExists,
  PROFILE_DB_FILE,
  PROFILE_HEADER_FILE,
} from './profile.js';
export type { ProfileOptions } from './profile.js';
export { changePassphrase, setDuressPassphrase } from './passphrase-change.js';
export { backupProfile, restoreProfile, BACKUP_FORMAT_VERSION } from './backup.js';
export type { BackupOptions, BackupResult, RestoreOptions, RestoreResult } from './backup.js';
export type { PassphraseChangeOptions } from './passphrase-change.js';
export {
  NodeTransport,
  describeConnectError,
  nodeSocketOpener,
  CONNECT_TIMEOUT_MS,
} from './transport.js';
export type { NodeSocketOptions, NodeTransportOptions } from './transport.js';
export {
  initProfile,
  openNodeClient,
  readPemFile,
  CONNECT_WAIT_MS,
  META_TLS_CA,
  META_TLS_CERT,
  META_TLS_KEY,
} from './app.js';
export type { InitOptions, NodeClient, OpenClientOptions } from './app.js';
export {
  CERT_EXPIRY_WARNING_DAYS,
  CRL_FETCH_WAIT_MS,
  META_PEER_SERIALS,
  META_TLS_CRL,
  RevocationWatch,
  type PeerRevocation,
} from './revocation.js';
export {
  createKeyProfile,
  installCertificate,
  type InstallCertificateOptions,
  type KeygenOptions,
} from './certificate.js';
export { updateProfileSettings } from './profile-settings.js';
export type { ProfileSettings, ProfileSettingsUpdate } from './profile-settings.js';
