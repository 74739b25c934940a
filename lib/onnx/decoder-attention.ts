// Self-attention for the LLaMA-family decoder in two forms with the same inputs and outputs (and the same mask:
// causal, padding, Mistral's sliding window):
//  - portable: standard ONNX ops (rotate-half RoPE, Concat KV cache, GQA by broadcasting query groups over shared
//    KV heads, causal+padding mask via Where);
//  - optimized: q/k/v from one MatMul over the stacked weights, one com.microsoft RotaryEmbedding on q and k
//    together (from position_ids) and GroupQueryAttention without rotary.
//    GQA's built-in rotary is not used: it needs head_size % 16 == 0, and in decode steps it derives positions
//    from seqlens_k instead of position_ids, which is wrong for left-padded rows.
import type { TextConfig } from '../model/config';
import { headDim } from '../model/config';
import { BuildContext, fromHeads, linear, splitLast, stackedLinear, toHeads } from './blocks';
import { floatAttr, Graph, MS_DOMAIN, tensor } from './graph';
import { attentionWindow } from './text/llama';
import { TEXT_PREFIX } from './weight-names';

/** Values computed once per graph and shared by every layer. */
export interface AttentionShared {
  positionIds: string;
  /** portable: cos/sin [B, 1, S, hd]; allowed [B, 1, 1, S, T] bool. */
  cos?: string;
  sin?: string;
  allowed?: string;
  /** optimized: cos/sin caches [max_pos, hd/2], seqlens_k int32 [B], total_sequence_length int32 scalar. */
  cosCache?: string;
  sinCache?: string;
  seqlensK?: string;
  totalLength?: string;
  /** optimized: additive causal + padding mask [B, 1, S, T]. */
  attentionBias?: string;
}

export interface LayerKv {
  pastKey: string;
  pastValue: string;
  presentKey: string;
  presentValue: string;
}

export function inverseFrequencies(t: TextConfig): Float64Array {
  const hd = headDim(t);
  return Float64Array.from({ length: hd / 2 }, (_, i) => t.rope_theta ** (-(2 * i) / hd));
}

function dim(g: Graph, shapeOf: string, index: number): string {
  return g.op('Slice', [g.op('Shape', [shapeOf]), g.constInt64([index]), g.constInt64([index + 1])]);
}

/**
 * Causal + padding mask [B, 1, S, T]: query i (absolute position P+i) sees key j when j ≤ P+i and mask[b, j] = 1,
 * and, with an attention window W (Mistral's sliding_window), when j > P+i − W.
 */
function allowedKeys(g: Graph, t: TextConfig, embeds: string, mask: string): string {
  const total = g.op('Squeeze', [dim(g, mask, 1)]);
  const seq = g.op('Squeeze', [dim(g, embeds, 1)]);
  const past = g.op('Sub', [total, seq]);
  const one = g.constInt64(1);
  const keyIdx = g.op('Range', [g.constInt64(0), total, one]);
  const queryIdx = g.op('Unsqueeze', [g.op('Range', [past, total, one]), g.constInt64([-1])]);
  let causal = g.op('LessOrEqual', [keyIdx, queryIdx], {}, { name: 'mask/Causal' });
  const window = attentionWindow(t);
  if (window !== null) {
    const inWindow = g.op('Greater', [keyIdx, g.op('Sub', [queryIdx, g.constInt64(window)])], {}, { name: 'mask/SlidingWindow' });
    causal = g.op('And', [causal, inWindow], {}, { name: 'mask/CausalWindow' });
  }
  const padding = g.op('Unsqueeze', [g.op('Cast', [mask], { to: 9 }), g.constInt64([1, 2])]);
  return g.op('And', [causal, padding], {}, { name: 'mask/Allowed' });
}

export function portableShared(g: Graph, t: TextConfig, embeds: string, mask: string, positionIds: string): AttentionShared {
  // RoPE angles from position_ids: [B, S, hd/2] → concat → [B, 1, S, hd].
  const pos = g.op('Unsqueeze', [g.op('Cast', [positionIds], { to: 1 }), g.constInt64([-1])]);
  const freqs = g.op('Mul', [pos, g.constFloat(Array.from(inverseFrequencies(t)))], {}, { name: 'rope/Angles' });
  const emb = g.op('Unsqueeze', [g.op('Concat', [freqs, freqs], { axis: -1 }), g.constInt64([1])]);
  const cos = g.op('Cos', [emb], {}, { name: 'rope/Cos' });
  const sin = g.op('Sin', [emb], {}, { name: 'rope/Sin' });
  const allowed = g.op('Unsqueeze', [allowedKeys(g, t, embeds, mask), g.constInt64([1])]);
  return { positionIds, cos, sin, allowed };
}

export function optimizedShared(g: Graph, t: TextConfig, embeds: string, mask: string, positionIds: string): AttentionShared {
  const hd = headDim(t);
  const inv = inverseFrequencies(t);
  const maxPos = t.max_position_embeddings;
  const cosData = new Float32Array(maxPos * (hd / 2));
  const sinData = new Float32Array(maxPos * (hd / 2));
  for (let p = 0; p < maxPos; p++) {
    for (let i = 0; i < hd / 2; i++) {
      const angle = Math.fround(p * Math.fround(inv[i])); // float32 angles, as the portable graph computes them
      cosData[p * (hd / 2) + i] = Math.cos(angle);
      sinData[p * (hd / 2) + i] = Math.sin(angle);
    }
  }
  const cosCache = g.initializer('rope.cos_cache', tensor('float32', [maxPos, hd / 2], cosData));
  const sinCache = g.initializer('rope.sin_cache', tensor('float32', [maxPos, hd / 2], sinData));
  // GQA reads seqlens_k as "keys 0..seqlens_k are valid", which only fits right padding. Every row is declared
  // full length instead, and the causal + padding mask goes in as attention_bias, so left-padded batches work.
  const total = g.op('Squeeze', [dim(g, mask, 1)]);
  const totalLength = g.op('Cast', [total], { to: 6 }, { name: 'gqa/TotalLength' });
  const batch = dim(g, mask, 0);
  const seqlensK = g.op('Cast', [g.op('Expand', [g.op('Sub', [total, g.constInt64(1)]), batch])], { to: 6 }, { name: 'gqa/SeqlensK' });
  const attentionBias = g.op(
    'Where',
    [allowedKeys(g, t, embeds, mask), g.constFloat(0), g.constFloat(-3.4028234663852886e38)],
    {},
    { name: 'gqa/AttentionBias' },
  );
  return { positionIds, cosCache, sinCache, seqlensK, totalLength, attentionBias };
}

function projections(ctx: BuildContext, t: TextConfig, h: string, p: string, qkvBias: boolean): [string, string, string] {
  const hd = headDim(t);
  const width = t.hidden_size;
  const lin = (name: string, out: number) => linear(ctx, h, `${p}.self_attn.${name}`, width, out, { bias: qkvBias, quantizable: true });
  return [lin('q_proj', t.num_attention_heads * hd), lin('k_proj', t.num_key_value_heads * hd), lin('v_proj', t.num_key_value_heads * hd)];
}

function rotateHalf(g: Graph, x: string, hd: number, name: string): string {
  const axis = g.constInt64([-1]);
  const first = g.op('Slice', [x, g.constInt64([0]), g.constInt64([hd / 2]), axis]);
  const second = g.op('Slice', [x, g.constInt64([hd / 2]), g.constInt64([hd]), axis]);
  return g.op('Concat', [g.op('Neg', [second]), first], { axis: -1 }, { name: `${name}/RotateHalf` });
}

function applyRope(g: Graph, x: string, s: AttentionShared, hd: number, name: string): string {
  const a = g.op('Mul', [x, s.cos!]);
  const b = g.op('Mul', [rotateHalf(g, x, hd, name), s.sin!]);
  return g.op('Add', [a, b], {}, { name: `${name}/Rope` });
}

/** Portable attention; returns the o_proj input [B, S, heads·hd] and writes the present KV outputs. */
export function portableAttention(ctx: BuildContext, t: TextConfig, h: string, layer: number, s: AttentionShared, kv: LayerKv, qkvBias: boolean): string {
  const { g } = ctx;
  const hd = headDim(t);
  const heads = t.num_attention_heads;
  const kvHeads = t.num_key_value_heads;
  const p = `${TEXT_PREFIX}.layers.${layer}`;
  const [q, k, v] = projections(ctx, t, h, p, qkvBias);
  const qr = applyRope(g, toHeads(g, q, heads, hd, `${p}/q`), s, hd, `${p}/q`);
  const kr = applyRope(g, toHeads(g, k, kvHeads, hd, `${p}/k`), s, hd, `${p}/k`);
  g.op('Concat', [kv.pastKey, kr], { axis: 2 }, { outputs: [kv.presentKey] });
  g.op('Concat', [kv.pastValue, toHeads(g, v, kvHeads, hd, `${p}/v`)], { axis: 2 }, { outputs: [kv.presentValue] });
  // Query heads grouped per KV head: [B, kvh, groups, S, hd] against keys [B, kvh, 1, T, hd].
  const q5 = g.op('Reshape', [g.op('Mul', [qr, g.constFloat(1 / Math.sqrt(hd))]), g.constInt64([0, kvHeads, heads / kvHeads, -1, hd])]);
  const k5 = g.op('Unsqueeze', [kv.presentKey, g.constInt64([2])]);
  const v5 = g.op('Unsqueeze', [kv.presentValue, g.constInt64([2])]);
  const scores = g.op('MatMul', [q5, g.op('Transpose', [k5], { perm: [0, 1, 2, 4, 3] })], {}, { name: `${p}/Scores` });
  const masked = g.op('Where', [s.allowed!, scores, g.constFloat(-3.4028234663852886e38)], {}, { name: `${p}/Mask` });
  const probs = g.op('Softmax', [masked], { axis: -1 }, { name: `${p}/Softmax` });
  const context = g.op('Reshape', [g.op('MatMul', [probs, v5]), g.constInt64([0, heads, -1, hd])], {}, { name: `${p}/Context` });
  return fromHeads(g, context, heads * hd, `${p}/attn`);
}

/**
 * Optimized attention: q, k and v from one MatMul over the three weights stacked, and one RotaryEmbedding for q
 * and k together (the rotation is per head and the same for both, so q|k is taken as heads + kvHeads heads).
 */
export function optimizedAttention(ctx: BuildContext, t: TextConfig, h: string, layer: number, s: AttentionShared, kv: LayerKv, qkvBias: boolean): string {
  const { g } = ctx;
  const hd = headDim(t);
  const p = `${TEXT_PREFIX}.layers.${layer}`;
  const heads = t.num_attention_heads;
  const kvHeads = t.num_key_value_heads;
  const parts = [heads, kvHeads, kvHeads].map((n, i) => ({ prefix: `${p}.self_attn.${['q', 'k', 'v'][i]}_proj`, outF: n * hd }));
  const qkv = stackedLinear(ctx, h, `${p}.self_attn.qkv_proj`, t.hidden_size, parts, { bias: qkvBias, quantizable: true });
  const [qk, v] = splitLast(g, qkv, [(heads + kvHeads) * hd, kvHeads * hd], `${p}/qk_v`);
  const rotated = g.op(
    'RotaryEmbedding',
    [qk, s.positionIds, s.cosCache!, s.sinCache!],
    { interleaved: 0, num_heads: heads + kvHeads },
    { domain: MS_DOMAIN, name: `${p}/qk/RotaryEmbedding` },
  );
  const [q, k] = splitLast(g, rotated, [heads * hd, kvHeads * hd], `${p}/q_k`);
  const inputs = [q, k, v, kv.pastKey, kv.pastValue, s.seqlensK!, s.totalLength!, '', '', '', s.attentionBias!];
  const [out] = g.ops(
    'GroupQueryAttention',
    inputs,
    {
      num_heads: heads,
      kv_num_heads: kvHeads,
      scale: floatAttr(1 / Math.sqrt(hd)),
      do_rotary: 0,
    },
    { domain: MS_DOMAIN, outputs: [g.uniqueName(`${p}/attn`), kv.presentKey, kv.presentValue], name: `${p}/GroupQueryAttention` },
  );
  return out;
}
