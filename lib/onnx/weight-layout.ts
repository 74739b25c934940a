// The weight names and shapes a LLaVA model of a given config has, in the llava-hf convention
// (Linear weights are [out, in], as PyTorch stores them). Used to generate random weights and to check checkpoints.
import { headDim, LlavaConfig, projectorType } from '../model/config';
import type { WeightSource, WeightTensor } from './weights';

export const VISION_PREFIX = 'vision_tower.vision_model';
export const PROJECTOR_PREFIX = 'multi_modal_projector';
export const TEXT_PREFIX = 'language_model.model';
export const LM_HEAD = 'language_model.lm_head.weight';

export type WeightShapes = Array<[name: string, shape: number[]]>;

function linear(out: WeightShapes, prefix: string, inF: number, outF: number, bias: boolean): void {
  out.push([`${prefix}.weight`, [outF, inF]]);
  if (bias) out.push([`${prefix}.bias`, [outF]]);
}

export function visionWeightShapes(c: LlavaConfig): WeightShapes {
  const v = c.vision_config;
  const d = v.hidden_size;
  const patches = (v.image_size / v.patch_size) ** 2;
  const out: WeightShapes = [
    [`${VISION_PREFIX}.embeddings.patch_embedding.weight`, [d, v.num_channels ?? 3, v.patch_size, v.patch_size]],
    [`${VISION_PREFIX}.embeddings.class_embedding`, [d]],
    [`${VISION_PREFIX}.embeddings.position_embedding.weight`, [patches + 1, d]],
    [`${VISION_PREFIX}.pre_layrnorm.weight`, [d]],
    [`${VISION_PREFIX}.pre_layrnorm.bias`, [d]],
  ];
  for (let i = 0; i < v.num_hidden_layers; i++) {
    const p = `${VISION_PREFIX}.encoder.layers.${i}`;
    for (const n of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) linear(out, `${p}.self_attn.${n}`, d, d, true);
    for (const n of ['layer_norm1', 'layer_norm2']) out.push([`${p}.${n}.weight`, [d]], [`${p}.${n}.bias`, [d]]);
    linear(out, `${p}.mlp.fc1`, d, v.intermediate_size, true);
    linear(out, `${p}.mlp.fc2`, v.intermediate_size, d, true);
  }
  return out;
}

export function projectorWeightShapes(c: LlavaConfig): WeightShapes {
  const out: WeightShapes = [];
  const bias = c.multimodal_projector_bias ?? true;
  const h = c.text_config.hidden_size;
  linear(out, `${PROJECTOR_PREFIX}.linear_1`, c.vision_config.hidden_size, h, bias);
  if (projectorType(c) === 'mlp2x_gelu') linear(out, `${PROJECTOR_PREFIX}.linear_2`, h, h, bias);
  return out;
}

/** Whether q/k/v projections carry biases (Qwen2 always, LLaMA when attention_bias). */
export function hasQkvBias(c: LlavaConfig): boolean {
  return c.text_config.attention_bias ?? c.text_config.model_type === 'qwen2';
}

export function textWeightShapes(c: LlavaConfig): WeightShapes {
  const t = c.text_config;
  const h = t.hidden_size;
  const hd = headDim(t);
  const qkvBias = hasQkvBias(c);
  const out: WeightShapes = [[`${TEXT_PREFIX}.embed_tokens.weight`, [t.vocab_size, h]]];
  for (let i = 0; i < t.num_hidden_layers; i++) {
    const p = `${TEXT_PREFIX}.layers.${i}`;
    out.push([`${p}.input_layernorm.weight`, [h]], [`${p}.post_attention_layernorm.weight`, [h]]);
    linear(out, `${p}.self_attn.q_proj`, h, t.num_attention_heads * hd, qkvBias);
    linear(out, `${p}.self_attn.k_proj`, h, t.num_key_value_heads * hd, qkvBias);
    linear(out, `${p}.self_attn.v_proj`, h, t.num_key_value_heads * hd, qkvBias);
    linear(out, `${p}.self_attn.o_proj`, t.num_attention_heads * hd, h, false);
    linear(out, `${p}.mlp.gate_proj`, h, t.intermediate_size, false);
    linear(out, `${p}.mlp.up_proj`, h, t.intermediate_size, false);
    linear(out, `${p}.mlp.down_proj`, t.intermediate_size, h, false);
  }
  out.push([`${TEXT_PREFIX}.norm.weight`, [h]]);
  if (!t.tie_word_embeddings) out.push([LM_HEAD, [t.vocab_size, h]]);
  return out;
}

export function llavaWeightShapes(c: LlavaConfig): WeightShapes {
  return [...visionWeightShapes(c), ...projectorWeightShapes(c), ...textWeightShapes(c)];
}

/** The named weight, checked against the expected shape; a clear error when missing or mis-shaped. */
export function requireWeight(src: WeightSource, name: string, shape: number[]): WeightTensor {
  const w = src.get(name);
  if (!w) throw new Error(`weights are missing ${name}`);
  if (w.shape.length !== shape.length || w.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`weight ${name} has shape [${w.shape.join(', ')}], expected [${shape.join(', ')}]`);
  }
  return w;
}

/** The lm_head matrix [vocab, hidden]: its own weight, or the input embeddings when tied. */
export function lmHeadName(c: LlavaConfig): string {
  return c.text_config.tie_word_embeddings ? `${TEXT_PREFIX}.embed_tokens.weight` : LM_HEAD;
}
