import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { floatAttr, Graph, MS_DOMAIN, tensor } from '../../lib/onnx/graph';

function matmulChain(): { g: Graph; w: Float32Array } {
  const w = Float32Array.from({ length: 16 * 16 }, (_, i) => ((i * 7) % 13) / 13 - 0.5);
  const g = new Graph('chain');
  const x = g.input('x', 'float32', ['batch', 16]);
  const wName = g.initializer('w', tensor('float32', [16, 16], w));
  const y = g.op('MatMul', [g.op('MatMul', [x, wName]), wName]);
  g.output(y, 'float32', ['batch', 16], 'y');
  return { g, w };
}

function matmul(x: Float32Array, w: Float32Array, rows: number, n: number): Float32Array {
  const out = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += x[r * n + k] * w[k * n + j];
      out[r * n + j] = s;
    }
  return out;
}

describe('onnx/graph', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-graph-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('builds a MatMul chain that ORT runs with the expected result and symbolic batch', async () => {
    const { g, w } = matmulChain();
    const s = await ort.InferenceSession.create(g.toBytes());
    assert.deepEqual(s.inputNames, ['x']);
    assert.deepEqual(s.outputNames, ['y']);
    const x = Float32Array.from({ length: 3 * 16 }, (_, i) => Math.sin(i));
    const { y } = await s.run({ x: new ort.Tensor('float32', x, [3, 16]) });
    const expect = matmul(matmul(x, w, 3, 16), w, 3, 16);
    assert.deepEqual(y.dims, [3, 16]);
    (y.data as Float32Array).forEach((v, i) => assert.ok(Math.abs(v - expect[i]) < 1e-5));
    await s.release();
  });

  it('writes external data that loads from the file path with identical results', async () => {
    const { g } = matmulChain();
    const file = path.join(dir, 'chain.onnx');
    const written = g.writeFile(file, { externalData: true });
    assert.deepEqual(written, [file, `${file}_data`]);
    assert.ok(fs.statSync(`${file}_data`).size >= 16 * 16 * 4);
    assert.ok(fs.statSync(file).size < 1024, 'weights are not inline');
    const x = new ort.Tensor(
      'float32',
      Float32Array.from({ length: 16 }, (_, i) => i / 16),
      [1, 16],
    );
    const a = await ort.InferenceSession.create(file);
    const b = await ort.InferenceSession.create(g.toBytes());
    assert.deepEqual((await a.run({ x })).y.data, (await b.run({ x })).y.data);
  });

  it('encodes com.microsoft ops, float/int attributes and int64 constants', async () => {
    const g = new Graph('contrib');
    const x = g.input('x', 'float32', [2, 3]);
    const shape = g.constInt64([3, 2]);
    const r = g.op('Reshape', [x, shape]);
    const q = g.op('QuickGelu', [r], { alpha: floatAttr(1.702) }, { domain: MS_DOMAIN });
    const lm = g.ops('LayerNormalization', [q, g.constFloat([1, 1]), g.constFloat([0, 0])], { axis: -1, epsilon: 1e-5 });
    g.output(lm[0], 'float32', [3, 2], 'y');
    const s = await ort.InferenceSession.create(g.toBytes());
    const xs = Float32Array.from([1, -2, 0.5, 3, -1, 2]);
    const { y } = await s.run({ x: new ort.Tensor('float32', xs, [2, 3]) });
    assert.deepEqual(y.dims, [3, 2]);
    const qg = (v: number) => v / (1 + Math.exp(-1.702 * v));
    for (let row = 0; row < 3; row++) {
      const a = qg(xs[row * 2]),
        b = qg(xs[row * 2 + 1]);
      const mean = (a + b) / 2,
        sd = Math.sqrt(((a - mean) ** 2 + (b - mean) ** 2) / 2 + 1e-5);
      assert.ok(Math.abs((y.data as Float32Array)[row * 2] - (a - mean) / sd) < 1e-4);
    }
  });

  it('rejects duplicate value names and mis-sized initializers with clear errors', () => {
    const g = new Graph('bad');
    g.input('x', 'float32', [1]);
    assert.throws(() => g.input('x', 'float32', [1]), /"x" is already defined/);
    g.initializer('w', tensor('float32', [2, 2], new Float32Array(3)));
    assert.throws(() => g.toBytes(), /initializer w: 12 bytes do not match float32 dims \[2,2\]/);
  });
});
