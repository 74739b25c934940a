// The inference worker's entry point: it owns every ORT session, the tensor store and the task modules, and
// answers the main thread's requests (protocol.ts). All ORT calls block this thread, never the main one.
import * as os from 'os';
import { parentPort, workerData } from 'worker_threads';
import type { AnyRequest, FromWorker, Operations, RequestOf, ToWorker, WorkerInit } from './protocol';
import { serializeError } from './protocol';
import { HostedSession, loadSession } from './session-host';
import { isTensorHandle, TensorHandle, TensorValue } from './tensor';
import { TensorStore } from './tensor-store';
import { assertTensorValue, packForTransfer } from './tensor-wire';
import type { TaskHandler, TaskIO, TaskModule, WorkerContext, WorkerSession } from './types';

if (!parentPort) throw new Error('lib/runtime/worker is the inference worker entry point; start it as a Worker');
const port = parentPort;
const init = workerData as WorkerInit;

// With RuntimeOptions.niceness, below the main thread's priority, so that it gets a core sooner when it wakes (an
// editor request, a flow's message, a timer) beside busy inference threads. Linux only: there nice is per thread,
// this call changes this thread alone, and the intra-op threads onnxruntime starts for each session inherit it;
// on other systems it would lower the whole process.
if (process.platform === 'linux' && init.niceness > 0) os.setPriority(0, Math.min(19, os.getPriority(0) + init.niceness));

function post(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

let storeReportPending = false;
const store = new TensorStore(init.generation, init.limits, () => {
  // One report per burst of changes (a generation step may put and free several tensors).
  if (storeReportPending) return;
  storeReportPending = true;
  queueMicrotask(() => {
    storeReportPending = false;
    post({ kind: 'store', handles: store.count, bytes: store.bytes });
  });
});

const sessions = new Map<string, HostedSession>();
const tasks = new Map<string, { handler: TaskHandler; modulePath: string }>();
const registered = new Set<string>();
/** The task modules' sessionClosed hooks. */
const closeHooks: ((key: string) => void)[] = [];
const running = new Map<number, AbortController>();

function sessionByKey(key: string): HostedSession {
  const s = sessions.get(key);
  if (!s) throw new Error(`no session is open in the inference worker for key ${key}`);
  return s;
}

const context: WorkerContext = {
  session: (key: string): WorkerSession => sessionByKey(key),
  tensors: {
    get: (handle) => store.get(handle),
    put: (value) => {
      assertTensorValue(value, 'tensors.put');
      return store.put(value);
    },
    free: (handle) => store.free(handle),
  },
};

type Reply<K extends keyof Operations> = { value: Operations[K]['reply']; transfer?: ArrayBuffer[] };

const handlers: { [K in keyof Operations]: (req: RequestOf<K>, id: number) => Promise<Reply<K>> | Reply<K> } = {
  async open({ key, spec }) {
    let s = sessions.get(key);
    if (!s) {
      s = await loadSession(key, spec);
      sessions.set(key, s);
    }
    return { value: s.info };
  },

  async close({ key }) {
    const s = sessions.get(key);
    sessions.delete(key);
    try {
      for (const hook of closeHooks) hook(key);
    } finally {
      await s?.release();
    }
    return { value: undefined };
  },

  async run({ key, feeds, fetch, keep }) {
    const session = sessionByKey(key);
    const both = fetch?.filter((n) => keep.includes(n)) ?? [];
    if (both.length) throw new Error(`output '${both[0]}' is listed in both fetch and keep`);
    const values: Record<string, TensorValue> = {};
    for (const [name, feed] of Object.entries(feeds)) values[name] = isTensorHandle(feed) ? store.get(feed) : feed;
    const names = fetch ?? session.info.outputs.map((o) => o.name).filter((n) => !keep.includes(n));
    const started = performance.now();
    const outputs = await session.run(values, [...names, ...keep]);
    const ms = performance.now() - started;
    const handles: Record<string, TensorHandle> = {};
    for (const n of keep) handles[n] = store.put(outputs[n]);
    const byValue: Record<string, TensorValue> = {};
    for (const n of names) byValue[n] = outputs[n];
    const packed = packForTransfer(byValue);
    return { value: { values: packed.items, handles, ms }, transfer: packed.transfer };
  },

  put({ value }) {
    return { value: store.put(value) };
  },

  get({ handle }) {
    const v = store.get(handle);
    // The stored tensor stays usable, so the caller gets a copy (made once, then transferred).
    const data = v.data.slice() as TensorValue['data'];
    return { value: { type: v.type, dims: [...v.dims], data }, transfer: [data.buffer as ArrayBuffer] };
  },

  free({ handles }) {
    for (const h of handles) store.free(h);
    return { value: undefined };
  },

  register({ modulePath }) {
    if (registered.has(modulePath)) {
      return { value: [...tasks].filter(([, t]) => t.modulePath === modulePath).map(([n]) => n) };
    }
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(modulePath) as Partial<TaskModule>;
    const entries = Object.entries(mod.tasks ?? {});
    if (typeof mod.tasks !== 'object' || mod.tasks === null || entries.some(([, h]) => typeof h !== 'function')) {
      throw new Error(`task module ${modulePath} must export \`tasks\`: an object of handler functions`);
    }
    if (mod.sessionClosed !== undefined && typeof mod.sessionClosed !== 'function') {
      throw new Error(`task module ${modulePath}: \`sessionClosed\` must be a function`);
    }
    for (const [name] of entries) {
      const other = tasks.get(name);
      if (other) throw new Error(`task module ${modulePath}: task '${name}' is already registered by ${other.modulePath}`);
    }
    for (const [name, handler] of entries) tasks.set(name, { handler, modulePath });
    if (mod.sessionClosed) closeHooks.push(mod.sessionClosed);
    registered.add(modulePath);
    return { value: entries.map(([n]) => n) };
  },

  async task({ name, payload }, id) {
    const task = tasks.get(name);
    if (!task) {
      const known = [...tasks.keys()];
      throw new Error(`unknown task '${name}' (registered: ${known.length ? known.join(', ') : 'none'})`);
    }
    const controller = new AbortController();
    running.set(id, controller);
    const io: TaskIO = {
      signal: controller.signal,
      emit: (event, transfer) => {
        if (running.has(id)) post({ kind: 'event', id, event }, transfer);
      },
    };
    try {
      const out = await task.handler(context, payload, io);
      if (typeof out !== 'object' || out === null || !('result' in out)) {
        throw new Error(`task '${name}' must return { result, transfer? }`);
      }
      return { value: out.result, transfer: out.transfer };
    } finally {
      running.delete(id);
    }
  },
};

async function handle(id: number, request: AnyRequest): Promise<void> {
  try {
    const handler = handlers[request.op] as (req: AnyRequest, id: number) => Promise<Reply<keyof Operations>>;
    const { value, transfer } = await handler(request, id);
    post({ kind: 'done', id, value }, transfer);
  } catch (e) {
    post({ kind: 'failed', id, error: serializeError(e) });
  }
}

port.on('message', (msg: ToWorker) => {
  if (msg.kind === 'abort') running.get(msg.id)?.abort();
  else if (msg.kind === 'shutdown')
    process.exit(0); // ends this thread only; no ORT call is running here
  else void handle(msg.id, msg.request);
});
