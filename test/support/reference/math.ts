// Float64 building blocks for the reference forward passes: plain loops, written for clarity, not speed.
import type { WeightSource } from '../../../lib/onnx/weights';

export interface RefTensor {
  data: Float64Array;
  dims: number[];
}

/** Reads a weight as float64, checking its shape. */
export function weight(src: WeightSource, name: string, shape?: number[]): Float64Array {
  const w = src.get(name);
  if (!w) throw new Error(`reference: weights are missing ${name}`);
  if (shape && w.shape.join(',') !== shape.join(',')) throw new Error(`reference: ${name} has shape [${w.shape}], expected [${shape}]`);
  return Float64Array.from(w.read());
}

/** rows × PyTorch Linear: x [rows, inF] · W[outF, inF]ᵀ + b. */
export function linear(x: Float64Array, rows: number, inF: number, w: Float64Array, outF: number, b?: Float64Array): Float64Array {
  const y = new Float64Array(rows * outF);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outF; o++) {
      let s = b ? b[o] : 0;
      const wo = o * inF;
      const xr = r * inF;
      for (let i = 0; i < inF; i++) s += x[xr + i] * w[wo + i];
      y[r * outF + o] = s;
    }
  }
  return y;
}

export function layerNorm(x: Float64Array, rows: number, dim: number, w: Float64Array, b: Float64Array, eps: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let i = 0; i < dim; i++) mean += x[r * dim + i];
    mean /= dim;
    let variance = 0;
    for (let i = 0; i < dim; i++) variance += (x[r * dim + i] - mean) ** 2;
    const inv = 1 / Math.sqrt(variance / dim + eps);
    for (let i = 0; i < dim; i++) y[r * dim + i] = (x[r * dim + i] - mean) * inv * w[i] + b[i];
  }
  return y;
}

export function rmsNorm(x: Float64Array, rows: number, dim: number, w: Float64Array, eps: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    let ms = 0;
    for (let i = 0; i < dim; i++) ms += x[r * dim + i] ** 2;
    const inv = 1 / Math.sqrt(ms / dim + eps);
    for (let i = 0; i < dim; i++) y[r * dim + i] = x[r * dim + i] * inv * w[i];
  }
  return y;
}

/** In-place softmax of one row; `allowed[j] = false` entries get probability 0 (all masked → uniform). */
export function softmaxRow(scores: Float64Array, allowed?: boolean[]): void {
  const ok = (j: number) => !allowed || allowed[j];
  const any = scores.some((_, j) => ok(j));
  let max = -Infinity;
  scores.forEach((s, j) => {
    if (!any || ok(j)) max = Math.max(max, s);
  });
  let sum = 0;
  for (let j = 0; j < scores.length; j++) {
    scores[j] = any && !ok(j) ? 0 : Math.exp(scores[j] - max);
    sum += scores[j];
  }
  if (!any) scores.fill(1 / scores.length);
  else for (let j = 0; j < scores.length; j++) scores[j] /= sum;
}

/** erf by Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7, far below the test tolerances). */
export function erf(x: number): number {
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return x >= 0 ? y : -y;
}

export const gelu = (x: number): number => 0.5 * x * (1 + erf(x / Math.SQRT2));
/** transformers' gelu_pytorch_tanh (PyTorch GELU(approximate='tanh')). */
export const geluTanh = (x: number): number => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
export const quickGelu = (x: number): number => x / (1 + Math.exp(-1.702 * x));
export const silu = (x: number): number => x / (1 + Math.exp(-x));

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
