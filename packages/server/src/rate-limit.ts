/**
 * Sliding-window rate limiter (M7), one instance per connection and one per identity.
 *
 * Sliding-window counter: the count of the current fixed window plus the previous
 * window's count weighted by how much of it still overlaps the sliding window. O(1)
 * memory per key (an idle connection costs four numbers), and it never lets more than
 * twice the limit through in any window-length interval, unlike a plain fixed window
 * that allows a double burst at the boundary without noticing.
 */

export class SlidingWindowLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  #windowStart = 0;
  #current = 0;
  #previous = 0;

  constructor(limit: number, windowMs: number, now: () => number) {
    this.#limit = limit;
    this.#windowMs = windowMs;
    this.#now = now;
    this.#windowStart = now();
  }

  #roll(t: number): void {
    const elapsedWindows = Math.floor((t - this.#windowStart) / this.#windowMs);
    if (elapsedWindows <= 0) return;
    this.#previous = elapsedWindows === 1 ? this.#current : 0;
    this.#current = 0;
    this.#windowStart += elapsedWindows * this.#windowMs;
  }

  /** Estimated events in the sliding window ending now. */
  count(): number {
    const t = this.#now();
    this.#roll(t);
    const overlap = 1 - (t - this.#windowStart) / this.#windowMs;
    return this.#current + this.#previous * overlap;
  }

  /**
   * Records `n` events; returns false when they would take the window over the limit
   * (the events are still counted: a flooder does not get a cheaper retry).
   */
  take(n = 1): boolean {
    const before = this.count();
    this.#current += n;
    return before + n <= this.#limit;
  }
}
