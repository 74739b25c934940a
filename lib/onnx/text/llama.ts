// The LLaMA-family text decoders the builder implements (one graph, lib/onnx/decoder.ts): per model_type, q/k/v
// biases and the attention window; and the weight names and shapes they share. (Their config class defaults are in
// lib/model/hf-config.ts, shared with the folder loader.)
//   llama
//   mistral: LLaMA with grouped KV heads and a sliding window; the graph masks keys sliding_window or more
//            positions back, as transformers does.
//   qwen2:   q/k/v biases; use_sliding_window is off in every LLaVA-family Qwen2 (and refused when on: its window
//            applies to some layers only).
import { headDim, LlavaConfig, TextConfig } from '../../model/config';
import { LM_HEAD, linearShapes, TEXT_PREFIX, WeightShapes } from '../weight-names';

export interface TextModel {
  modelType: string;
  /** Whether q/k/v projections carry biases when the config does not say (attention_bias). */
  qkvBias: boolean;
}

export const TEXT_MODELS: readonly TextModel[] = [
  { modelType: 'llama', qkvBias: false },
  { modelType: 'mistral', qkvBias: false },
  { modelType: 'qwen2', qkvBias: true },
];

export function textModel(t: TextConfig): TextModel {
  const model = TEXT_MODELS.find((m) => m.modelType === t.model_type);
  if (!model) throw new Error(`text model_type "${t.model_type}" is not supported (supported: ${TEXT_MODELS.map((m) => m.modelType).join(', ')})`);
  return model;
}

/**
 * Keys a query may attend to, counted back from itself (itself included), or null for no limit: Mistral's
 * sliding_window (transformers masks key j for query i when i − j ≥ sliding_window). A window at least as long as
 * the context changes nothing, so it is dropped then.
 */
export function attentionWindow(t: TextConfig): number | null {
  if (t.model_type !== 'mistral' || t.sliding_window === undefined || t.sliding_window === null) return null;
  return t.sliding_window >= t.max_position_embeddings ? null : t.sliding_window;
}

export function checkTextConfig(t: TextConfig): void {
  textModel(t);
  const hd = headDim(t);
  if (t.hidden_act !== 'silu') throw new Error(`text hidden_act "${t.hidden_act}" is not supported (silu only)`);
  if (!Number.isInteger(hd) || hd % 2 !== 0) throw new Error(`head_dim ${hd} must be an even integer`);
  if (t.num_attention_heads % t.num_key_value_heads !== 0) {
    throw new Error(`num_attention_heads ${t.num_attention_heads} is not a multiple of num_key_value_heads ${t.num_key_value_heads}`);
  }
  if (t.model_type === 'qwen2' && t.use_sliding_window) {
    throw new Error('qwen2 use_sliding_window is not supported (its window applies to layers after max_window_layers only)');
  }
  const window = attentionWindow(t);
  if (window !== null && !(Number.isInteger(window) && window >= 1)) throw new Error(`sliding_window ${window} must be a positive integer`);
}

/** Whether q/k/v projections carry biases (attention_bias, else the model type's default). */
export function hasQkvBias(c: LlavaConfig): boolean {
  return c.text_config.attention_bias ?? textModel(c.text_config).qkvBias;
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
    linearShapes(out, `${p}.self_attn.q_proj`, h, t.num_attention_heads * hd, qkvBias);
    linearShapes(out, `${p}.self_attn.k_proj`, h, t.num_key_value_heads * hd, qkvBias);
    linearShapes(out, `${p}.self_attn.v_proj`, h, t.num_key_value_heads * hd, qkvBias);
    linearShapes(out, `${p}.self_attn.o_proj`, t.num_attention_heads * hd, h, false);
    linearShapes(out, `${p}.mlp.gate_proj`, h, t.intermediate_size, false);
    linearShapes(out, `${p}.mlp.up_proj`, h, t.intermediate_size, false);
    linearShapes(out, `${p}.mlp.down_proj`, t.intermediate_size, h, false);
  }
  out.push([`${TEXT_PREFIX}.norm.weight`, [h]]);
  if (!t.tie_word_embeddings) out.push([LM_HEAD, [t.vocab_size, h]]);
  return out;
}

/** The lm_head matrix [vocab, hidden]: its own weight, or the input embeddings when tied. */
export function lmHeadName(c: LlavaConfig): string {
  return c.text_config.tie_word_embeddings ? `${TEXT_PREFIX}.embed_tokens.weight` : LM_HEAD;
}
