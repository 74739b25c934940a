// Building blocks shared by the vision tower, projector and decoder graphs: weights as initializers (read lazily
// at write time), Linear (MatMul or MatMulNBits), LayerNorm, RMSNorm, and small shape helpers.
import { Graph, MS_DOMAIN, tensor } from './graph';
import { DEFAULT_BLOCK_SIZE, QuantBits, quantizeBlockwise } from './quantize';
import { requireWeight, WeightSource } from './weights';

export interface QuantOptions {
  bits: QuantBits;
  blockSize?: number;
  /** MatMulNBits accuracy_level: 0 = compute in the input type, 4 = int8 activations (fastest on CPU). */
  accuracyLevel?: number;
}

export interface BuildContext {
  g: Graph;
  weights: WeightSource;
  /** When set, Linear layers built with `quantizable` become com.microsoft MatMulNBits. */
  quant?: QuantOptions;
}

/** The weight as a float32 initializer of the same name and shape (read when the graph is written). */
export function weightInitializer(ctx: BuildContext, name: string, shape: number[]): string {
  const w = requireWeight(ctx.weights, name, shape);
  return ctx.g.initializer(
    name,
    tensor('float32', shape, () => w.read()),
  );
}

/** Transposes a row-major [rows, cols] matrix. */
export function transpose2d(m: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(m.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = m[r * cols + c];
  return out;
}

export interface LinearOptions {
  bias: boolean;
  /** Allowed to become MatMulNBits when the context quantizes. */
  quantizable?: boolean;
  /** Weight name when it differs from `${prefix}.weight` (tied lm_head). */
  weightName?: string;
}

/** One PyTorch Linear of a fused projection: weight `${prefix}.weight` [outF, in], bias `${prefix}.bias` [outF]. */
export interface LinearPart {
  prefix: string;
  outF: number;
}

/** The parts' named tensors stacked along their first axis, read once when the graph is written. */
function stacked(ctx: BuildContext, names: string[], shapes: number[][]): () => Float32Array {
  const tensors = names.map((n, i) => requireWeight(ctx.weights, n, shapes[i]));
  return () => {
    if (tensors.length === 1) return tensors[0].read();
    const out = new Float32Array(shapes.reduce((sum, d) => sum + d.reduce((a, b) => a * b, 1), 0));
    let offset = 0;
    for (const t of tensors) {
      const v = t.read();
      out.set(v, offset);
      offset += v.length;
    }
    return out;
  };
}

/** y = x Wᵀ (+ b) with W [outF, inF] as stacked by `weight`: MatMul, or MatMulNBits when the context quantizes. */
function project(
  ctx: BuildContext,
  x: string,
  prefix: string,
  inF: number,
  outF: number,
  weight: () => Float32Array,
  bias: (() => Float32Array) | null,
  quantizable: boolean,
): string {
  const { g } = ctx;
  let y: string;
  if (ctx.quant && quantizable) {
    const { bits } = ctx.quant;
    const blockSize = ctx.quant.blockSize ?? DEFAULT_BLOCK_SIZE;
    const blocks = Math.ceil(inF / blockSize);
    // One lazy quantization feeds both initializers; it is dropped once both have been written.
    let cached: ReturnType<typeof quantizeBlockwise> | undefined;
    let uses = 0;
    const quantized = () => {
      cached ??= quantizeBlockwise(weight(), outF, inF, bits, blockSize);
      const q = cached;
      if (++uses === 2) cached = undefined;
      return q;
    };
    const b = g.initializer(
      `${prefix}.weight_q${bits}`,
      tensor('uint8', [outF, blocks, (blockSize * bits) / 8], () => quantized().packed),
    );
    const s = g.initializer(
      `${prefix}.weight_scales`,
      tensor('float32', [outF * blocks], () => quantized().scales),
    );
    y = g.op(
      'MatMulNBits',
      [x, b, s],
      {
        K: inF,
        N: outF,
        bits,
        block_size: blockSize,
        accuracy_level: ctx.quant.accuracyLevel ?? 0,
      },
      { domain: MS_DOMAIN, name: `${prefix}/MatMulNBits` },
    );
  } else {
    const w = g.initializer(
      `${prefix}.weight`,
      tensor('float32', [inF, outF], () => transpose2d(weight(), outF, inF)),
    );
    y = g.op('MatMul', [x, w], {}, { name: `${prefix}/MatMul` });
  }
  if (bias) y = g.op('Add', [y, g.initializer(`${prefix}.bias`, tensor('float32', [outF], bias))], {}, { name: `${prefix}/Add` });
  return y;
}

/** y = x Wᵀ (+ b) for the PyTorch Linear `prefix` ([outF, inF] weight). */
export function linear(ctx: BuildContext, x: string, prefix: string, inF: number, outF: number, opts: LinearOptions): string {
  const weight = stacked(ctx, [opts.weightName ?? `${prefix}.weight`], [[outF, inF]]);
  const bias = opts.bias ? stacked(ctx, [`${prefix}.bias`], [[outF]]) : null;
  return project(ctx, x, prefix, inF, outF, weight, bias, opts.quantizable ?? false);
}

/**
 * Linears that read the same x, run as one MatMul (or MatMulNBits) over their weights stacked along the output
 * axis: y holds the parts' outputs side by side (split it with splitLast). Block quantization works per output
 * row, so stacked int4 weights are exactly the parts' own. One kernel instead of several means fewer thread
 * wake-ups per decode step. `prefix` names the stacked initializers.
 */
export function stackedLinear(ctx: BuildContext, x: string, prefix: string, inF: number, parts: LinearPart[], opts: Omit<LinearOptions, 'weightName'>): string {
  const outF = parts.reduce((sum, p) => sum + p.outF, 0);
  const weight = stacked(
    ctx,
    parts.map((p) => `${p.prefix}.weight`),
    parts.map((p) => [p.outF, inF]),
  );
  const bias = opts.bias
    ? stacked(
        ctx,
        parts.map((p) => `${p.prefix}.bias`),
        parts.map((p) => [p.outF]),
      )
    : null;
  return project(ctx, x, prefix, inF, outF, weight, bias, opts.quantizable ?? false);
}

/** Splits the last axis into pieces of the given widths. */
export function splitLast(g: Graph, x: string, widths: number[], name: string): string[] {
  return g.ops('Split', [x, g.constInt64(widths)], { axis: -1 }, { outputs: widths.length, name: `${name}/Split` });
}

export function layerNorm(ctx: BuildContext, x: string, prefix: string, dim: number, eps: number): string {
  return ctx.g.op(
    'LayerNormalization',
    [x, weightInitializer(ctx, `${prefix}.weight`, [dim]), weightInitializer(ctx, `${prefix}.bias`, [dim])],
    { axis: -1, epsilon: { float: eps } },
    { name: `${prefix}/LayerNorm` },
  );
}

/** RMSNorm from standard ops: x / sqrt(mean(x²) + eps) · w. */
export function rmsNorm(ctx: BuildContext, x: string, prefix: string, dim: number, eps: number): string {
  const { g } = ctx;
  const opts = (op: string) => ({ name: `${prefix}/${op}` });
  const meanSq = g.op('ReduceMean', [g.op('Mul', [x, x], {}, opts('Square')), g.constInt64([-1])], { keepdims: 1 }, opts('ReduceMean'));
  const inv = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [meanSq, g.constFloat(eps)], {}, opts('AddEps'))], {}, opts('Sqrt'))], {}, opts('Reciprocal'));
  return g.op('Mul', [g.op('Mul', [x, inv], {}, opts('Normalize')), weightInitializer(ctx, `${prefix}.weight`, [dim])], {}, opts('Scale'));
}

/** Splits the last dim into heads and moves them first: [B, S, heads·hd] → [B, heads, S, hd]. */
export function toHeads(g: Graph, x: string, heads: number, hd: number, name: string): string {
  const r = g.op('Reshape', [x, g.constInt64([0, 0, heads, hd])], {}, { name: `${name}/Reshape` });
  return g.op('Transpose', [r], { perm: [0, 2, 1, 3] }, { name: `${name}/Transpose` });
}

/** [B, heads, S, hd] → [B, S, heads·hd]. */
export function fromHeads(g: Graph, x: string, width: number, name: string): string {
  const t = g.op('Transpose', [x], { perm: [0, 2, 1, 3] }, { name: `${name}/Transpose` });
  return g.op('Reshape', [t, g.constInt64([0, 0, width])], {}, { name: `${name}/Reshape` });
}
