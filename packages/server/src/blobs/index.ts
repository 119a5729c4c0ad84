export * from './types.js';
export { MemoryBlobStore } from './memory.js';
export { BLOBS_DIR, SqliteFileBlobStore } from './sqlite-files.js';
export { PostgresBlobStore } from './postgres.js';
export { copyBlobStore, restoreBlobStore, type BlobsCopied } from './sqlite-files-backup.js';
