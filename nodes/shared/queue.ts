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
 * timeout: it waited longer than its waiting limit; closed: the node closed before it ran. */
export type DropReason = 'superseded' | 'full' | 'busy' | 'timeout' | 'closed';

export interface QueueOptions {
  policy: QueuePolicy;
  /** Waiting messages allowed (fifo: in total; latest: distinct keys, the oldest key is dropped beyond it). */
  maxQueued: number;
  /** Jobs run at the same time (default 1). */
  concurrency?: number;
  /** How long an item may wait before it is dropped as timeout (default: no limit); push() may set its own. */
  maxWaitMs?: number;
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
  /** Drops the item as timeout when its waiting limit passes. */
  timer?: NodeJS.Timeout;
  /** performance.now() at which the waiting limit passes. */
  deadline?: number;
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
    checkWaitLimit(options.maxWaitMs);
  }

  get state(): QueueState {
    return { waiting: this.waiting.length, running: this.running.size, dropped: this.droppedCount };
  }

  /**
   * Offer an item; `key` groups items for the latest-wins policy (use msg.topic); `maxWaitMs` replaces the queue's
   * waiting limit for this item.
   */
  push(item: T, key = '', maxWaitMs = this.options.maxWaitMs): void {
    checkWaitLimit(maxWaitMs);
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
        this.wait(item, key, maxWaitMs);
        break;
      case 'latest': {
        const same = this.waiting.findIndex((w) => w.key === key);
        if (same >= 0) {
          this.drop(this.take(same), 'superseded');
        } else if (this.waiting.length >= this.options.maxQueued) {
          if (this.options.maxQueued === 0) {
            this.drop(item, 'full');
            return;
          }
          this.drop(this.take(0), 'full');
        }
        this.wait(item, key, maxWaitMs);
        break;
      }
    }
    this.notify();
  }

  private wait(item: T, key: string, maxWaitMs: number | undefined): void {
    const waiting: Waiting<T> = { item, key };
    if (maxWaitMs !== undefined) {
      waiting.deadline = performance.now() + maxWaitMs;
      waiting.timer = setTimeout(() => {
        const at = this.waiting.indexOf(waiting);
        if (at >= 0) this.drop(this.take(at), 'timeout');
      }, maxWaitMs);
    }
    this.waiting.push(waiting);
  }

  /** Removes the waiting entry at `index` (its timer with it) and returns its item. */
  private take(index: number): T {
    const [waiting] = this.waiting.splice(index, 1);
    clearTimeout(waiting.timer);
    return waiting.item;
  }

  /**
   * Drop everything waiting, abort what runs, and wait up to `graceMs` for running jobs to settle.
   * Resolves true when they all settled in time.
   */
  async close(graceMs: number): Promise<boolean> {
    this.closed = true;
    while (this.waiting.length > 0) this.drop(this.take(0), 'closed');
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
      while (this.running.size < this.concurrency && this.waiting.length > 0) {
        // A job that ends in the same turn as a waiting limit passes would otherwise win against the timer
        // (I/O callbacks run before the next turn's timers on a busy machine): the deadline decides.
        const late = (this.waiting[0].deadline ?? Infinity) <= performance.now();
        if (late) this.drop(this.take(0), 'timeout');
        else this.start(this.take(0));
      }
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

/** The longest delay a timer takes (about 24.8 days); a longer one would fire at once. */
export const MAX_WAIT_MS = 2 ** 31 - 1;

function checkWaitLimit(ms: number | undefined): void {
  if (ms !== undefined && !(ms > 0 && ms <= MAX_WAIT_MS)) throw new Error(`the waiting limit must be more than 0 and at most ${MAX_WAIT_MS} ms, got ${ms}`);
}
