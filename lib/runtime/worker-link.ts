// Main side of one inference worker: request/reply over postMessage, streamed task events, and exit handling.
// The worker keeps the process alive only while a request is outstanding.
import * as path from 'path';
import { Worker } from 'worker_threads';
import type { AnyRequest, FromWorker, Op, Operations, RequestOf, ToWorker, WorkerInit } from './protocol';
import { deserializeError } from './protocol';

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  onEvent?: (event: unknown) => void;
}

export interface CallOptions {
  transfer?: ArrayBuffer[];
  onEvent?: (event: unknown) => void;
}

export interface Call<T> {
  id: number;
  promise: Promise<T>;
}

export interface LinkEvents {
  /** The worker ended: `error` is what every outstanding request was rejected with. */
  exit(error: Error, expected: boolean): void;
  store(handles: number, bytes: number): void;
}

const WORKER_SCRIPT = path.join(__dirname, 'worker.js');

/** How long a shutting-down worker may finish its current ORT call (a 7B prefill on a CPU takes tens of seconds). */
const SHUTDOWN_GRACE_MS = 120_000;

export class WorkerLink {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private crash: Error | null = null;
  private terminating = false;
  alive = true;

  constructor(
    readonly init: WorkerInit,
    private readonly events: LinkEvents,
  ) {
    this.worker = new Worker(WORKER_SCRIPT, { workerData: init });
    this.worker.unref();
    this.worker.on('message', (m: FromWorker) => this.receive(m));
    this.worker.on('error', (e) => (this.crash = e));
    this.worker.on('messageerror', (e) => (this.crash = e));
    this.worker.on('exit', (code) => this.exited(code));
  }

  call<K extends Op>(request: RequestOf<K>, options: CallOptions = {}): Call<Operations[K]['reply']> {
    const id = this.nextId++;
    const promise = new Promise<Operations[K]['reply']>((resolve, reject) => {
      if (!this.alive) throw this.crash ?? new Error('inference worker exited');
      this.pending.set(id, { resolve: resolve, reject, onEvent: options.onEvent });
      if (this.pending.size === 1) this.worker.ref();
      const message: ToWorker = { kind: 'request', id, request: request as AnyRequest };
      try {
        this.worker.postMessage(message, options.transfer ?? []);
      } catch (e) {
        this.settle(id); // e.g. a payload that cannot be cloned: nothing was sent
        throw e;
      }
    });
    return { id, promise };
  }

  abort(id: number): void {
    if (this.alive && this.pending.has(id)) this.worker.postMessage({ kind: 'abort', id } satisfies ToWorker);
  }

  /**
   * Stops the worker; outstanding requests reject with `reason`. The worker is asked to exit and does so when its
   * current ORT call returns: terminating a thread inside onnxruntime's native run aborts the whole process
   * ("terminate called after throwing an instance of 'Napi::Error'"). Only a worker that does not exit within
   * `graceMs` (stuck outside ORT) is terminated by force.
   */
  async terminate(reason: Error, graceMs = SHUTDOWN_GRACE_MS): Promise<void> {
    if (!this.alive) return;
    this.terminating = true;
    this.crash = reason;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.ref(); // keep the process alive until the worker is gone
    this.worker.postMessage({ kind: 'shutdown' } satisfies ToWorker);
    const force = setTimeout(() => void this.worker.terminate(), graceMs);
    await exited;
    clearTimeout(force);
  }

  private settle(id: number): Pending | undefined {
    const p = this.pending.get(id);
    this.pending.delete(id);
    if (this.pending.size === 0 && this.alive) this.worker.unref();
    return p;
  }

  private receive(m: FromWorker): void {
    switch (m.kind) {
      case 'done':
        this.settle(m.id)?.resolve(m.value);
        break;
      case 'failed':
        this.settle(m.id)?.reject(deserializeError(m.error));
        break;
      case 'event':
        try {
          this.pending.get(m.id)?.onEvent?.(m.event);
        } catch (e) {
          // A throwing listener must not become an uncaught exception that takes the whole process down.
          process.emitWarning(`task event listener threw: ${e instanceof Error ? e.message : String(e)}`);
        }
        break;
      case 'store':
        this.events.store(m.handles, m.bytes);
        break;
    }
  }

  private exited(code: number): void {
    this.alive = false;
    const error =
      this.terminating && this.crash
        ? this.crash
        : new Error(`inference worker exited (code ${code}${this.crash ? `: ${this.crash.message}` : ''}); it restarts on next use`);
    this.crash = error;
    this.events.exit(error, this.terminating);
    const lost = [...this.pending.values()];
    this.pending.clear();
    for (const p of lost) p.reject(error);
  }
}
