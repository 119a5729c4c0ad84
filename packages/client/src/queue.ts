/**
 * Per-peer serial queues (Signal-Desktop's conversation job queues): every job for one
 * peer, incoming or outgoing, runs after the previous one for that peer has finished,
 * because each one reads and advances the same session state. Different peers run
 * independently, so one slow conversation does not stall the others.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  /** Runs `job` after every earlier job of `key`; its result or error is returned. */
  run<T>(key: string, job: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.then(job, job);
    // The tail must never reject, or the next job would see the previous failure.
    const tail = next.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return next;
  }

  /** Resolves when every job queued so far has settled. */
  async idle(): Promise<void> {
    while (this.tails.size > 0) await Promise.all([...this.tails.values()]);
  }
}
