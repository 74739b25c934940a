// Float64 reference of the LLaVA vision side: CLIP or SigLIP ViT hidden_states[vision_feature_layer] (first token
// dropped for 'default') and the multimodal projector, from a WeightSource and HF config, independent of the ONNX builder.
import { LlavaConfig, projectorType } from '../../../lib/model/config';
import type { WeightSource } from '../../../lib/onnx/weights';
import { gelu, geluTanh, layerNorm, linear, quickGelu, RefTensor, softmaxRow, weight } from './math';

const V = 'vision_tower.vision_model';

function attention(x: Float64Array, tokens: number, d: number, heads: number, src: WeightSource, p: string): Float64Array {
  const proj = (n: string, input: Float64Array) => linear(input, tokens, d, weight(src, `${p}.${n}.weight`), d, weight(src, `${p}.${n}.bias`));
  const q = proj('q_proj', x);
  const k = proj('k_proj', x);
  const v = proj('v_proj', x);
  const hd = d / heads;
  const out = new Float64Array(tokens * d);
  const scores = new Float64Array(tokens);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < tokens; i++) {
      for (let j = 0; j < tokens; j++) {
        let s = 0;
        for (let e = 0; e < hd; e++) s += q[i * d + h * hd + e] * k[j * d + h * hd + e];
        scores[j] = s / Math.sqrt(hd);
      }
      softmaxRow(scores);
      for (let e = 0; e < hd; e++) {
        let s = 0;
        for (let j = 0; j < tokens; j++) s += scores[j] * v[j * d + h * hd + e];
        out[i * d + h * hd + e] = s;
      }
    }
  }
  return proj('out_proj', out);
}

const ACTIVATIONS: Record<string, (x: number) => number> = { quick_gelu: quickGelu, gelu_pytorch_tanh: geluTanh, gelu };

/** Patch p's conv output (row-major grid of `grid` per side), plus `bias` when given. */
function patchEmbedding(
  conv: Float64Array,
  bias: Float64Array | null,
  pixels: ArrayLike<number>,
  b: number,
  p: number,
  o: number,
  ch: number,
  S: number,
  P: number,
  grid: number,
): number {
  const py = Math.floor(p / grid);
  const px = p % grid;
  let s = bias ? bias[o] : 0;
  for (let ci = 0; ci < ch; ci++)
    for (let ky = 0; ky < P; ky++)
      for (let kx = 0; kx < P; kx++) {
        s += conv[((o * ch + ci) * P + ky) * P + kx] * pixels[((b * ch + ci) * S + py * P + ky) * S + px * P + kx];
      }
  return s;
}

/**
 * Selected vision features [batch, tokens, vision_hidden] for pixels [batch, C, S, S]: hidden_states[vision_feature_layer]
 * of a CLIP tower (class token, bias-free conv, pre_layrnorm) or a SigLIP tower (patches only, conv bias, no pre-norm;
 * S / P floored), then 'default' drops the first token.
 */
export function referenceVision(src: WeightSource, c: LlavaConfig, pixels: ArrayLike<number>, batch: number): RefTensor {
  const vc = c.vision_config;
  const siglip = vc.model_type === 'siglip_vision_model';
  const d = vc.hidden_size;
  const ch = vc.num_channels ?? 3;
  const S = vc.image_size;
  const P = vc.patch_size;
  const grid = Math.floor(S / P);
  const cls = siglip ? 0 : 1;
  const tokens = grid * grid + cls;
  const n = vc.num_hidden_layers;
  const layers = c.vision_feature_layer < 0 ? n + 1 + c.vision_feature_layer : c.vision_feature_layer;
  const act = ACTIVATIONS[vc.hidden_act];
  const conv = weight(src, `${V}.embeddings.patch_embedding.weight`);
  const convBias = siglip ? weight(src, `${V}.embeddings.patch_embedding.bias`) : null;
  const classEmbedding = siglip ? null : weight(src, `${V}.embeddings.class_embedding`);
  const pos = weight(src, `${V}.embeddings.position_embedding.weight`);
  const keep = c.vision_feature_select_strategy === 'default' ? tokens - 1 : tokens;
  const out = new Float64Array(batch * keep * d);
  for (let b = 0; b < batch; b++) {
    let x: Float64Array = new Float64Array(tokens * d);
    for (let t = 0; t < tokens; t++) {
      for (let o = 0; o < d; o++) {
        const e = classEmbedding && t === 0 ? classEmbedding[o] : patchEmbedding(conv, convBias, pixels, b, t - cls, o, ch, S, P, grid);
        x[t * d + o] = e + pos[t * d + o];
      }
    }
    const ln = (input: Float64Array, p: string) => layerNorm(input, tokens, d, weight(src, `${p}.weight`), weight(src, `${p}.bias`), vc.layer_norm_eps);
    if (!siglip) x = ln(x, `${V}.pre_layrnorm`);
    for (let l = 0; l < layers; l++) {
      const p = `${V}.encoder.layers.${l}`;
      const a = attention(ln(x, `${p}.layer_norm1`), tokens, d, vc.num_attention_heads, src, `${p}.self_attn`);
      x = x.map((v, i) => v + a[i]);
      const f = vc.intermediate_size;
      const h = linear(ln(x, `${p}.layer_norm2`), tokens, d, weight(src, `${p}.mlp.fc1.weight`), f, weight(src, `${p}.mlp.fc1.bias`)).map(act);
      const m = linear(h, tokens, f, weight(src, `${p}.mlp.fc2.weight`), d, weight(src, `${p}.mlp.fc2.bias`));
      x = x.map((v, i) => v + m[i]);
    }
    out.set(x.subarray((tokens - keep) * d), b * keep * d);
  }
  return { data: out, dims: [batch, keep, d] };
}

/** Projector: [batch, tokens, vision_hidden] → [batch, tokens, text_hidden]. */
export function referenceProjector(src: WeightSource, c: LlavaConfig, features: RefTensor): RefTensor {
  const [batch, tokens, dv] = features.dims;
  const h = c.text_config.hidden_size;
  const rows = batch * tokens;
  const bias = c.multimodal_projector_bias ?? true;
  const lin = (x: Float64Array, n: string, inF: number) =>
    linear(x, rows, inF, weight(src, `multi_modal_projector.${n}.weight`), h, bias ? weight(src, `multi_modal_projector.${n}.bias`) : undefined);
  let y = lin(features.data, 'linear_1', dv);
  if (projectorType(c) === 'mlp2x_gelu') y = lin(y.map(gelu), 'linear_2', h);
  return { data: y, dims: [batch, tokens, h] };
}
