/**
 * `@parley/wire`: the client-to-server protocol. Binary, versioned, schema-checked
 * frames (frames.ts), their codec (codec.ts), fixed-size blocks with fragmentation
 * (blocks.ts, reassembler.ts), per-connection readers and writers (stream.ts),
 * version negotiation and freshness (version.ts), and the challenge-signing
 * transcript (auth.ts). Portable: runs in Node and browsers. Byte-exact spec:
 * docs/wire.md.
 *
 * Every function throws `WireError` (with a stable `code`) and nothing else.
 *
 * @example
 * ```ts
 * import { FrameReader, FrameWriter } from '@parley/wire';
 * const writer = new FrameWriter();
 * const reader = new FrameReader({ direction: 'toServer', now: () => Date.now() });
 * for (const block of writer.write({ type: 'ping', timestamp: Date.now() })) {
 *   const frame = reader.push(block); // { type: 'ping', timestamp: ... }
 * }
 * ```
 */
export { WireError, type WireErrorCode, type WireResult } from './errors.js';
export * from './limits.js';
export { WS_PATH } from './endpoint.js';
export { MAX_TLS_FRAGMENT_BYTES, blockMessageBytes, tlsFragmentForBlocks } from './records.js';
export {
  DELIVER_KINDS,
  RETIRED_FRAME_CODES,
  CERT_REFUSAL_REASONS,
  ERROR_CODES,
  FRAME_SPECS,
  LIVE_ONLY_FRAME_TYPES,
  RECEIPT_STATUSES,
  type AckFrame,
  type BlobBeginFrame,
  type BlobChunkFrame,
  type BlobDataFrame,
  type BlobFetchFrame,
  type BlobStatusFrame,
  type Address,
  type ChallengeFrame,
  type ClientFrame,
  type ClientFrameType,
  type DeliverFrame,
  type DeliverKind,
  type Direction,
  type ErrorFrame,
  type CertLoginFrame,
  type CertRefusalReason,
  type CertRefusedFrame,
  type ErrorFrameCode,
  type Frame,
  type FrameOf,
  type FrameSpec,
  type FrameType,
  type HelloFrame,
  type IdentityLookupFrame,
  type IdentityResultFrame,
  type IdentityDh,
  type KeysBundleFrame,
  type KeysLookupFrame,
  type LoginFrame,
  type ResumeFrame,
  type MailboxEmptyFrame,
  type MailboxFetchFrame,
  type PingFrame,
  type PongFrame,
  type PrekeysLowFrame,
  type PrekeysStoredFrame,
  type PrekeysUploadFrame,
  type PresenceFrame,
  type PresenceListFrame,
  type PresenceListResultFrame,
  type ReceiptFrame,
  type StoredReceiptFrame,
  type ReceiptStatus,
  type RegisterFrame,
  type SendFrame,
  type ServerFrame,
  type ServerFrameType,
  type SessionTerminateFrame,
  type GroupSendFrame,
  type WelcomeFrame,
} from './frames.js';
export { decodeFrame, encodeFrame, frameTypeOfCode, tryDecodeFrame } from './codec.js';
export {
  blocksForFrame,
  checkBlockBytes,
  chunkCapacity,
  frameToBlocks,
  parseBlock,
  tryParseBlock,
  validateBlockSize,
  type Block,
  type Padding,
} from './blocks.js';
export { blobChunkCapacity, isBlobChunkBlock } from './blob-chunks.js';
export { Reassembler, type ReassemblerOptions } from './reassembler.js';
export {
  FrameReader,
  FrameWriter,
  type FrameFor,
  type FrameReaderOptions,
  type FrameWriterOptions,
} from './stream.js';
export { checkFrameFreshness, checkFreshness, isLiveOnly, negotiateVersion } from './version.js';
export { authSignedData, type AuthSignedDataInput } from './auth.js';
export { isValidName, maxStructBytes, NAME_PATTERN } from './schema.js';
export { summarizeFrame } from './summary.js';
