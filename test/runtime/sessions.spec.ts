import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { getRuntime, InferenceRuntime } from '../../lib/runtime/runtime';
import type { TensorValue } from '../../lib/runtime/tensor';
import type { RuntimeStats } from '../../lib/runtime/types';
import { loadSession } from '../../lib/runtime/session-host';
import { affineY, assertClose, N, tempDir, writeAffine, writeChain } from './models';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function xValue(rows: number, offset = 0): TensorValue {
  return { type: 'float32', dims: [rows, N], data: Float32Array.from({ length: rows * N }, (_, i) => Math.sin(i + offset)) };
}

/** Counts the session loads the runtime performs (each shows as a running "load <file>" job). */
function countLoads(rt: InferenceRuntime): { readonly count: number; stop(): void } {
  let count = 0;
  let last: string | null = null;
  const stop = rt.onStats((s: RuntimeStats) => {
    if (s.running !== last && s.running?.startsWith('load ')) count++;
    last = s.running;
  });
  return {
    get count() {
      return count;
    },
    stop,
  };
}

describe('runtime sessions', () => {
  let dir: string;
  let model: string;
  let rt: InferenceRuntime;

  before(() => {
    dir = tempDir('sessions');
    model = writeAffine(dir);
  });
  beforeEach(() => {
    rt = new InferenceRuntime({ graceMs: 200, threads: 1 });
  });
  afterEach(() => rt.dispose());
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('loads a model in the worker and runs it, returning values and session info', async () => {
    const lease = await rt.openSession({ modelPath: model, providers: 'cpu' });
    assert.equal(lease.info.provider, 'cpu');
    assert.deepEqual(lease.info.providerFailures, []);
    assert.deepEqual(lease.info.inputs, [{ name: 'x', type: 'float32', shape: ['batch', N] }]);
    assert.deepEqual(
      lease.info.outputs.map((o) => o.name),
      ['y', 'twice'],
    );
    const x = xValue(3);
    const expected = affineY(x.data as Float32Array);
    const r = await rt.run(lease, { x });
    assert.deepEqual(Object.keys(r.values).sort(), ['twice', 'y']);
    assert.deepEqual(r.values.y.dims, [3, N]);
    assertClose(r.values.y.data as Float32Array, expected);
    assert.equal(x.data.length, 0, 'the feed buffer was transferred to the worker, not copied');
    assert.ok(r.ms >= 0);
    lease.release();
  });

  it('shares one session between two users and between concurrent opens of the same spec', async () => {
    const loads = countLoads(rt);
    const [a, b] = await Promise.all([
      rt.openSession({ modelPath: model, providers: 'cpu' }),
      rt.openSession({ modelPath: model, providers: ['cpu'], config: {} }),
    ]);
    const c = await rt.openSession({ modelPath: path.join(dir, '.', 'affine.onnx'), providers: 'cpu' });
    assert.equal(loads.count, 1, 'one create for three opens');
    assert.equal(a.info.key, b.info.key);
    assert.equal(a.info.key, c.info.key);
    assert.equal(rt.stats().sessions, 1);
    // A different thread count is a different session.
    const d = await rt.openSession({ modelPath: model, providers: 'cpu', threads: 2 });
    assert.notEqual(d.info.key, a.info.key);
    assert.equal(loads.count, 2);
    assert.equal(rt.stats().sessions, 2);
    a.release();
    a.release(); // a second release of one lease is ignored
    const r = await rt.run(b, { x: xValue(1) });
    assert.deepEqual(r.values.y.dims, [1, N]);
    await assert.rejects(rt.run(a, { x: xValue(1) }), /lease was released/);
    loads.stop();
    for (const l of [b, c, d]) l.release();
  });

  it('keeps a released session for the grace period, reuses it within it and unloads it after', async () => {
    const loads = countLoads(rt);
    const first = await rt.openSession({ modelPath: model, providers: 'cpu' });
    first.release();
    await sleep(60);
    assert.equal(rt.stats().sessions, 1, 'still loaded within the grace period');
    const again = await rt.openSession({ modelPath: model, providers: 'cpu' });
    assert.equal(loads.count, 1, 'reopened within the grace period without a reload');
    again.release();
    await sleep(350);
    assert.equal(rt.stats().sessions, 0, 'unloaded after the grace period');
    const third = await rt.openSession({ modelPath: model, providers: 'cpu' });
    assert.equal(loads.count, 2, 'loaded again after it was unloaded');
    await rt.run(third, { x: xValue(2) });
    third.release();
    loads.stop();
  });

  it('returns chosen outputs by value and keeps others in the worker as handles', async () => {
    const lease = await rt.openSession({ modelPath: model, providers: 'cpu' });
    const x = xValue(2, 5);
    const xs = Float32Array.from(x.data as Float32Array);
    const r = await rt.run(lease, { x }, { fetch: ['twice'], keep: ['y'] });
    assert.deepEqual(Object.keys(r.values), ['twice']);
    assertClose(
      r.values.twice.data as Float32Array,
      xs.map((v) => 2 * v),
    );
    assert.deepEqual(Object.keys(r.handles), ['y']);
    assert.deepEqual(r.handles.y.dims, [2, N]);
    assert.equal(rt.stats().handles, 1);
    // A kept output feeds the next run without crossing threads.
    const r2 = await rt.run(lease, { x: r.handles.y }, { fetch: ['y'] });
    assertClose(r2.values.y.data as Float32Array, affineY(affineY(xs)), 1e-4);
    assertClose((await rt.get(r.handles.y)).data as Float32Array, affineY(xs));
    await rt.free(r.handles.y);
    await assert.rejects(rt.get(r.handles.y), /expired tensor handle/);
    lease.release();
  });

  it('rejects with the ORT message for a wrong input shape, and with clear errors for bad requests', async () => {
    const lease = await rt.openSession({ modelPath: model, providers: 'cpu' });
    const bad: TensorValue = { type: 'float32', dims: [1, N + 1], data: new Float32Array(N + 1) };
    await assert.rejects(rt.run(lease, { x: bad }), (e: Error) => {
      assert.ok(e instanceof Error);
      assert.match(e.message, /Got invalid dimensions for input: x/);
      return true;
    });
    await assert.rejects(rt.run(lease, { x: xValue(1) }, { fetch: ['nope'] }), /unknown output 'nope'.*y, twice/);
    await assert.rejects(rt.run(lease, { x: { type: 'float32', dims: [2, N], data: new Float32Array(3) } }), /input 'x': 3 elements do not match dims \[2,8\]/);
    await assert.rejects(rt.openSession({ modelPath: path.join(dir, 'missing.onnx') }), /model file not found/);
    await assert.rejects(rt.openSession({ modelPath: model, threads: 0 }), /threads must be a positive integer, got 0/);
    await assert.rejects(
      rt.openSession({ modelPath: model, config: { 'session.intra_op.allow_spinning': 1 as unknown as string } }),
      /config value for 'session.intra_op.allow_spinning' must be a string/,
    );
    // Config entries reach ORT: this one makes it read the .onnx file as an .ort flatbuffer.
    await assert.rejects(
      rt.openSession({ modelPath: model, providers: 'cpu', config: { 'session.load_model_format': 'ORT' } }),
      /ORT model verification failed/,
    );
    const junk = path.join(dir, 'junk.onnx');
    fs.writeFileSync(junk, 'not a model');
    await assert.rejects(rt.openSession({ modelPath: junk, providers: 'cpu' }), /protobuf parsing failed|Load model/i);
    assert.equal(rt.stats().sessions, 1, 'the failed load left nothing cached');
    // The session still works after those failures.
    assert.deepEqual((await rt.run(lease, { x: xValue(1) })).values.y.dims, [1, N]);
    lease.release();
  });

  it('is one process-wide instance, even for a second copy of the module', async () => {
    const before = (globalThis as Record<symbol, unknown>)[Symbol.for('node-red-contrib-llava.runtime')];
    const a = getRuntime();
    const modulePath = require.resolve('../../lib/runtime/runtime');
    delete require.cache[modulePath];
    const copy = require(modulePath) as typeof import('../../lib/runtime/runtime');
    assert.notEqual(copy.getRuntime, getRuntime, 'really a second copy of the module');
    assert.equal(copy.getRuntime(), a);
    if (before) return; // another spec's runtime: not ours to dispose
    await a.dispose();
    assert.notEqual(getRuntime(), a, 'a disposed runtime is replaced');
    await getRuntime().dispose();
  });
});

describe('session memory', () => {
  it('a second run of the same shapes touches no new memory (the first frame after a warm-up is as fast as the tenth)', async () => {
    const dir = tempDir('memory');
    try {
      // Four [m, n] × [n, n] products: 16 MB intermediates, so a run's fresh memory shows as thousands of page faults.
      const session = await loadSession('chain', { modelPath: writeChain(dir, 4), providers: ['cpu'], threads: 1, config: {} });
      const m = 4096;
      const n = 1024;
      const x: TensorValue = { type: 'float32', dims: [m, n], data: new Float32Array(m * n).fill(1e-3) };
      const w: TensorValue = { type: 'float32', dims: [n, n], data: new Float32Array(n * n).fill(1e-3) };
      const y: TensorValue = { type: 'float32', dims: [m, n], data: new Float32Array(m * n) };
      const faults: number[] = [];
      for (let run = 0; run < 5; run++) {
        const before = process.resourceUsage().minorPageFault;
        await session.run({ x, w }, undefined, { y });
        faults.push(process.resourceUsage().minorPageFault - before);
      }
      await session.release();
      // A steady run may still fault in a buffer of its own (some reuse last run's, some do not): take the most.
      const steady = Math.max(...faults.slice(2));
      // With ORT's memory patterns on, the second run took a new 32 MB block for its intermediates (~8k more faults).
      assert.ok(faults[1] - steady < 2048, `page faults per run: ${faults.join(', ')}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
