/**
 * `@parley/client/node`: the Node adapters of the client core: the encrypted SQLite
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
