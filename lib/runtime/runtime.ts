// The process-wide inference runtime (main-thread facade). It owns one worker thread that runs every ORT
// session, queues jobs one at a time, caches sessions by spec with reference counts and an unload grace period,
// restarts the worker after a crash, and reports its state for node status.
import * as os from 'os';
import * as path from 'path';
import type { StoreLimits } from './protocol';
import { abortReason, Scheduler } from './scheduler';
import { CachedSession, SessionCache } from './session-cache';
import { resolveSpec, sessionKey } from './session-spec';
import { isTensorHandle, TensorHandle, TensorValue } from './tensor';
import { assertFeed, assertTensorValue, packForTransfer } from './tensor-wire';
import type { Feed, Runtime, RunOptions, RunResult, RuntimeStats, SessionInfo, SessionLease, SessionSpec, TaskOptions } from './types';
import { Call, WorkerLink } from './worker-link';

export interface RuntimeOptions {
  /** Intra-op threads of sessions whose spec gives none. Default: os.availableParallelism(). */
  threads?: number;
  /** How long an unused session stays loaded after its last lease is released. Default 30 000 ms. */
  graceMs?: number;
  /** Tensor-store limits; beyond them the least recently used handles are evicted. */
  maxHandles?: number;
  maxHandleBytes?: number;
  /**
   * How far below the main thread the inference threads run: added to their nice value (0–19, Linux only, where
   * nice is per thread). Above 0, a main thread that wakes beside busy inference threads gets a core sooner; but
   * beside a busy process of the same priority the inference threads lose wake-ups to it, and their share of the
   * cores with it (README, Performance). Default 0: the inference threads run at the main thread's priority.
   */
  niceness?: number;
}

const SINGLETON = Symbol.for('node-red-contrib-llava.runtime');
const DEFAULT_GRACE_MS = 30_000;
const DEFAULT_MAX_HANDLES = 10_000;
const DEFAULT_NICENESS = 0;
const DEFAULT_MAX_HANDLE_BYTES = Math.min(4 * 2 ** 30, Math.floor(os.totalmem() / 4));

// Worker generations are unique in the process, so a handle from one runtime's dead worker is never read as live.
let workerGenerations = 0;

function positiveInt(v: number | undefined, fallback: number, what: string): number {
  const n = v ?? fallback;
  if (!Number.isInteger(n) || n < 1) throw new Error(`runtime: ${what} must be a positive integer, got ${String(v)}`);
  return n;
}

export class InferenceRuntime implements Runtime {
  private readonly threads: number;
  private readonly limits: StoreLimits;
  private readonly niceness: number;
  private readonly scheduler = new Scheduler(() => this.changed());
  private readonly sessions: SessionCache;
  private readonly taskModules: string[] = [];
  private readonly listeners = new Set<(stats: RuntimeStats) => void>();
  private link: WorkerLink | null = null;
  private store = { handles: 0, bytes: 0 };
  private restarts = 0;
  private lastStats = '';
  private disposed = false;

  constructor(options: RuntimeOptions = {}) {
    this.threads = positiveInt(options.threads, os.availableParallelism(), 'threads');
    const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
    if (!(graceMs >= 0)) throw new Error(`runtime: graceMs must be >= 0, got ${String(options.graceMs)}`);
    this.niceness = options.niceness ?? DEFAULT_NICENESS;
    if (!Number.isInteger(this.niceness) || this.niceness < 0 || this.niceness > 19) {
      throw new Error(`runtime: niceness must be an integer from 0 to 19, got ${String(options.niceness)}`);
    }
    this.limits = {
      maxHandles: positiveInt(options.maxHandles, DEFAULT_MAX_HANDLES, 'maxHandles'),
      maxBytes: positiveInt(options.maxHandleBytes, DEFAULT_MAX_HANDLE_BYTES, 'maxHandleBytes'),
    };
    this.sessions = new SessionCache(graceMs, {
      load: (entry, abandoned) =>
        this.scheduler.submit({
          label: `load ${entry.label}`,
          // Every opener gave up: a queued load is dropped; a running one finishes into the cache.
          signal: abandoned,
          settleOnAbort: false,
          run: () => this.loadOn(this.worker(), entry),
        }),
      unload: (entry) => {
        if (entry.loadedOn?.alive) entry.loadedOn.call({ op: 'close', key: entry.key }).promise.catch(() => {});
        this.changed();
      },
    });
  }

  async openSession(spec: SessionSpec, signal?: AbortSignal): Promise<SessionLease> {
    this.assertOpen();
    const resolved = resolveSpec(spec, this.threads);
    if (signal?.aborted) throw abortReason(signal);
    return this.sessions.open(sessionKey(resolved), resolved, path.basename(resolved.modelPath), signal);
  }

  async run(lease: SessionLease, feeds: Record<string, Feed>, options: RunOptions = {}): Promise<RunResult> {
    this.assertOpen();
    const entry = this.sessions.entryOf(lease);
    if (typeof feeds !== 'object' || feeds === null) throw new Error('run: feeds must be an object of input name → tensor');
    for (const [name, feed] of Object.entries(feeds)) assertFeed(feed, `run ${entry.label}: input '${name}'`);
    for (const [what, list] of [
      ['fetch', options.fetch],
      ['keep', options.keep],
    ] as const) {
      if (list !== undefined && !(Array.isArray(list) && list.every((n) => typeof n === 'string'))) {
        throw new Error(`run: ${what} must be an array of output names`);
      }
    }
    const { signal } = options;
    this.sessions.retain(entry); // a queued or running job keeps its session loaded
    const job = this.scheduler.submit({
      label: options.label ?? `run ${entry.label}`,
      signal,
      run: async () => {
        const link = this.worker();
        if (entry.loadedOn !== link) await this.loadOn(link, entry);
        const packed = packForTransfer(feeds);
        const request = { op: 'run', key: entry.key, feeds: packed.items, fetch: options.fetch, keep: options.keep ?? [] } as const;
        const result = await link.call(request, { transfer: packed.transfer }).promise;
        if (signal?.aborted) this.free(Object.values(result.handles)).catch(() => {}); // nobody will use them
        return result;
      },
    });
    return job.finally(() => this.sessions.release(entry));
  }

  async put(value: TensorValue): Promise<TensorHandle> {
    this.assertOpen();
    assertTensorValue(value, 'put');
    const packed = packForTransfer({ value });
    return this.worker().call({ op: 'put', value: packed.items.value }, { transfer: packed.transfer }).promise;
  }

  async get(handle: TensorHandle): Promise<TensorValue> {
    this.assertOpen();
    if (!isTensorHandle(handle)) throw new Error('get: expected a tensor handle {handle, type, dims}');
    return this.worker().call({ op: 'get', handle: handle.handle }).promise;
  }

  async free(handles: TensorHandle | TensorHandle[]): Promise<void> {
    this.assertOpen();
    const list = Array.isArray(handles) ? handles : [handles];
    if (!list.every(isTensorHandle)) throw new Error('free: expected tensor handles {handle, type, dims}');
    // Handles of an exited worker are already gone: no need to start a worker to forget them.
    if (!this.link?.alive || list.length === 0) return;
    await this.link.call({ op: 'free', handles: list.map((h) => h.handle) }).promise;
  }

  async registerTaskModule(modulePath: string): Promise<void> {
    this.assertOpen();
    const abs = path.resolve(modulePath);
    if (this.taskModules.includes(abs)) return;
    await this.worker().call({ op: 'register', modulePath: abs }).promise;
    if (!this.taskModules.includes(abs)) this.taskModules.push(abs);
  }

  async task<T = unknown>(name: string, payload: unknown, options: TaskOptions = {}): Promise<T> {
    this.assertOpen();
    let link: WorkerLink | null = null;
    let call: Call<unknown> | null = null;
    return this.scheduler.submit({
      label: options.label ?? name,
      signal: options.signal,
      batchKey: options.batchKey,
      // The task sees the abort on io.signal and decides what to return (e.g. the text generated so far).
      settleOnAbort: false,
      onAbortWhileRunning: () => call && link?.abort(call.id),
      run: async () => {
        link = this.worker();
        await this.reopenLeased(link);
        call = link.call({ op: 'task', name, payload }, { transfer: options.transfer, onEvent: options.onEvent });
        if (options.signal?.aborted) link.abort(call.id);
        return call.promise as Promise<T>;
      },
    });
  }

  stats(): RuntimeStats {
    return {
      queued: this.scheduler.depth,
      running: this.scheduler.running,
      sessions: this.sessions.loadedCount,
      handles: this.store.handles,
      handleBytes: this.store.bytes,
      workerRestarts: this.restarts,
    };
  }

  onStats(listener: (stats: RuntimeStats) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops the worker and fails every pending job; the runtime cannot be used afterwards. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    const error = new Error('inference runtime was disposed');
    this.sessions.close();
    this.scheduler.failQueued(error);
    await this.link?.terminate(error);
    this.listeners.clear();
    const g = globalThis as Record<symbol, unknown>;
    if (g[SINGLETON] === this) delete g[SINGLETON];
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  private assertOpen(): void {
    if (this.disposed) throw new Error('inference runtime was disposed');
  }

  /** The live worker, started (with every task module registered again) if there is none. */
  private worker(): WorkerLink {
    if (this.link?.alive) return this.link;
    const link: WorkerLink = new WorkerLink(
      { generation: ++workerGenerations, limits: this.limits, niceness: this.niceness },
      {
        exit: (error, expected) => this.workerExited(link, error, expected),
        store: (handles, bytes) => {
          if (this.link !== link) return;
          this.store = { handles, bytes };
          this.changed();
        },
      },
    );
    this.link = link;
    // Requests are handled in order, so these registrations precede any task sent after them. A module that
    // fails to load again shows up as an "unknown task" error naming the registered tasks.
    for (const modulePath of this.taskModules) link.call({ op: 'register', modulePath }).promise.catch(() => {});
    return link;
  }

  private workerExited(link: WorkerLink, error: Error, expected: boolean): void {
    if (this.link === link) this.store = { handles: 0, bytes: 0 };
    if (!expected) {
      this.restarts++;
      this.scheduler.failQueued(error);
    }
    this.changed();
  }

  private async loadOn(link: WorkerLink, entry: CachedSession): Promise<SessionInfo> {
    const info = await link.call({ op: 'open', key: entry.key, spec: entry.spec }).promise;
    entry.info = info;
    entry.loadedOn = link;
    this.changed();
    return info;
  }

  /** After a worker restart, sessions in use are opened again before a task that may ask for them by key. */
  private async reopenLeased(link: WorkerLink): Promise<void> {
    for (const entry of this.sessions.inUse()) {
      if (entry.loadedOn !== link) await this.loadOn(link, entry);
    }
  }

  private changed(): void {
    if (this.listeners.size === 0) return;
    const stats = this.stats();
    const text = JSON.stringify(stats);
    if (text === this.lastStats) return;
    this.lastStats = text;
    for (const listener of this.listeners) {
      try {
        listener(stats);
      } catch (e) {
        process.emitWarning(`runtime stats listener threw: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }
}

/**
 * The process-wide runtime, kept on globalThis so that two copies of this module (two installed node packages)
 * still share one worker and one session cache. `options` apply only when it is first created.
 */
export function getRuntime(options?: RuntimeOptions): InferenceRuntime {
  const g = globalThis as Record<symbol, unknown>;
  let rt = g[SINGLETON] as InferenceRuntime | undefined;
  if (!rt || rt.isDisposed) {
    rt = new InferenceRuntime(options);
    g[SINGLETON] = rt;
  }
  return rt;
}
