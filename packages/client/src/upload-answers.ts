/**
 * Answers to `prekeys.upload` (docs/wire.md §4.2). The upload frame has no request id;
 * the relay answers each upload, in order, with `prekeys.stored` or with an `error`
 * (`failed`, `too_large`) that carries no correlation. So the waiting uploads form a
 * queue and each answer settles the oldest one.
 *
 * Owns: the waiting uploads of one connection. Knows nothing of keys or storage.
 */
import { ClientError } from './errors.js';
import type { TimerHandle, Timers } from './timers.js';

/** The one-time stock the relay reports after storing an upload. */
export interface StoredStock {
  readonly remainingOneTime: number;
  readonly remainingOneTimePq: number;
}

interface Waiter {
  resolve(stock: StoredStock): void;
  reject(err: ClientError): void;
  timer: TimerHandle;
  /** Timed out: it stays queued so that its late answer, if any, is not taken for the next one's. */
  timedOut: boolean;
}

/** Uncorrelated error codes the relay uses only to refuse an upload. */
const UPLOAD_REFUSALS: ReadonlySet<string> = new Set(['failed', 'too_large']);

export class UploadAnswers {
  readonly #waiting: Waiter[] = [];
  #answers = 0;
  #latest: StoredStock | undefined;

  /** How many `prekeys.stored` arrived so far (a mark to compare a `prekeys.low` against). */
  get answers(): number {
    return this.#answers;
  }

  /**
   * The stock of the newest `prekeys.stored` if it arrived after `mark` (from `answers`),
   * else undefined. A `prekeys.low` the relay sent before it stored our upload is stale
   * once that upload's answer is here: replenishing from it would upload a second batch.
   */
  newerThan(mark: number): StoredStock | undefined {
    return this.#answers > mark ? this.#latest : undefined;
  }

  constructor(
    private readonly timeoutMs: number,
    private readonly timers: Timers,
  ) {}

  /**
   * Call right after the upload frame went out; settles with the relay's answer.
   * @throws ClientError `RELAY_ERROR` (refused), `TIMEOUT`, `TRANSPORT` (connection lost).
   */
  expect(): Promise<StoredStock> {
    return new Promise<StoredStock>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timedOut: false,
        timer: this.timers.set(() => {
          waiter.timedOut = true;
          reject(new ClientError('TIMEOUT', 'relay did not confirm the prekey upload in time'));
        }, this.timeoutMs),
      };
      this.#waiting.push(waiter);
    });
  }

  /** A `prekeys.stored` arrived. */
  stored(stock: StoredStock): void {
    this.#answers++;
    this.#latest = {
      remainingOneTime: stock.remainingOneTime,
      remainingOneTimePq: stock.remainingOneTimePq,
    };
    const w = this.#waiting.shift();
    if (!w || w.timedOut) return;
    this.timers.clear(w.timer);
    w.resolve({
      remainingOneTime: stock.remainingOneTime,
      remainingOneTimePq: stock.remainingOneTimePq,
    });
  }

  /** An uncorrelated `error` arrived; returns whether it answered an upload. */
  refused(code: string): boolean {
    if (!UPLOAD_REFUSALS.has(code)) return false;
    const w = this.#waiting.shift();
    if (!w) return false;
    if (w.timedOut) return true;
    this.timers.clear(w.timer);
    w.reject(new ClientError('RELAY_ERROR', `relay refused the prekey upload (${code})`));
    return true;
  }

  /** The connection closed: no answer will come. */
  failAll(): void {
    for (const w of this.#waiting.splice(0)) {
      this.timers.clear(w.timer);
      if (!w.timedOut)
        w.reject(
          new ClientError('TRANSPORT', 'connection lost before the prekey upload was confirmed'),
        );
    }
  }
}
