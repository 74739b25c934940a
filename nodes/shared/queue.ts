// Node-RED gives a node no backpressure: every message calls the input handler at once. This queue decides which
// messages run, which wait and which are dropped, and reports every drop so no message disappears silently.
// It knows nothing about Node-RED, so it is tested on its own.

/**
 * latest: at most one waiting message per key (msg.topic); a newer one replaces it (camera feeds).
 * fifo: wait in arrival order, up to `maxQueued`; a message arriving at a full queue is dropped.
 * drop-new: a message arriving while `concurrency` jobs run is dropped; nothing waits.
 */
export type QueuePolicy = 'latest' | 'fifo' | 'drop-new';
export const QUEUE_POLICIES: readonly QueuePolicy[] = ['latest', 'fifo', 'drop-new'];

/** superseded: a newer message with the same key replaced it; full: queue at its limit; busy: drop-new policy;
 * closed: the node closed before it ran. */
export type DropReason = 'superseded' | 'full' | 'busy' | 'closed';

export interface QueueOptions {
  policy: QueuePolicy;
  /** Waiting messages allowed (fifo: in total; latest: distinct keys, the oldest key is dropped beyond it). */
  maxQueued: number;
  /** Jobs run at the same time (default 1). */
  concurrency?: number;
}

export interface QueueCallbacks<T> {
  /** Runs one admitted item. The signal aborts when the queue closes. */
  run(item: T, signal: AbortSignal): Promise<void>;
  /** Called exactly once for every item that will never run. */
  dropped(item: T, reason: DropReason): void;
  /** Called after every change of the waiting/running counts. */
  changed?(state: QueueState): void;
}

export interface QueueState {
  waiting: number;
  running: number;
  dropped: number;
}

interface Waiting<T> {
  item: T;
  key: string;
}

export class AdmissionQueue<T> {
  private readonly waiting: Waiting<T>[] = [];
  private readonly running = new Set<{ controller: AbortController; done: Promise<void> }>();
  private droppedCount = 0;
  private closed = false;
  private readonly concurrency: number;

  constructor(
    private readonly options: QueueOptions,
    private readonly callbacks: QueueCallbacks<T>,
  ) {
    if (!QUEUE_POLICIES.includes(options.policy)) {
      throw new Error(`queue policy must be one of ${QUEUE_POLICIES.join(', ')}, got ${JSON.stringify(options.policy)}`);
    }
    if (!Number.isInteger(options.maxQueued) || options.maxQueued < 0) {
      throw new Error(`queue length must be a whole number ≥ 0, got ${options.maxQueued}`);
    }
    const concurrency = options.concurrency ?? 1;
    if (!(concurrency >= 1)) throw new Error(`concurrency must be ≥ 1, got ${concurrency}`);
    this.concurrency = concurrency;
  }

  get state(): QueueState {
    return { waiting: this.waiting.length, running: this.running.size, dropped: this.droppedCount };
  }

  /** Offer an item; `key` groups items for the latest-wins policy (use msg.topic). */
  push(item: T, key = ''): void {
    if (this.closed) {
      this.drop(item, 'closed');
      return;
    }
    if (this.running.size < this.concurrency && this.waiting.length === 0) {
      this.start(item);
      return;
    }
    switch (this.options.policy) {
      case 'drop-new':
        this.drop(item, 'busy');
        return;
      case 'fifo':
        if (this.waiting.length >= this.options.maxQueued) {
          this.drop(item, 'full');
          return;
        }
        this.waiting.push({ item, key });
        break;
      case 'latest': {
        const same = this.waiting.findIndex((w) => w.key === key);
        if (same >= 0) {
          const [old] = this.waiting.splice(same, 1);
          this.drop(old.item, 'superseded');
        } else if (this.waiting.length >= this.options.maxQueued) {
          if (this.options.maxQueued === 0) {
            this.drop(item, 'full');
            return;
          }
          this.drop(this.waiting.shift()!.item, 'full');
        }
        this.waiting.push({ item, key });
        break;
      }
    }
    this.notify();
  }

  /**
   * Drop everything waiting, abort what runs, and wait up to `graceMs` for running jobs to settle.
   * Resolves true when they all settled in time.
   */
  async close(graceMs: number): Promise<boolean> {
    this.closed = true;
    for (const w of this.waiting.splice(0)) this.drop(w.item, 'closed');
    const jobs = [...this.running];
    for (const job of jobs) job.controller.abort(new Error('node closed'));
    if (jobs.length === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), graceMs);
    });
    const settled = Promise.all(jobs.map((j) => j.done)).then(() => true);
    try {
      return await Promise.race([settled, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private start(item: T): void {
    const controller = new AbortController();
    const job = { controller, done: Promise.resolve() };
    this.running.add(job);
    let work: Promise<void>;
    try {
      work = Promise.resolve(this.callbacks.run(item, controller.signal));
    } catch (err) {
      work = Promise.reject(err);
    }
    // run() is expected to report its own errors (the input wrapper does); one escaping here must neither
    // become an unhandled rejection nor keep the slot busy.
    job.done = work
      .catch(() => undefined)
      .finally(() => {
        this.running.delete(job);
        this.next();
      });
    this.notify();
  }

  private next(): void {
    if (!this.closed) {
      while (this.running.size < this.concurrency && this.waiting.length > 0) this.start(this.waiting.shift()!.item);
    }
    this.notify();
  }

  private drop(item: T, reason: DropReason): void {
    this.droppedCount++;
    try {
      this.callbacks.dropped(item, reason);
    } finally {
      this.notify();
    }
  }

  private notify(): void {
    this.callbacks.changed?.(this.state);
  }
}
