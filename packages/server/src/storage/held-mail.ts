/**
 * Mail that went out live and is kept in memory for a short while, in case the
 * recipient's ack makes writing it moot (see `SubmitOptions.holdMs`). The registry only
 * keeps and hands back items; the backend decides how they are written.
 *
 * Items are kept in insertion order, which backends keep equal to server-id order, so
 * releasing a prefix (or one recipient's items) keeps every recipient's writes in id
 * order.
 */
import type { CommitOutcome, NewMail } from './types.js';

/**
 * Most payload bytes held in memory waiting for an ack. Past this, new mail is written
 * at once: a slow-acking crowd of recipients costs writes, never unbounded memory.
 * 32 MiB is about 8 000 block-sized messages.
 */
export const MAX_HELD_BYTES = 32 * 1024 * 1024;

/** One held item and how its `committed` promise settles. */
export interface HeldItem {
  readonly id: number;
  readonly mail: NewMail;
  /** "deviceId:name" of the recipient. */
  readonly recipientKey: string;
  /** performance.now() after which it is written. */
  readonly releaseAt: number;
  readonly resolve: (outcome: CommitOutcome) => void;
  readonly reject: (err: unknown) => void;
}

export class HeldMail {
  readonly #items = new Map<number, HeldItem>();
  readonly #perRecipient = new Map<string, number>();
  #bytes = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Called with the items whose hold ran out, oldest first. */
  readonly #onDue: (items: HeldItem[]) => void;

  constructor(onDue: (items: HeldItem[]) => void) {
    this.#onDue = onDue;
  }

  get size(): number {
    return this.#items.size;
  }

  /** Whether `bytes` more payload may be held. */
  hasRoomFor(bytes: number): boolean {
    return this.#bytes + bytes <= MAX_HELD_BYTES;
  }

  /** Held items of one recipient. */
  countFor(recipientKey: string): number {
    return this.#perRecipient.get(recipientKey) ?? 0;
  }

  has(id: number): boolean {
    return this.#items.has(id);
  }

  hold(item: HeldItem): void {
    this.#items.set(item.id, item);
    this.#bytes += item.mail.payload.length;
    this.#perRecipient.set(item.recipientKey, this.countFor(item.recipientKey) + 1);
    this.#arm();
  }

  /** Takes the item out if `recipientKey` is its recipient (only the recipient acks). */
  take(id: number, recipientKey: string): HeldItem | undefined {
    const h = this.#items.get(id);
    if (!h || h.recipientKey !== recipientKey) return undefined;
    this.#remove(h);
    return h;
  }

  /** Takes out every item (`recipientKey` undefined) or one recipient's, in id order. */
  release(recipientKey?: string): HeldItem[] {
    if (this.#items.size === 0) return [];
    if (recipientKey !== undefined && !this.#perRecipient.has(recipientKey)) return [];
    const out: HeldItem[] = [];
    // Deleting the entry being visited is safe while iterating a Map.
    for (const h of this.#items.values()) {
      if (recipientKey !== undefined && h.recipientKey !== recipientKey) continue;
      this.#remove(h);
      out.push(h);
    }
    return out;
  }

  /** Stops the timer; what is still held stays until `release`. */
  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #remove(h: HeldItem): void {
    this.#items.delete(h.id);
    this.#bytes -= h.mail.payload.length;
    const n = this.countFor(h.recipientKey) - 1;
    if (n === 0) this.#perRecipient.delete(h.recipientKey);
    else this.#perRecipient.set(h.recipientKey, n);
  }

  /** One timer for all held mail, set for the oldest item's release time. */
  #arm(): void {
    if (this.#timer !== undefined) return;
    const first = this.#items.values().next();
    if (first.done === true) return;
    const wait = Math.max(0, first.value.releaseAt - performance.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const now = performance.now();
      const due: HeldItem[] = [];
      for (const h of this.#items.values()) {
        if (h.releaseAt > now) break;
        this.#remove(h);
        due.push(h);
      }
      if (due.length > 0) this.#onDue(due);
      this.#arm();
    }, wait);
    this.#timer.unref();
  }
}
