/**
 * Rate limit for audit records of refused client certificates. A revoked device whose
 * software keeps reconnecting would otherwise add a record per attempt forever and
 * bury everything else. The first refusal of a certificate (by serial; by address and
 * reason when the peer sent none) is recorded at once; repeats within
 * {@link REJECTION_AUDIT_WINDOW_MS} are counted, and the next record after the window
 * carries how many were left out (`value`), so nothing disappears without a trace.
 */
import type { AuditEvent } from './audit.js';

/** One record per refused certificate per this period: ten minutes keeps a retry loop to six an hour. */
export const REJECTION_AUDIT_WINDOW_MS = 10 * 60_000;
/** Distinct certificates tracked; beyond it the oldest entry is forgotten (and recorded again). */
export const REJECTION_AUDIT_MAX_KEYS = 10_000;

interface Entry {
  windowStart: number;
  suppressed: number;
}

export class RejectionAuditLimiter {
  readonly #entries = new Map<string, Entry>();

  constructor(
    private readonly write: (event: AuditEvent) => void,
    private readonly now: () => number,
  ) {}

  /** Records `event` unless the same refusal was recorded within the window. */
  record(event: AuditEvent & { readonly serial?: string }, address: string): void {
    const key = `${event.serial ?? `addr:${address}`}|${event.code ?? ''}`;
    const t = this.now();
    const e = this.#entries.get(key);
    if (e !== undefined && t - e.windowStart < REJECTION_AUDIT_WINDOW_MS) {
      e.suppressed++;
      return;
    }
    const suppressed = e?.suppressed ?? 0;
    this.#entries.delete(key);
    this.#entries.set(key, { windowStart: t, suppressed: 0 });
    if (this.#entries.size > REJECTION_AUDIT_MAX_KEYS) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    this.write(suppressed > 0 ? { ...event, value: suppressed } : event);
  }
}
