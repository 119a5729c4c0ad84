import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SlidingWindowLimiter } from '../src/rate-limit.js';
import { DEFAULT_RATE_LIMIT } from '../src/config.js';

describe('sliding-window limiter', () => {
  it('allows the limit within a window and refuses the next event', () => {
    let t = 0;
    const l = new SlidingWindowLimiter(10, 5000, () => t);
    for (let i = 0; i < 10; i++) {
      t += 10;
      expect(l.take()).toBe(true);
    }
    expect(l.take()).toBe(false);
  });

  it('forgets events as the window slides past them', () => {
    let t = 0;
    const l = new SlidingWindowLimiter(10, 5000, () => t);
    for (let i = 0; i < 10; i++) l.take();
    t = 10_001; // two windows later, nothing of the burst overlaps
    expect(l.count()).toBe(0);
    expect(l.take()).toBe(true);
  });

  it('never admits more than twice the limit in any window-length interval', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 400 }), { minLength: 1, maxLength: 300 }),
        (gaps) => {
          let t = 0;
          const l = new SlidingWindowLimiter(10, 1000, () => t);
          const admitted: number[] = [];
          for (const g of gaps) {
            t += g;
            if (l.take()) admitted.push(t);
          }
          for (let i = 0; i < admitted.length; i++) {
            const inWindow = admitted.filter(
              (x) => x >= (admitted[i] as number) && x < (admitted[i] as number) + 1000,
            );
            expect(inWindow.length).toBeLessThanOrEqual(20);
          }
        },
      ),
    );
  });

  it('default limits never trip for a fast typist pasting a maximal multi-block message', () => {
    let t = 0;
    const c = DEFAULT_RATE_LIMIT;
    const blocks = new SlidingWindowLimiter(c.maxBlocksPerConnection, c.windowMs, () => t);
    const messages = new SlidingWindowLimiter(c.maxMessagesPerConnection, c.windowMs, () => t);
    // One minute of typing: a message every 300 ms (each 1 block + 1 ack), and a
    // 64-block paste every 10 s, all at once.
    let ok = true;
    for (let ms = 0; ms < 60_000; ms += 300) {
      t = ms;
      ok &&= messages.take() && blocks.take(2);
      if (ms % 9_900 === 0) ok &&= messages.take() && blocks.take(64);
    }
    expect(ok).toBe(true);
    // A script firing blocks back to back trips it within one window.
    let tripped = false;
    for (let i = 0; i < 10_000 && !tripped; i++) {
      t += 1;
      tripped = !blocks.take();
    }
    expect(tripped).toBe(true);
  });
});
