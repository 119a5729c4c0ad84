export type * from './types.js';
export { MemoryStore } from './memory.js';
export { SqliteStore } from './sqlite.js';
export { PostgresStore, type PostgresConnection } from './postgres.js';
