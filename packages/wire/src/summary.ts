/**
 * A log-safe view of a frame. Loggers must never see payloads, keys, signatures or
 * session tokens (M34); this keeps the type and the routing metadata an operator needs
 * (names, ids, counts, sizes) and replaces every byte string by its length.
 */
import type { Frame } from './frames.js';

/** Fields never shown, not even as a length: they are bearer secrets. */
const HIDDEN_FIELDS: ReadonlySet<string> = new Set(['sessionToken']);

function summarize(value: unknown): unknown {
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  if (Array.isArray(value)) return `<${value.length} items>`;
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (!HIDDEN_FIELDS.has(k)) out[k] = summarize(v);
    }
    return out;
  }
  return value;
}

/**
 * Log-safe summary: byte fields become `"<n bytes>"`, lists `"<n items>"`, session
 * tokens are dropped.
 *
 * @example
 * ```ts
 * summarizeFrame({ type: 'ack', serverMessageId: 7 }); // { type: 'ack', serverMessageId: 7 }
 * ```
 */
export function summarizeFrame(frame: Frame): Record<string, unknown> {
  return summarize(frame) as Record<string, unknown>;
}
