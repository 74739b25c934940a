import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { InferenceRuntime } from '../../lib/runtime/runtime';
import { mainThreadCpuMs, threadsCpu } from '../support/cpu-time';
import type { TensorValue } from '../../lib/runtime/tensor';
import type { SessionLease } from '../../lib/runtime/types';
import { affineY, assertClose, chainFeeds, N, tempDir, writeAffine, writeChain } from './models';

const TASKS = path.join(__dirname, 'fixtures', 'tasks.js');
/** Matrix size of a chain run that keeps the worker busy while jobs queue behind it (about 0.4 s on 2 cores). */
const BUSY = 768;
/** A run long enough (≥ 0.3 s even on an idle machine) to act on while it executes. */
const LONG = 1024;

/** Resolves once the runtime reports `label` as the running job. */
async function runningNow(runtime: InferenceRuntime, label: string): Promise<void> {
  while (runtime.stats().running !== label) await new Promise((r) => setTimeout(r, 2));
}

function chainInputs(size: number): Record<string, TensorValue> {
  const f = chainFeeds(size);
  return { x: { type: 'float32', dims: [size, size], data: f.x }, w: { type: 'float32', dims: [size, size], data: f.w } };
}

function xValue(rows: number): TensorValue {
  return { type: 'float32', dims: [rows, N], data: Float32Array.from({ length: rows * N }, (_, i) => Math.cos(i)) };
}

describe('runtime worker', () => {
  let dir: string;
  let affine: string;
  let chain: string;
  let rt: InferenceRuntime;
  let chainLease: SessionLease;

  before(() => {
    dir = tempDir('worker');
    affine = writeAffine(dir);
    chain = writeChain(dir, 24); // 24 MatMuls: about 1.4 s at 1024×1024 on 2 cores, 0.2 s at 512×512
  });
  beforeEach(async () => {
    rt = new InferenceRuntime({ graceMs: 1000 });
    await rt.registerTaskModule(TASKS);
    chainLease = await rt.openSession({ modelPath: chain, providers: 'cpu' });
  });
  afterEach(() => rt.dispose());
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("keeps the main thread free while a long run executes in the worker (main-thread CPU < 10% of the run's)", async () => {
    const inputs = chainInputs(1024);
    const mainBefore = mainThreadCpuMs();
    const processBefore = process.cpuUsage();
    const r = await rt.run(chainLease, inputs, { label: 'long chain' });
    const processCpu = process.cpuUsage(processBefore);
    const mainMs = (mainThreadCpuMs() ?? NaN) - (mainBefore ?? NaN);
    const runCpuMs = (processCpu.user + processCpu.system) / 1000;
    assert.deepEqual(r.values.y.dims, [1024, 1024]);
    // CPU time, not wall-clock time: another process on the machine slows the run but adds nothing to either figure.
    // 24 MatMuls of 1024×1024 cost about 0.45 s of CPU; on the main thread the loop would be stalled for all of it.
    assert.ok(runCpuMs > 100, `the run cost only ${runCpuMs.toFixed(0)} ms of CPU: too little to show anything`);
    // What the main thread does: post the inputs, take the 4 MB result (2–4 ms of CPU measured here).
    if (mainBefore !== null) {
      assert.ok(mainMs < Math.max(50, runCpuMs / 10), `the main thread ran ${mainMs.toFixed(1)} ms of a run that cost ${runCpuMs.toFixed(0)} ms of CPU`);
    }
  });

  it("runs the inference threads at the main thread's nice by default, and that much below it with niceness 3; the main thread keeps its own", async function () {
    const mainNice = os.getPriority(0);
    if (process.platform !== 'linux' || mainNice > 16) this.skip(); // nice is per thread only on Linux
    /** The nice values of the threads that did at least a fifth of the CPU work of a 2-thread chain run. */
    const workers = async (runtime: InferenceRuntime): Promise<number[]> => {
      const lease = await runtime.openSession({ modelPath: chain, providers: 'cpu', threads: 2 });
      const inputs = chainInputs(BUSY);
      const before = threadsCpu();
      await runtime.run(lease, inputs);
      const after = threadsCpu();
      lease.release();
      const used = [...after].map(([tid, t]) => ({ nice: t.nice, ms: t.cpuMs - (before.get(tid)?.cpuMs ?? 0) }));
      const total = used.reduce((sum, t) => sum + t.ms, 0);
      return used.filter((t) => t.ms >= total / 5).map((t) => t.nice);
    };
    const same = await workers(rt);
    assert.ok(same.length >= 1, 'no thread did the run');
    assert.deepEqual(
      same,
      same.map(() => mainNice),
      "by default the threads that ran it are at the main thread's nice",
    );
    const lower = new InferenceRuntime({ graceMs: 0, niceness: 3 });
    try {
      const lowered = await workers(lower);
      assert.ok(lowered.length >= 1, 'no thread did the run');
      assert.deepEqual(
        lowered,
        lowered.map(() => mainNice + 3),
        `niceness 3: nice of the threads that ran it (main thread: ${mainNice})`,
      );
    } finally {
      await lower.dispose();
    }
    assert.equal(os.getPriority(0), mainNice, "the main thread's own priority is unchanged");
    assert.throws(() => new InferenceRuntime({ niceness: 20 }), /niceness must be an integer from 0 to 19/);
  });

  it('runs one job at a time and shows the queue; a queued job aborted leaves the queue with an AbortError', async () => {
    const long = rt.run(chainLease, chainInputs(BUSY), { label: 'long chain' });
    const controller = new AbortController();
    const queuedInputs = chainInputs(512);
    const queued = rt.run(chainLease, queuedInputs, { signal: controller.signal, label: 'queued chain' });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(rt.stats().running, 'long chain');
    assert.equal(rt.stats().queued, 1);
    controller.abort();
    await assert.rejects(queued, { name: 'AbortError' });
    assert.equal(rt.stats().queued, 0);
    assert.equal(queuedInputs.x.data.length, 512 * 512, 'a job cancelled before it ran never sent its tensors');
    assert.deepEqual((await long).values.y.dims, [BUSY, BUSY]);
    assert.equal(rt.stats().running, null);
  });

  it('an open aborted while its load waits in the queue rejects with an AbortError and loads nothing', async () => {
    const labels: string[] = [];
    const stop = rt.onStats((s) => s.running && labels.push(s.running));
    const long = rt.run(chainLease, chainInputs(BUSY), { label: 'long chain' });
    const controller = new AbortController();
    const opening = rt.openSession({ modelPath: affine, providers: 'cpu' }, controller.signal);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(rt.stats().queued, 1);
    controller.abort();
    await assert.rejects(opening, { name: 'AbortError' });
    await long;
    await new Promise((r) => setTimeout(r, 20));
    stop();
    assert.deepEqual([...new Set(labels)], ['long chain']);
    assert.equal(rt.stats().sessions, 1, 'only the chain session is loaded');
    await assert.rejects(rt.openSession({ modelPath: affine }, AbortSignal.abort()), { name: 'AbortError' });
  });

  it('a running run rejects as soon as it is aborted and the next job runs after it', async () => {
    const controller = new AbortController();
    const running = rt.run(chainLease, chainInputs(LONG), { signal: controller.signal, label: 'to abort' });
    const next = rt.run(chainLease, chainInputs(512), { label: 'next' });
    await runningNow(rt, 'to abort');
    const order: string[] = [];
    let runningWhenRejected: string | null = null;
    running.catch(() => {
      order.push('aborted');
      runningWhenRejected = rt.stats().running;
    });
    void next.then(() => order.push('next'));
    controller.abort();
    await assert.rejects(running, { name: 'AbortError' });
    // Promptly: the caller's promise settled while the worker was still inside that run (not when ORT returned).
    assert.equal(runningWhenRejected, 'to abort');
    assert.deepEqual((await next).values.y.dims, [512, 512]);
    // `next` can only run once the aborted run has ended, so this order means the abort did not wait for it.
    assert.deepEqual(order, ['aborted', 'next']);
  });

  it('disposing during a run lets the run end first (killing a thread inside ORT aborts the process), then fails what waits', async () => {
    const own = new InferenceRuntime({ graceMs: 0 });
    const lease = await own.openSession({ modelPath: chain, providers: 'cpu' });
    const running = own.run(lease, chainInputs(LONG), { label: 'long chain' });
    const queued = own.run(lease, chainInputs(512), { label: 'queued' });
    await runningNow(own, 'long chain');
    await own.dispose();
    assert.deepEqual((await running).values.y.dims, [LONG, LONG], 'the run in progress finished and delivered');
    await assert.rejects(queued, /disposed/);
    // this process is still alive to see it: a forced terminate mid-run would have aborted it
    assert.equal(own.isDisposed, true);
  });

  it('aborts a running task through its AbortSignal inside the worker', async () => {
    const controller = new AbortController();
    const result = await rt.task<string>('untilAborted', null, {
      signal: controller.signal,
      label: 'waiting task',
      onEvent: (e) => {
        assert.equal(e, 'started');
        assert.equal(rt.stats().running, 'waiting task');
        controller.abort();
      },
    });
    assert.equal(result, 'stopped by abort');
  });

  it('streams task events in order, with transferred buffers', async () => {
    const seen: number[] = [];
    const result = await rt.task<number>(
      'countTo',
      { count: 5 },
      {
        onEvent: (e) => seen.push((e as { index: Int32Array }).index[0]),
      },
    );
    assert.equal(result, 5);
    assert.deepEqual(seen, [0, 1, 2, 3, 4]);
  });

  it('gives tasks sessions by key and pre-allocated outputs that ORT writes in place', async () => {
    const lease = await rt.openSession({ modelPath: affine, providers: 'cpu' });
    const x = xValue(2);
    const expected = affineY(affineY(Float32Array.from(x.data as Float32Array)));
    const out = await rt.task<{ sameObject: boolean; y: TensorValue }>('affineTwice', { key: lease.info.key, x }, { transfer: [x.data.buffer as ArrayBuffer] });
    assert.equal(out.sameObject, true);
    assertClose(out.y.data as Float32Array, expected, 1e-4);
    lease.release();
  });

  it('rejects task failures with the task error, and unknown tasks with the registered names', async () => {
    await assert.rejects(rt.task('fail', { message: 'bad payload: no image' }), (e: Error) => {
      assert.ok(e instanceof Error);
      assert.equal(e.message, 'bad payload: no image');
      return true;
    });
    await assert.rejects(rt.task('nope', {}), /unknown task 'nope' \(registered: .*affineTwice/);
    await assert.rejects(rt.task('affineTwice', { key: 'no-such-key', x: xValue(1) }), /no session is open .* no-such-key/);
    await assert.rejects(rt.registerTaskModule(path.join(dir, 'missing-module.js')), /Cannot find module/);
    await assert.rejects(rt.task('countTo', { count: () => 1 }), /could not be cloned/);
    await assert.rejects(rt.task('unclonable', null), /could not be cloned/);
    assert.equal(await rt.task('countTo', { count: 2 }), 2, 'the worker is still serving');
    assert.equal(rt.stats().workerRestarts, 0);
  });

  it('recovers from a crashed worker: jobs in flight and queued fail clearly, the next ones work', async () => {
    const lease = await rt.openSession({ modelPath: affine, providers: 'cpu' });
    const handle = await rt.put(xValue(1));
    const crashing = rt.task('exitWorker', null);
    const queued = rt.run(lease, { x: xValue(1) });
    await assert.rejects(crashing, /inference worker exited \(code 7\)/);
    await assert.rejects(queued, /inference worker exited \(code 7\)/);
    assert.equal(rt.stats().workerRestarts, 1);
    assert.equal(rt.stats().handles, 0);
    // Task modules are registered again, and the leased session is re-created for a task that uses it by key.
    const twice = await rt.task<{ y: TensorValue }>('affineTwice', { key: lease.info.key, x: xValue(1) });
    assert.deepEqual(twice.y.dims, [1, N]);
    // The lease itself is still valid.
    const x = xValue(3);
    const expected = affineY(Float32Array.from(x.data as Float32Array));
    assertClose((await rt.run(lease, { x })).values.y.data as Float32Array, expected);
    await assert.rejects(rt.get(handle), /expired tensor handle .*exited/);
    lease.release();
  });

  it('reports an uncaught error in the worker as the reason it exited', async () => {
    await assert.rejects(rt.task('throwLater', null), /inference worker exited \(code 1: boom from a timer\)/);
    assert.equal(rt.stats().workerRestarts, 1);
    assert.equal(await rt.task('countTo', { count: 1 }), 1);
  });

  it('does not keep the process alive once its jobs are done', function () {
    const script = `
      const { getRuntime } = require(${JSON.stringify(require.resolve('../../lib/runtime/runtime'))});
      (async () => {
        const rt = getRuntime();
        const lease = await rt.openSession({ modelPath: ${JSON.stringify(affine)}, providers: 'cpu' });
        const r = await rt.run(lease, { x: { type: 'float32', dims: [1, ${N}], data: new Float32Array(${N}).fill(1) } });
        console.log('ran', r.values.y.dims.join('x'));
      })();`;
    // A process kept alive would never exit: the timeout only has to be far beyond a slow start on a loaded machine.
    const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(child.signal, null, `the process did not exit by itself (${child.stderr})`);
    assert.equal(child.status, 0, child.stderr);
    assert.match(child.stdout, /ran 1x8/);
  });
});
