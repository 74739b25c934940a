// The CLIP ViT vision tower as used by LLaVA: bias-free conv patch embedding, class embedding, position
// embeddings, pre_layrnorm, pre-LN encoder layers (quick_gelu MLP). It returns hidden_states[vision_feature_layer]
// (HF indexing: 0 = pre_layrnorm output, i = output of layer i; −2 = output of layer N−1). Layers after the selected
// one are not built, and post_layernorm is never applied. Strategy 'default' drops the CLS token.
import type { LlavaConfig } from '../model/config';
import { BuildContext, fromHeads, layerNorm, linear, toHeads, weightInitializer } from './blocks';
import { Graph } from './graph';
import { addProjector } from './projector';
import { VISION_PREFIX } from './weight-layout';
import type { WeightSource } from './weights';

/** How many encoder layers run to produce the selected hidden state. */
export function visionLayersUsed(c: LlavaConfig): number {
  const n = c.vision_config.num_hidden_layers;
  const l = c.vision_feature_layer;
  const index = l < 0 ? n + 1 + l : l;
  if (!Number.isInteger(l) || index < 0 || index > n) {
    throw new Error(`vision_feature_layer ${l} is out of range for a ${n}-layer vision tower (−${n + 1}…${n})`);
  }
  return index;
}

/** Number of feature tokens per image after the select strategy. */
export function visionTokenCount(c: LlavaConfig): number {
  const patches = (c.vision_config.image_size / c.vision_config.patch_size) ** 2;
  return c.vision_feature_select_strategy === 'full' ? patches + 1 : patches;
}

function encoderLayer(ctx: BuildContext, c: LlavaConfig, x: string, i: number): string {
  const { g } = ctx;
  const v = c.vision_config;
  const d = v.hidden_size;
  const heads = v.num_attention_heads;
  const hd = d / heads;
  const p = `${VISION_PREFIX}.encoder.layers.${i}`;
  const h = layerNorm(ctx, x, `${p}.layer_norm1`, d, v.layer_norm_eps);
  const q = toHeads(g, linear(ctx, h, `${p}.self_attn.q_proj`, d, d, { bias: true }), heads, hd, `${p}/q`);
  const k = toHeads(g, linear(ctx, h, `${p}.self_attn.k_proj`, d, d, { bias: true }), heads, hd, `${p}/k`);
  const val = toHeads(g, linear(ctx, h, `${p}.self_attn.v_proj`, d, d, { bias: true }), heads, hd, `${p}/v`);
  const scaled = g.op('Mul', [q, g.constFloat(1 / Math.sqrt(hd))], {}, { name: `${p}/q/Scale` });
  const kT = g.op('Transpose', [k], { perm: [0, 1, 3, 2] }, { name: `${p}/k/TransposeT` });
  const probs = g.op('Softmax', [g.op('MatMul', [scaled, kT], {}, { name: `${p}/Scores` })], { axis: -1 }, { name: `${p}/Softmax` });
  const attn = fromHeads(g, g.op('MatMul', [probs, val], {}, { name: `${p}/Context` }), d, `${p}/attn`);
  const x1 = g.op('Add', [x, linear(ctx, attn, `${p}.self_attn.out_proj`, d, d, { bias: true })], {}, { name: `${p}/Residual1` });
  const h2 = layerNorm(ctx, x1, `${p}.layer_norm2`, d, v.layer_norm_eps);
  const f1 = linear(ctx, h2, `${p}.mlp.fc1`, d, v.intermediate_size, { bias: true });
  if (v.hidden_act !== 'quick_gelu') throw new Error(`vision hidden_act "${v.hidden_act}" is not supported (quick_gelu only)`);
  const act = g.op('Mul', [f1, g.op('Sigmoid', [g.op('Mul', [f1, g.constFloat(1.702)])], {}, { name: `${p}/QuickGelu` })]);
  const f2 = linear(ctx, act, `${p}.mlp.fc2`, v.intermediate_size, d, { bias: true });
  return g.op('Add', [x1, f2], {}, { name: `${p}/Residual2` });
}

/** Fails for a vision tower this builder cannot make. */
export function checkVisionConfig(v: LlavaConfig['vision_config']): void {
  if (v.model_type !== 'clip_vision_model') {
    throw new Error(`vision tower "${v.model_type}" is not supported by the builder: only CLIP (clip_vision_model) is`);
  }
  if (v.image_size % v.patch_size !== 0) throw new Error(`image_size ${v.image_size} is not a multiple of patch_size ${v.patch_size}`);
}

/** Adds the vision tower on `pixelValues` [B, C, S, S]; returns the selected features [B, tokens, vision_hidden]. */
export function addVisionTower(ctx: BuildContext, c: LlavaConfig, pixelValues: string): string {
  const { g } = ctx;
  const v = c.vision_config;
  const d = v.hidden_size;
  const ch = v.num_channels ?? 3;
  checkVisionConfig(v);
  if (d % v.num_attention_heads !== 0) throw new Error(`vision hidden_size ${d} is not divisible by ${v.num_attention_heads} heads`);
  if (!['default', 'full'].includes(c.vision_feature_select_strategy)) {
    throw new Error(`vision_feature_select_strategy "${c.vision_feature_select_strategy}" must be "default" or "full"`);
  }
  const layers = visionLayersUsed(c);
  const patches = (v.image_size / v.patch_size) ** 2;
  const e = `${VISION_PREFIX}.embeddings`;

  const conv = g.op('Conv', [pixelValues, weightInitializer(ctx, `${e}.patch_embedding.weight`, [d, ch, v.patch_size, v.patch_size])],
    { kernel_shape: [v.patch_size, v.patch_size], strides: [v.patch_size, v.patch_size] }, { name: `${e}/PatchConv` });
  const flat = g.op('Reshape', [conv, g.constInt64([0, d, -1])]);
  const patchTokens = g.op('Transpose', [flat], { perm: [0, 2, 1] });
  const batch = g.op('Slice', [g.op('Shape', [pixelValues]), g.constInt64([0]), g.constInt64([1])]);
  const clsShape = g.op('Concat', [batch, g.constInt64([1, d])], { axis: 0 });
  const cls = g.op('Expand', [weightInitializer(ctx, `${e}.class_embedding`, [d]), clsShape], {}, { name: `${e}/ClassToken` });
  const tokens = g.op('Concat', [cls, patchTokens], { axis: 1 });
  let x = g.op('Add', [tokens, weightInitializer(ctx, `${e}.position_embedding.weight`, [patches + 1, d])], {}, { name: `${e}/AddPositions` });
  x = layerNorm(ctx, x, `${VISION_PREFIX}.pre_layrnorm`, d, v.layer_norm_eps);
  for (let i = 0; i < layers; i++) x = encoderLayer(ctx, c, x, i);
  if (c.vision_feature_select_strategy === 'full') return x;
  return g.op('Slice', [x, g.constInt64([1]), g.constInt64([patches + 1]), g.constInt64([1])], {}, { name: 'DropClassToken' });
}

export interface VisionEncoderOptions {
  /** transformers-js layout: the projector runs inside, so image_features are text-width embeddings. */
  withProjector: boolean;
}

/** vision_encoder: pixel_values [B, C, S, S] → image_features [B, tokens, width] (width: text hidden with projector, else vision hidden). */
export function buildVisionEncoderGraph(weights: WeightSource, c: LlavaConfig, opts: VisionEncoderOptions): Graph {
  const g = new Graph('vision_encoder');
  const v = c.vision_config;
  const ctx: BuildContext = { g, weights };
  const pixels = g.input('pixel_values', 'float32', ['batch_size', v.num_channels ?? 3, v.image_size, v.image_size]);
  let features = addVisionTower(ctx, c, pixels);
  if (opts.withProjector) features = addProjector(ctx, c, features);
  const width = opts.withProjector ? c.text_config.hidden_size : v.hidden_size;
  g.output(features, 'float32', ['batch_size', visionTokenCount(c), width], 'image_features');
  return g;
}
