// The pre-LN transformer encoder layer CLIP and SigLIP share (same weight names under `encoder.layers.{i}`):
// x + out_proj(attention(layer_norm1(x))), then x + fc2(act(fc1(layer_norm2(x)))). Only the MLP activation differs.
// The six Linear layers become MatMulNBits when the build quantizes the vision tower (BuildContext.quant).
import type { VisionConfig } from '../../model/config';
import { BuildContext, fromHeads, layerNorm, linear, toHeads, weightInitializer } from '../blocks';
import type { Graph } from '../graph';
import { linearShapes, VISION_PREFIX, WeightShapes } from '../weight-names';

/**
 * embeddings.patch_embedding on pixel_values [B, C, S, S] → patch tokens [B, (S/P)², d], row-major. A stride-P conv
 * without pads floors S/P, as PyTorch does (padding "valid", or CLIP's default 0).
 */
export function patchTokens(ctx: BuildContext, v: VisionConfig, pixelValues: string, withBias: boolean): string {
  const { g } = ctx;
  const e = `${VISION_PREFIX}.embeddings.patch_embedding`;
  const d = v.hidden_size;
  const inputs = [pixelValues, weightInitializer(ctx, `${e}.weight`, [d, v.num_channels ?? 3, v.patch_size, v.patch_size])];
  if (withBias) inputs.push(weightInitializer(ctx, `${e}.bias`, [d]));
  const conv = g.op('Conv', inputs, { kernel_shape: [v.patch_size, v.patch_size], strides: [v.patch_size, v.patch_size] }, { name: `${e}/Conv` });
  return g.op('Transpose', [g.op('Reshape', [conv, g.constInt64([0, d, -1])])], { perm: [0, 2, 1] }, { name: `${e}/Tokens` });
}

/** The vision MLP activations transformers' ACT2FN names, as ONNX ops. */
const ACTIVATIONS: Record<string, (g: Graph, x: string, name: string) => string> = {
  quick_gelu: (g, x, name) => g.op('Mul', [x, g.op('Sigmoid', [g.op('Mul', [x, g.constFloat(1.702)])])], {}, { name: `${name}/QuickGelu` }),
  gelu_pytorch_tanh: (g, x, name) => g.op('Gelu', [x], { approximate: 'tanh' }, { name: `${name}/GeluTanh` }),
  gelu: (g, x, name) => g.op('Gelu', [x], { approximate: 'none' }, { name: `${name}/Gelu` }),
};

export function checkActivation(v: VisionConfig): void {
  if (!ACTIVATIONS[v.hidden_act]) {
    throw new Error(`vision hidden_act "${v.hidden_act}" is not supported (${Object.keys(ACTIVATIONS).join(', ')})`);
  }
}

/** Encoder layer `prefix` (e.g. vision_tower.vision_model.encoder.layers.3) on x [B, tokens, d]. */
export function vitEncoderLayer(ctx: BuildContext, v: VisionConfig, x: string, prefix: string): string {
  const { g } = ctx;
  const d = v.hidden_size;
  const heads = v.num_attention_heads;
  const hd = d / heads;
  const p = prefix;
  const h = layerNorm(ctx, x, `${p}.layer_norm1`, d, v.layer_norm_eps);
  const q = toHeads(g, linear(ctx, h, `${p}.self_attn.q_proj`, d, d, { bias: true, quantizable: true }), heads, hd, `${p}/q`);
  const k = toHeads(g, linear(ctx, h, `${p}.self_attn.k_proj`, d, d, { bias: true, quantizable: true }), heads, hd, `${p}/k`);
  const val = toHeads(g, linear(ctx, h, `${p}.self_attn.v_proj`, d, d, { bias: true, quantizable: true }), heads, hd, `${p}/v`);
  const scaled = g.op('Mul', [q, g.constFloat(1 / Math.sqrt(hd))], {}, { name: `${p}/q/Scale` });
  const kT = g.op('Transpose', [k], { perm: [0, 1, 3, 2] }, { name: `${p}/k/TransposeT` });
  const probs = g.op('Softmax', [g.op('MatMul', [scaled, kT], {}, { name: `${p}/Scores` })], { axis: -1 }, { name: `${p}/Softmax` });
  const attn = fromHeads(g, g.op('MatMul', [probs, val], {}, { name: `${p}/Context` }), d, `${p}/attn`);
  const x1 = g.op('Add', [x, linear(ctx, attn, `${p}.self_attn.out_proj`, d, d, { bias: true, quantizable: true })], {}, { name: `${p}/Residual1` });
  const h2 = layerNorm(ctx, x1, `${p}.layer_norm2`, d, v.layer_norm_eps);
  const f1 = linear(ctx, h2, `${p}.mlp.fc1`, d, v.intermediate_size, { bias: true, quantizable: true });
  const f2 = linear(ctx, ACTIVATIONS[v.hidden_act](g, f1, p), `${p}.mlp.fc2`, v.intermediate_size, d, { bias: true, quantizable: true });
  return g.op('Add', [x1, f2], {}, { name: `${p}/Residual2` });
}

/** The weights of encoder layer `prefix`, [out, in] as PyTorch stores Linear weights. */
export function vitLayerShapes(out: WeightShapes, v: VisionConfig, prefix: string): void {
  const d = v.hidden_size;
  for (const n of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) linearShapes(out, `${prefix}.self_attn.${n}`, d, d, true);
  for (const n of ['layer_norm1', 'layer_norm2']) out.push([`${prefix}.${n}.weight`, [d]], [`${prefix}.${n}.bias`, [d]]);
  linearShapes(out, `${prefix}.mlp.fc1`, d, v.intermediate_size, true);
  linearShapes(out, `${prefix}.mlp.fc2`, v.intermediate_size, d, true);
}

/** Encoder layers 0…layers−1 on x: hidden_states[layers] when x is the embeddings. */
export function vitEncoder(ctx: BuildContext, v: VisionConfig, x: string, layers: number): string {
  for (let i = 0; i < layers; i++) x = vitEncoderLayer(ctx, v, x, `${VISION_PREFIX}.encoder.layers.${i}`);
  return x;
}

/** The weights of encoder layers 0…layers−1. */
export function vitEncoderShapes(out: WeightShapes, v: VisionConfig, layers: number): WeightShapes {
  for (let i = 0; i < layers; i++) vitLayerShapes(out, v, `${VISION_PREFIX}.encoder.layers.${i}`);
  return out;
}
