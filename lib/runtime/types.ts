// The public contract of the process-wide inference runtime. lib/runtime is the only code that imports
// onnxruntime; everything else talks to it through these types.
import type { TensorHandle, TensorValue } from './tensor';

export type ProviderName = 'cuda' | 'webgpu' | 'cpu';
/** `auto` = cuda, webgpu, then cpu: each is tried in order, and why each failed is recorded. */
export type ProviderPreference = 'auto' | ProviderName | ProviderName[];

export interface SessionSpec {
  /** Absolute path of the .onnx file (external data is resolved next to it). */
  modelPath: string;
  providers?: ProviderPreference;
  /** Intra-op threads; default chosen for the machine. */
  threads?: number;
  /** Extra ORT session config entries (values are strings, as the binding requires). */
  config?: Record<string, string>;
}

export interface TensorInfo {
  name: string;
  type: string;
  /** Symbolic dimensions stay strings: never resolve an unknown dimension to 0. */
  shape: (number | string)[];
}

export interface ProviderFailure {
  provider: ProviderName;
  error: string;
}

export interface SessionInfo {
  /** Cache key: (model file, provider preference, options). */
  key: string;
  modelPath: string;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  /** The provider actually used. */
  provider: ProviderName;
  /** Providers tried before it, with the error each gave. */
  providerFailures: ProviderFailure[];
  loadMs: number;
}

/** A reference-counted use of a cached session. Release it when done; the session is unloaded after a grace period. */
export interface SessionLease {
  readonly info: SessionInfo;
  release(): void;
}

export type Feed = TensorValue | TensorHandle;

export interface RunOptions {
  /** Outputs returned by value (default: all outputs not in `keep`). */
  fetch?: string[];
  /** Outputs left in the worker's tensor store; their handles come back instead. */
  keep?: string[];
  signal?: AbortSignal;
  /** Shown as the running job in status. */
  label?: string;
}

export interface RunResult {
  values: Record<string, TensorValue>;
  handles: Record<string, TensorHandle>;
  ms: number;
}

export interface TaskOptions {
  signal?: AbortSignal;
  label?: string;
  /** Events a task emits while it runs (streamed tokens, progress). */
  onEvent?: (event: unknown) => void;
  /** ArrayBuffers in the payload to transfer rather than copy. */
  transfer?: ArrayBuffer[];
  /**
   * Tasks with the same key may run in the worker at the same time (a task that batches its work with the others,
   * as generation does); a task without one runs alone, and the queue stays first in, first out.
   */
  batchKey?: string;
}

export interface RuntimeStats {
  queued: number;
  running: string | null;
  sessions: number;
  handles: number;
  handleBytes: number;
  workerRestarts: number;
}

export interface Runtime {
  openSession(spec: SessionSpec, signal?: AbortSignal): Promise<SessionLease>;
  run(lease: SessionLease, feeds: Record<string, Feed>, options?: RunOptions): Promise<RunResult>;
  /** Store a tensor in the worker and get its handle. */
  put(value: TensorValue): Promise<TensorHandle>;
  /** Read a stored tensor back by value. */
  get(handle: TensorHandle): Promise<TensorValue>;
  free(handles: TensorHandle | TensorHandle[]): Promise<void>;
  /** Load a module into the worker (again after every restart) whose exported `tasks` become runnable by name. */
  registerTaskModule(modulePath: string): Promise<void>;
  task<T = unknown>(name: string, payload: unknown, options?: TaskOptions): Promise<T>;
  stats(): RuntimeStats;
  onStats(listener: (stats: RuntimeStats) => void): () => void;
}

// ---- worker side: what a task module's handlers receive ----

export interface WorkerSession {
  readonly info: SessionInfo;
  /**
   * Run with plain tensors. `outputs` may hold pre-allocated tensors that ORT writes into in place
   * (the zero-copy path for KV caches); the same objects come back in the result.
   */
  run(feeds: Record<string, TensorValue>, fetch?: string[], outputs?: Record<string, TensorValue>): Promise<Record<string, TensorValue>>;
}

export interface WorkerContext {
  session(key: string): WorkerSession;
  tensors: {
    get(handle: TensorHandle | string): TensorValue;
    put(value: TensorValue): TensorHandle;
    free(handle: TensorHandle | string): void;
  };
}

export interface TaskIO {
  signal: AbortSignal;
  emit(event: unknown, transfer?: ArrayBuffer[]): void;
}

export interface TaskResult {
  result: unknown;
  transfer?: ArrayBuffer[];
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each task module declares its own payload type
export type TaskHandler = (ctx: WorkerContext, payload: any, io: TaskIO) => Promise<TaskResult> | TaskResult;

/** A task module exports `tasks`: name → handler, and may export `sessionClosed` to drop what it keeps per session. */
export interface TaskModule {
  tasks: Record<string, TaskHandler>;
  /** Called in the worker when the session `key` closes, before a session of the same key can open again. */
  sessionClosed?: (key: string) => void;
}
