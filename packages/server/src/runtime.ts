/**
 * Settings for a process whose job is to run the relay (`parley server`), applied once
 * before it starts. Not applied by `startRelay` itself: they are process-wide, and a
 * program that embeds the relay (tests, an application server) keeps its own.
 */
import { setFlagsFromString } from 'node:v8';

/**
 * Turns off V8's allocation-site pretenuring. Under a burst the relay's per-message
 * objects live for a whole round trip and survive young-generation collections, so V8
 * learns to allocate them straight into the old generation; it keeps doing so after the
 * burst, when they die within a millisecond, and the relay then runs back-to-back full
 * mark-compacts. Measured with `npm run bench:relay` (500 pairs, 1000 blocks/s after the
 * saturation phase): one mark-compact every ~480 ms with incremental steps of up to
 * 8.7 ms, p99 latency 9-10 ms; without pretenuring only young-generation collections
 * and p99 3-5 ms. Costs nothing measurable in throughput.
 */
export function tuneRelayProcess(): void {
  setFlagsFromString('--no-allocation-site-pretenuring');
}
