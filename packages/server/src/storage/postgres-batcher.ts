/**
 * Group commit for small writes of the PostgreSQL backend (acks, receipts): calls that
 * arrive while a batch is running join the next one, so one statement and one WAL flush
 * serve many of them, and each call still resolves only after the statement that made
 * it durable returned.
 */
import { storageError } from './postgres-pool.js';

/** Most items in one statement: bounds its size and how much one failure refuses. */
const MAX_BATCH_ITEMS = 256;

interface Waiting<I, O> {
  readonly item: I;
  readonly resolve: (out: O) => void;
  readonly reject: (err: unknown) => void;
}

export class PostgresBatcher<I, O> {
  readonly #run: (items: readonly I[]) => Promise<O[]>;
  readonly #queue: Waiting<I, O>[] = [];
  #running: Promise<void> | undefined;

  /** `run` writes a batch durably and returns one result per item, in order. */
  constructor(run: (items: readonly I[]) => Promise<O[]>) {
    this.#run = run;
  }

  add(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      this.#kick();
    });
  }

  /** Resolves once nothing is queued or running. */
  async drain(): Promise<void> {
    while (this.#running) await this.#running;
  }

  #kick(): void {
    if (this.#running || this.#queue.length === 0) return;
    const batch = this.#queue.splice(0, MAX_BATCH_ITEMS);
    this.#running = this.#runBatch(batch).finally(() => {
      this.#running = undefined;
      this.#kick();
    });
  }

  async #runBatch(batch: readonly Waiting<I, O>[]): Promise<void> {
    let out: O[];
    try {
      out = await this.#run(batch.map((w) => w.item));
    } catch (err) {
      const e = storageError(err);
      for (const w of batch) w.reject(e);
      return;
    }
    batch.forEach((w, i) => w.resolve(out[i] as O));
  }
}
