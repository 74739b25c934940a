// Messages between the main-thread runtime and its inference worker. Every request gets exactly one reply
// (done or failed) with the same id; tasks may also stream events before it.
import type { ProviderName, RunResult, SessionInfo } from './types';
import type { TensorHandle, TensorValue } from './tensor';

/** A SessionSpec with every default filled in; its JSON is the session cache key. */
export interface ResolvedSpec {
  modelPath: string;
  providers: ProviderName[];
  threads: number;
  config: Record<string, string>;
}

export interface StoreLimits {
  maxHandles: number;
  maxBytes: number;
}

/** workerData of a new worker. */
export interface WorkerInit {
  /** Counts workers started by one runtime; tensor handles carry it so a dead worker's handles are recognised. */
  generation: number;
  limits: StoreLimits;
  /** Added to the worker thread's nice value before it creates any session (Linux; see RuntimeOptions.niceness). */
  niceness: number;
}

/** Each operation: its request fields and its reply value. */
export interface Operations {
  open: { request: { key: string; spec: ResolvedSpec }; reply: SessionInfo };
  close: { request: { key: string }; reply: void };
  run: {
    request: { key: string; feeds: Record<string, TensorValue | TensorHandle>; fetch?: string[]; keep: string[] };
    reply: RunResult;
  };
  put: { request: { value: TensorValue }; reply: TensorHandle };
  get: { request: { handle: string }; reply: TensorValue };
  free: { request: { handles: string[] }; reply: void };
  /** Replies with the task names the module added. */
  register: { request: { modulePath: string }; reply: string[] };
  task: { request: { name: string; payload: unknown }; reply: unknown };
}

export type Op = keyof Operations;
export type RequestOf<K extends Op> = { op: K } & Operations[K]['request'];
export type AnyRequest = { [K in Op]: RequestOf<K> }[Op];

export type ToWorker =
  | { kind: 'request'; id: number; request: AnyRequest }
  | { kind: 'abort'; id: number }
  /** Exit once the current ORT call returns (the worker reads messages only between calls). */
  | { kind: 'shutdown' };

export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
}

export type FromWorker =
  | { kind: 'done'; id: number; value: unknown }
  | { kind: 'failed'; id: number; error: SerializedError }
  | { kind: 'event'; id: number; event: unknown }
  | { kind: 'store'; handles: number; bytes: number };

export function serializeError(e: unknown): SerializedError {
  if (e instanceof Error) return { name: e.name, message: e.message, stack: e.stack };
  return { name: 'Error', message: String(e) };
}

/** A main-thread Error carrying the worker's message (ORT's own text) and name; the worker stack is kept as `cause`. */
export function deserializeError(s: SerializedError): Error {
  const err = new Error(s.message, s.stack ? { cause: s.stack } : undefined);
  err.name = s.name;
  return err;
}
