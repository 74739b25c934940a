// A FIFO queue that runs one inference job at a time (ORT already uses every core for one run), with an
// observable depth and running label, and cancellation by AbortSignal. Jobs that share a batchKey (generations
// that batch their decode steps in the worker) may run together: the queue's head joins the running jobs when they
// all have its key.
export interface Job<T> {
  label: string;
  signal?: AbortSignal;
  run(): Promise<T>;
  /**
   * Called when the signal aborts while the job runs. Unless `settleOnAbort` is false the caller's promise
   * then rejects at once; the queue still waits for run() to finish before starting the next job.
   */
  onAbortWhileRunning?(): void;
  settleOnAbort?: boolean;
  batchKey?: string;
}

interface Entry {
  job: Job<unknown>;
  resolve(v: unknown): void;
  reject(e: unknown): void;
  detach(): void;
}

/** The error a cancelled job rejects with: the signal's reason, or a DOMException named AbortError. */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

export class Scheduler {
  private readonly queue: Entry[] = [];
  private readonly current: Entry[] = [];

  constructor(private readonly onChange: () => void) {}

  get depth(): number {
    return this.queue.length;
  }

  get running(): string | null {
    return this.current[0]?.job.label ?? null;
  }

  submit<T>(job: Job<T>): Promise<T> {
    const { signal } = job;
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    return new Promise<T>((resolve, reject) => {
      const entry: Entry = { job, resolve: resolve, reject, detach: () => {} };
      if (signal) {
        const onAbort = () => {
          if (this.current.includes(entry)) {
            job.onAbortWhileRunning?.();
            if (job.settleOnAbort !== false) reject(abortReason(signal));
            return;
          }
          const i = this.queue.indexOf(entry);
          if (i >= 0) {
            this.queue.splice(i, 1);
            reject(abortReason(signal));
            this.onChange();
          }
        };
        signal.addEventListener('abort', onAbort, { once: true });
        entry.detach = () => signal.removeEventListener('abort', onAbort);
      }
      this.queue.push(entry);
      this.onChange();
      this.next();
    });
  }

  /** Rejects every queued (not yet running) job with `error`. */
  failQueued(error: Error): void {
    const dropped = this.queue.splice(0);
    for (const entry of dropped) {
      entry.detach();
      entry.reject(error);
    }
    if (dropped.length) this.onChange();
  }

  /** The queue's head may start: nothing runs, or everything running shares its batch key. */
  private headMayStart(): boolean {
    const key = this.queue[0]?.job.batchKey;
    if (!this.queue.length) return false;
    return this.current.length === 0 || (key !== undefined && this.current.every((e) => e.job.batchKey === key));
  }

  private next(): void {
    while (this.headMayStart()) this.start(this.queue.shift()!);
  }

  private start(entry: Entry): void {
    this.current.push(entry);
    this.onChange();
    let result: Promise<unknown>;
    try {
      result = entry.job.run();
    } catch (e) {
      result = Promise.reject(e);
    }
    result.then(entry.resolve, entry.reject).finally(() => {
      entry.detach();
      this.current.splice(this.current.indexOf(entry), 1);
      this.onChange();
      this.next();
    });
  }
}
