/**
 * Prekey upkeep (docs/client.md, "Prekeys"): the initial set published after the first
 * `welcome`, the signed prekey rotated weekly (the replaced one kept through a grace
 * period), one-time keys topped up on `prekeys.low`. An upload counts as published
 * only once the relay answers `prekeys.stored`.
 *
 * Owns: the prekey id counter and the signed-prekey list (store meta), the uploads
 * waiting for their answer, and the prekey queue key (ids come from one counter, so
 * all generation runs in that one queue). Knows nothing of sessions or messages.
 */
import { utf8Decode, utf8Encode } from '@parley/crypto';
import { MAX_ONE_TIME_PREKEYS_PER_UPLOAD } from '@parley/wire';
import type { PrekeysLowFrame, PrekeysStoredFrame } from '@parley/wire';
import { META_NEXT_PREKEY_ID, META_PREKEYS_PUBLISHED, META_SIGNED_PREKEYS } from './account.js';
import type { CoreContext } from './context.js';
import type { PrekeyBatch } from './e2ee.js';
import { ClientError } from './errors.js';
import { SECRET_SIGNED_PREKEY } from './protocol-adapter.js';
import { REQUEST_TIMEOUT_MS } from './requests.js';
import type { StoreWrite } from './store/types.js';
import { UploadAnswers } from './upload-answers.js';

/**
 * One-time prekeys published at registration and topped up to on `prekeys.low`: the
 * wire's per-frame maximum, so one upload frame carries a full batch.
 */
export const ONE_TIME_PREKEYS_TARGET = MAX_ONE_TIME_PREKEYS_PER_UPLOAD;
/** One-time ML-KEM prekeys per batch (each ~1.2 KB; the last-resort key covers exhaustion). */
export const ONE_TIME_PQ_PREKEYS_TARGET = 20;
/**
 * Signed prekey lifetime before a new one is published (Signal rotates weekly): bounds
 * how long a compromised signed prekey secret is useful against new sessions.
 */
export const SIGNED_PREKEY_ROTATION_MS = 7 * 24 * 60 * 60 * 1000;
/**
 * How long a replaced signed prekey's secret is kept: initial messages made from an
 * older bundle may sit in the relay's mailbox that long (its 30-day retention).
 */
export const SIGNED_PREKEY_GRACE_MS = 30 * 24 * 60 * 60 * 1000;
/** Queue key serialising prekey generation (ids come from one counter). */
const PREKEY_QUEUE = '\u0000prekeys';
/** Largest prekey id before wrapping (u32). */
const MAX_PREKEY_ID = 0xffffffff;

interface SignedPrekeyEntry {
  readonly id: number;
  readonly createdAt: number;
}

export class Prekeys {
  /** Prekey uploads waiting for `prekeys.stored`. */
  private readonly uploads: UploadAnswers;

  constructor(private readonly ctx: CoreContext) {
    this.uploads = new UploadAnswers(REQUEST_TIMEOUT_MS, ctx.timers);
  }

  /**
   * After `welcome`: publish the initial set, or rotate the signed prekey. In the prekey
   * queue, so a `prekeys.low` racing the first upload cannot allocate the same ids twice.
   */
  onWelcome(): Promise<void> {
    return this.ctx.queue.run(PREKEY_QUEUE, async () => {
      if (!(await this.ctx.store.getMeta(META_PREKEYS_PUBLISHED))) await this.publish();
      else await this.rotateSigned();
    });
  }

  onLow(frame: PrekeysLowFrame): Promise<void> {
    const mark = this.uploads.answers;
    return this.ctx.queue.run(PREKEY_QUEUE, () => {
      const fresher = this.uploads.newerThan(mark) ?? frame;
      return this.replenish(fresher.remainingOneTime, fresher.remainingOneTimePq);
    });
  }

  onStored(frame: PrekeysStoredFrame): void {
    this.uploads.stored(frame);
  }

  /** An uncorrelated relay `error`; true if it answered one of our uploads. */
  refused(code: string): boolean {
    return this.uploads.refused(code);
  }

  connectionClosed(): void {
    this.uploads.failAll();
  }

  private async allocateIds(count: number, writes: StoreWrite[]): Promise<number[]> {
    const raw = await this.ctx.store.getMeta(META_NEXT_PREKEY_ID);
    let next = raw ? new DataView(raw.buffer, raw.byteOffset, raw.byteLength).getUint32(0) : 1;
    const ids: number[] = [];
    for (let i = 0; i < count; i++) {
      ids.push(next);
      next = next >= MAX_PREKEY_ID ? 1 : next + 1;
    }
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, next);
    writes.push({ op: 'meta.put', key: META_NEXT_PREKEY_ID, value: out });
    return ids;
  }

  private async signedPrekeys(): Promise<SignedPrekeyEntry[]> {
    const raw = await this.ctx.store.getMeta(META_SIGNED_PREKEYS);
    if (!raw) return [];
    try {
      return JSON.parse(utf8Decode(raw)) as SignedPrekeyEntry[];
    } catch {
      return [];
    }
  }

  private signedPrekeysWrite(list: readonly SignedPrekeyEntry[]): StoreWrite {
    return { op: 'meta.put', key: META_SIGNED_PREKEYS, value: utf8Encode(JSON.stringify(list)) };
  }

  /** Generates and uploads the full initial prekey set (signed, last resort, one-time). */
  private async publish(): Promise<void> {
    const { ctx } = this;
    const writes: StoreWrite[] = [];
    const ids = await this.allocateIds(
      2 + ONE_TIME_PREKEYS_TARGET + ONE_TIME_PQ_PREKEYS_TARGET,
      writes,
    );
    const batch = ctx.e2ee.generatePrekeys(ctx.account(), {
      signedPrekeyId: ids[0] as number,
      lastResortId: ids[1] as number,
      oneTimeIds: ids.slice(2, 2 + ONE_TIME_PREKEYS_TARGET),
      oneTimePqIds: ids.slice(2 + ONE_TIME_PREKEYS_TARGET),
    });
    writes.push(this.signedPrekeysWrite([{ id: ids[0] as number, createdAt: ctx.clock() }]));
    // Secrets first: an upload the relay accepted must never name keys we lost.
    await ctx.store.commit([...writes, ...batch.writes]);
    // Published only once the relay says it stored them; otherwise the next connection
    // publishes a fresh set.
    if (ctx.send({ type: 'prekeys.upload', ...batch.upload }) && (await this.uploaded())) {
      await ctx.store.commit([
        { op: 'meta.put', key: META_PREKEYS_PUBLISHED, value: new Uint8Array([1]) },
      ]);
    }
  }

  /** Waits for the relay's answer to the upload just sent; false (reported) if none came. */
  private async uploaded(): Promise<boolean> {
    try {
      await this.uploads.expect();
      return true;
    } catch (err) {
      if (err instanceof ClientError && err.code !== 'TRANSPORT')
        this.ctx.emit({ type: 'error', error: err });
      return false;
    }
  }

  /**
   * Publishes a new signed prekey once the current one is older than
   * `SIGNED_PREKEY_ROTATION_MS`, and deletes replaced ones older than the grace period.
   */
  private async rotateSigned(): Promise<void> {
    const { ctx } = this;
    const now = ctx.clock();
    const list = await this.signedPrekeys();
    const current = list[list.length - 1];
    const writes: StoreWrite[] = [];
    let next = list;
    let upload: PrekeyBatch['upload'] | undefined;
    if (!current || now - current.createdAt >= SIGNED_PREKEY_ROTATION_MS) {
      const [id] = await this.allocateIds(1, writes);
      const batch = ctx.e2ee.generatePrekeys(ctx.account(), {
        signedPrekeyId: id as number,
        oneTimeIds: [],
        oneTimePqIds: [],
      });
      writes.push(...batch.writes);
      next = [...list, { id: id as number, createdAt: now }];
      upload = batch.upload;
    }
    // A replaced key is kept until its successor has been live for the grace period.
    const keep = next.filter((k, i) => {
      const successor = next[i + 1];
      return !successor || now - successor.createdAt < SIGNED_PREKEY_GRACE_MS;
    });
    for (const k of next) {
      if (!keep.includes(k))
        writes.push({ op: 'secret.delete', kind: SECRET_SIGNED_PREKEY, id: k.id });
    }
    if (writes.length === 0) return;
    writes.push(this.signedPrekeysWrite(keep));
    await ctx.store.commit(writes);
    if (upload && ctx.send({ type: 'prekeys.upload', ...upload })) await this.uploaded();
  }

  private async replenish(remaining: number, remainingPq: number): Promise<void> {
    const { ctx } = this;
    // Before the first upload the relay reports zero; the initial set covers that.
    if (!(await ctx.store.getMeta(META_PREKEYS_PUBLISHED))) return;
    const wantOt = Math.max(0, ONE_TIME_PREKEYS_TARGET - remaining);
    const wantPq = Math.max(0, ONE_TIME_PQ_PREKEYS_TARGET - remainingPq);
    if (wantOt + wantPq === 0) return;
    const writes: StoreWrite[] = [];
    const ids = await this.allocateIds(wantOt + wantPq, writes);
    const batch = ctx.e2ee.generatePrekeys(ctx.account(), {
      oneTimeIds: ids.slice(0, wantOt),
      oneTimePqIds: ids.slice(wantOt),
    });
    await ctx.store.commit([...writes, ...batch.writes]);
    if (ctx.send({ type: 'prekeys.upload', ...batch.upload })) await this.uploaded();
  }
}
