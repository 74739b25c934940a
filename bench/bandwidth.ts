// Memory read bandwidth of this machine, measured two ways; the higher figure is the one a decode step could
// reach at best: (1) every core summing its share of a 256 MB buffer (worker threads), (2) onnxruntime's own
// fp32 matrix-vector product over a 256 MB weight, the operation a decode step is made of.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';
import * as ort from 'onnxruntime-node';
import { Graph } from '../lib/onnx/graph';

const BYTES = 256 * 1024 * 1024;
const ROUNDS = 7;

const SUM_WORKER = `
const { parentPort, workerData } = require('worker_threads');
const { buffer, start, end } = workerData;
const a = new Float64Array(buffer, start * 8, end - start);
parentPort.on('message', () => {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (let i = 0; i < a.length; i += 4) { s0 += a[i]; s1 += a[i + 1]; s2 += a[i + 2]; s3 += a[i + 3]; }
  parentPort.postMessage(s0 + s1 + s2 + s3);
});`;

async function threadsBandwidth(threads: number): Promise<number> {
  const buffer = new SharedArrayBuffer(BYTES);
  new Float64Array(buffer).fill(1);
  const n = BYTES / 8;
  const per = Math.ceil(n / threads / 4) * 4;
  const workers = Array.from(
    { length: threads },
    (_, t) => new Worker(SUM_WORKER, { eval: true, workerData: { buffer, start: t * per, end: Math.min(n, (t + 1) * per) } }),
  );
  const round = () =>
    Promise.all(
      workers.map(
        (w) =>
          new Promise((resolve) => {
            w.once('message', resolve);
            w.postMessage(0);
          }),
      ),
    );
  try {
    await round(); // JIT warm-up
    let best = Infinity;
    for (let r = 0; r < ROUNDS; r++) {
      const t0 = performance.now();
      await round();
      best = Math.min(best, performance.now() - t0);
    }
    return BYTES / (best / 1000);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

async function gemvBandwidth(threads: number, scratchDir: string): Promise<number> {
  const k = 4096;
  const n = BYTES / 4 / k;
  const file = path.join(scratchDir, 'bandwidth-gemv.onnx');
  if (!fs.existsSync(file)) {
    const g = new Graph('gemv');
    const x = g.input('x', 'float32', [1, k]);
    const w = g.input('w', 'float32', [k, n]);
    g.output(g.op('MatMul', [x, w]), 'float32', [1, n], 'y');
    fs.mkdirSync(scratchDir, { recursive: true });
    g.writeFile(file);
  }
  const session = await ort.InferenceSession.create(file, { intraOpNumThreads: threads });
  const weights = new Float32Array(k * n).fill(0.5);
  const feeds = { x: new ort.Tensor('float32', new Float32Array(k).fill(1), [1, k]), w: new ort.Tensor('float32', weights, [k, n]) };
  try {
    await session.run(feeds);
    let best = Infinity;
    for (let r = 0; r < ROUNDS; r++) {
      const t0 = performance.now();
      await session.run(feeds);
      best = Math.min(best, performance.now() - t0);
    }
    return BYTES / (best / 1000);
  } finally {
    await session.release();
  }
}

export interface Bandwidth {
  /** Bytes per second: the higher of the two measurements. */
  bytesPerSecond: number;
  threadsSum: number;
  ortGemv: number;
}

export async function measureBandwidth(scratchDir: string): Promise<Bandwidth> {
  const threads = os.availableParallelism();
  const threadsSum = await threadsBandwidth(threads);
  const ortGemv = await gemvBandwidth(threads, scratchDir);
  return { bytesPerSecond: Math.max(threadsSum, ortGemv), threadsSum, ortGemv };
}
