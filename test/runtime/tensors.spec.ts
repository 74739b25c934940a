import { strict as assert } from 'assert';
import * as path from 'path';
import { InferenceRuntime } from '../../lib/runtime/runtime';
import type { TensorHandle, TensorValue } from '../../lib/runtime/tensor';

const TASKS = path.join(__dirname, 'fixtures', 'tasks.js');

function floats(...values: number[]): TensorValue {
  return { type: 'float32', dims: [values.length], data: Float32Array.from(values) };
}

describe('runtime tensor handles', () => {
  let rt: InferenceRuntime;
  afterEach(() => rt.dispose());

  it('puts (transferring the data), gets copies back, counts handles and bytes, and frees', async () => {
    rt = new InferenceRuntime();
    const v = floats(1, 2, 3);
    const h = await rt.put(v);
    assert.equal(v.data.length, 0, 'the data was transferred to the worker');
    assert.deepEqual({ type: h.type, dims: h.dims }, { type: 'float32', dims: [3] });
    const ids = await rt.put({ type: 'int64', dims: [2], data: BigInt64Array.of(5n, -7n) });
    assert.deepEqual(rt.stats(), { queued: 0, running: null, sessions: 0, handles: 2, handleBytes: 12 + 16, workerRestarts: 0 });
    const a = await rt.get(h);
    a.data[0] = 99; // a copy: changing it leaves the stored tensor alone
    assert.deepEqual(Array.from((await rt.get(h)).data as Float32Array), [1, 2, 3]);
    assert.deepEqual(Array.from((await rt.get(ids)).data as BigInt64Array), [5n, -7n]);
    await rt.free([h, ids]);
    await rt.free(h); // freeing twice is harmless
    assert.equal(rt.stats().handles, 0);
    assert.equal(rt.stats().handleBytes, 0);
    await assert.rejects(rt.get(h), /expired tensor handle t\d+\.\d+: it was freed, or evicted/);
  });

  it('evicts the least recently used handle beyond the count limit', async () => {
    rt = new InferenceRuntime({ maxHandles: 3 });
    const [a, b, c] = [await rt.put(floats(1)), await rt.put(floats(2)), await rt.put(floats(3))];
    await rt.get(a); // a is now more recent than b
    const d = await rt.put(floats(4));
    await assert.rejects(rt.get(b), /expired tensor handle .*evicted as least recently used \(limits: 3 handles/);
    for (const [h, v] of [
      [a, 1],
      [c, 3],
      [d, 4],
    ] as [TensorHandle, number][]) {
      assert.equal((await rt.get(h)).data[0], v);
    }
    assert.equal(rt.stats().handles, 3);
  });

  it('evicts beyond the byte limit but always keeps the newest tensor', async () => {
    rt = new InferenceRuntime({ maxHandleBytes: 40 });
    const a = await rt.put(floats(1, 1, 1, 1)); // 16 bytes
    const b = await rt.put(floats(2, 2, 2, 2));
    const c = await rt.put(floats(3, 3, 3, 3)); // 48 > 40: a goes
    await assert.rejects(rt.get(a), /expired tensor handle/);
    assert.equal((await rt.get(b)).data[0], 2);
    assert.equal(rt.stats().handleBytes, 32);
    const big = await rt.put({ type: 'float32', dims: [20], data: new Float32Array(20).fill(5) }); // 80 bytes alone
    await assert.rejects(rt.get(c), /expired tensor handle/);
    assert.equal((await rt.get(big)).data[19], 5);
    assert.deepEqual([rt.stats().handles, rt.stats().handleBytes], [1, 80]);
  });

  it('lets worker tasks read, store and free tensors by handle', async () => {
    rt = new InferenceRuntime();
    await rt.registerTaskModule(TASKS);
    const h = await rt.put(floats(1, -2, 3));
    const negated = await rt.task<TensorHandle>('negateStored', { handle: h.handle });
    assert.deepEqual(Array.from((await rt.get(negated)).data as Float32Array), [-1, 2, -3]);
    await assert.rejects(rt.get(h), /expired tensor handle/);
    assert.equal(rt.stats().handles, 1);
  });

  it('rejects malformed tensors and handles with clear errors', async () => {
    rt = new InferenceRuntime();
    await assert.rejects(
      rt.put({ type: 'float32', dims: [2], data: Int32Array.of(1, 2) } as unknown as TensorValue),
      /put: float32 data must be a Float32Array, got Int32Array/,
    );
    await assert.rejects(rt.put({ type: 'float64', dims: [1], data: new Float32Array(1) } as unknown as TensorValue), /unsupported tensor type 'float64'/);
    await assert.rejects(rt.get({ handle: 'nonsense', type: 'float32', dims: [1] }), /not a tensor handle: "nonsense"/);
    await assert.rejects(rt.free({} as TensorHandle), /expected tensor handles/);
  });
});
