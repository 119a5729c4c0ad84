/**
 * The TLS fragment cap that puts one block in one record (docs/wire.md §2.1): the size
 * of a one-block WebSocket message by RFC 6455 §5.2 for each length form, with and
 * without the client's masking key, capped at the TLS fragment maximum.
 */
import { expect, it } from 'vitest';
import {
  BLOCK_BYTES,
  MAX_BLOCK_BYTES,
  MAX_TLS_FRAGMENT_BYTES,
  MIN_BLOCK_BYTES,
  blockMessageBytes,
  tlsFragmentForBlocks,
} from '@parley/wire';

it('a block message is the block plus its WebSocket header (and the mask from a client)', () => {
  expect(blockMessageBytes(BLOCK_BYTES, false)).toBe(4100);
  expect(blockMessageBytes(BLOCK_BYTES, true)).toBe(4104);
  expect(blockMessageBytes(MIN_BLOCK_BYTES, false)).toBe(516);
  expect(blockMessageBytes(0xffff, true)).toBe(0xffff + 8);
  expect(blockMessageBytes(MAX_BLOCK_BYTES, false)).toBe(MAX_BLOCK_BYTES + 10);
  expect(blockMessageBytes(MAX_BLOCK_BYTES, true)).toBe(MAX_BLOCK_BYTES + 14);
});

it('the TLS fragment is one block message, never above the TLS maximum', () => {
  expect(tlsFragmentForBlocks(BLOCK_BYTES, false)).toBe(4100);
  expect(tlsFragmentForBlocks(BLOCK_BYTES, true)).toBe(4104);
  expect(tlsFragmentForBlocks(16380, false)).toBe(MAX_TLS_FRAGMENT_BYTES);
  expect(tlsFragmentForBlocks(16380, true)).toBe(MAX_TLS_FRAGMENT_BYTES);
  expect(tlsFragmentForBlocks(MAX_BLOCK_BYTES, true)).toBe(MAX_TLS_FRAGMENT_BYTES);
});
