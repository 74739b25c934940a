// Tiny ONNX models built at test time (with lib/onnx) for the runtime specs, in a temp folder.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Graph, tensor } from '../../lib/onnx/graph';

export const N = 8;

/** The affine model's weight: W[i][j] = (i - j) / N. */
export const W = Float32Array.from({ length: N * N }, (_, k) => (Math.floor(k / N) - (k % N)) / N);

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `llava-runtime-${prefix}-`));
}

/** x [batch, N] → y = x·W and twice = x + x. */
export function writeAffine(dir: string, name = 'affine.onnx'): string {
  const g = new Graph('affine');
  const x = g.input('x', 'float32', ['batch', N]);
  const w = g.initializer('w', tensor('float32', [N, N], W));
  g.output(g.op('MatMul', [x, w]), 'float32', ['batch', N], 'y');
  g.output(g.op('Add', [x, x]), 'float32', ['batch', N], 'twice');
  const file = path.join(dir, name);
  g.writeFile(file);
  return file;
}

/** x [m, n] multiplied by w [n, n] `steps` times: a long run from a tiny file (w is an input). */
export function writeChain(dir: string, steps: number): string {
  const g = new Graph('chain');
  let h = g.input('x', 'float32', ['m', 'n']);
  const w = g.input('w', 'float32', ['n', 'n']);
  for (let i = 0; i < steps; i++) h = g.op('MatMul', [h, w]);
  g.output(h, 'float32', ['m', 'n'], 'y');
  const file = path.join(dir, `chain${steps}.onnx`);
  g.writeFile(file);
  return file;
}

/** Row-major reference product of x [rows, N] and W. */
export function affineY(x: Float32Array): Float32Array {
  const rows = x.length / N;
  const y = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < N; k++) s += x[r * N + k] * W[k * N + j];
      y[r * N + j] = s;
    }
  }
  return y;
}

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5): void {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} !== ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    if (!(Math.abs(actual[i] - expected[i]) <= tol)) {
      throw new Error(`element ${i}: ${actual[i]} differs from ${expected[i]} by more than ${tol}`);
    }
  }
}

/** Inputs for the chain model: x random, w scaled so values stay finite over many steps. */
export function chainFeeds(size: number): { x: Float32Array; w: Float32Array } {
  let seed = 1;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  const scale = Math.sqrt(3 / size);
  return {
    x: Float32Array.from({ length: size * size }, rnd),
    w: Float32Array.from({ length: size * size }, () => rnd() * scale),
  };
}
