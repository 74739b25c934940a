// Continuous batching: the generations running at the same time on one decoder session share its decode steps.
// Each generation prefills its own prompt alone, then joins the batch (its KV cache becomes a row, left-padded to
// the batch's length) and asks for one token's logits at a time; once every member has asked, one forward runs
// for all of them. A member leaves when its generation ends, whatever the reason; the others go on. Sampling,
// stop conditions and options stay each generation's own: only the decoder runs are shared.
import type { KvCache, KvDecoder } from './decoder';

interface Pending {
  token: number;
  resolve(logits: Float32Array): void;
  reject(error: unknown): void;
}

export class BatchMember {
  pending: Pending | null = null;
  /** The most sequences one of its steps served, itself included. */
  peak = 1;
  constructor(readonly batch: DecodeBatch) {}

  /** The logits after `token`, once the batch's next forward has run. */
  step(token: number): Promise<Float32Array> {
    return this.batch.submit(this, token);
  }

  leave(): Promise<void> {
    return this.batch.leave(this);
  }
}

export class DecodeBatch {
  /** In row order of the decoder's cache. */
  private readonly members: BatchMember[] = [];
  /** Serialises the session's runs and the cache's changes: one prefill, join, leave or step at a time. */
  private queue: Promise<unknown> = Promise.resolve();
  constructor(
    private readonly decoder: KvDecoder,
    private readonly onEmpty: () => void,
  ) {}

  get size(): number {
    return this.members.length;
  }

  /** Runs `work` with the decoder session to itself (a joining generation's prefill). */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Adds a prefilled sequence (a batch-1 cache of the same session) with room for `ahead` more positions. */
  join(cache: KvCache, ahead: number): Promise<BatchMember> {
    return this.exclusive(async () => {
      this.decoder.admit(cache, ahead);
      const member = new BatchMember(this);
      this.members.push(member);
      return member;
    });
  }

  submit(member: BatchMember, token: number): Promise<Float32Array> {
    if (!this.members.includes(member)) return Promise.reject(new Error('this generation has left the batch'));
    if (member.pending) return Promise.reject(new Error('a batch member asked for two steps at once'));
    const result = new Promise<Float32Array>((resolve, reject) => (member.pending = { token, resolve, reject }));
    this.maybeStep();
    return result;
  }

  leave(member: BatchMember): Promise<void> {
    return this.exclusive(async () => {
      const row = this.members.indexOf(member);
      if (row < 0) return;
      this.members.splice(row, 1);
      member.pending?.reject(new Error('this generation has left the batch'));
      // Dismissed even when it was the last row: a generation that took this batch before it emptied may still join.
      this.decoder.dismiss(row);
      if (this.members.length === 0) this.onEmpty();
      else this.maybeStep();
    });
  }

  /** Once every member waits for a token, one forward serves them all. */
  private maybeStep(): void {
    if (this.members.length === 0 || !this.members.every((m) => m.pending)) return;
    void this.exclusive(async () => {
      // A member may have joined (not asking yet) or the step already run since this was queued.
      if (this.members.length === 0 || !this.members.every((m) => m.pending)) return;
      const members = [...this.members];
      const served = members.map((m) => m.pending!);
      for (const m of members) m.pending = null;
      try {
        const rows = await this.decoder.forward(await this.decoder.embed(served.map((p) => p.token)), 1);
        for (const m of members) m.peak = Math.max(m.peak, members.length);
        served.forEach((p, i) => p.resolve(rows[i]));
      } catch (err) {
        for (const p of served) p.reject(err);
      }
    });
  }
}
