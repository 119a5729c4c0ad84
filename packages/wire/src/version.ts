/**
 * Version negotiation and the freshness rule for live-only frames (M26).
 *
 * Negotiation: the client's `hello` lists the protocol versions it speaks; the server
 * picks the highest one it also speaks and names it in `challenge`/`welcome`. `hello`
 * is always sent in a version-1 block and its layout never changes, so any two
 * builds can at least agree that they disagree.
 */
import { WireError } from './errors.js';
import { LIVE_ONLY_FRAME_TYPES, type Frame } from './frames.js';
import { FRESHNESS_WINDOW_MS, SUPPORTED_PROTOCOL_VERSIONS } from './limits.js';

/**
 * The highest version in both lists.
 *
 * @throws WireError `VERSION_UNSUPPORTED` when there is none.
 * @example
 * ```ts
 * negotiateVersion([1, 2], [1]); // 1
 * ```
 */
export function negotiateVersion(
  offered: readonly number[],
  supported: readonly number[] = SUPPORTED_PROTOCOL_VERSIONS,
): number {
  let best = -1;
  for (const v of offered) if (supported.includes(v) && v > best) best = v;
  if (best < 0) {
    throw new WireError(
      'VERSION_UNSUPPORTED',
      `offered [${offered.join(', ')}], supported [${supported.join(', ')}]`,
    );
  }
  return best;
}

/**
 * Checks that `timestampMs` is within `windowMs` of `nowMs`, in either direction
 * (peer clocks may run ahead or behind).
 *
 * @throws WireError `STALE_TIMESTAMP`.
 */
export function checkFreshness(
  timestampMs: number,
  nowMs: number,
  windowMs: number = FRESHNESS_WINDOW_MS,
): void {
  if (!(Math.abs(nowMs - timestampMs) <= windowMs)) {
    throw new WireError('STALE_TIMESTAMP', `timestamp off by more than ${windowMs} ms`);
  }
}

/** True for frame types that must pass `checkFreshness` (`LIVE_ONLY_FRAME_TYPES`). */
export function isLiveOnly(frame: Frame): boolean {
  return LIVE_ONLY_FRAME_TYPES.has(frame.type);
}

/**
 * Applies the freshness rule to a decoded frame: live-only frames must be fresh;
 * every other frame passes (stored frames are protected by the ratchet and the
 * client's seen-set instead).
 *
 * @throws WireError `STALE_TIMESTAMP`.
 */
export function checkFrameFreshness(
  frame: Frame,
  nowMs: number,
  windowMs: number = FRESHNESS_WINDOW_MS,
): void {
  if (!isLiveOnly(frame)) return;
  checkFreshness((frame as { timestamp: number }).timestamp, nowMs, windowMs);
}
