// Hugging Face checkpoint folders of the public LLaVA-family sources `llava build --from` converts, written at test
// time at tiny widths: each config.json copies the real one field for field (source cited; only widths, depths and
// token ids are scaled down to the tiny tokenizers), and the safetensors use the source's own tensor names.
// `expected` spells out the LlavaConfig transformers (or the source's own code) builds from that config.json: the
// float64 reference runs on it, independently of the converter's config completion.
import * as fs from 'fs';
import * as path from 'path';
import type { LlavaConfig } from '../../../lib/model/config';
import { llamaTinyTokenizer, qwen2TinyTokenizer, TinyTokenizer, writeTinyTokenizer } from '../../../lib/model/tiny-tokenizer';
import { randomWeights } from '../../../lib/onnx/random-weights';
import type { WeightSource } from '../../../lib/onnx/weights';
import type { TensorToWrite } from './encode';
import { writeSafetensors, writeShardedSafetensors } from './safetensors';

export interface LlavaSource {
  name: string;
  /** Where the config.json (and the tensor-name layout) comes from. */
  source: string;
  config: Record<string, unknown>;
  expected: LlavaConfig;
  tokenizer: TinyTokenizer;
  /** llava-hf name (as randomWeights and the reference use) → the name the source's checkpoint stores. */
  rename: (name: string) => string;
  /** llava-hf names the source's checkpoint does not store (tied lm_head, a vision layer its code deletes). */
  omit?: (name: string) => boolean;
  /** Tensors the checkpoint stores that a LLaVA forward never reads, as [name, shape]; written as NaN. */
  unused?: Array<[string, number[]]>;
  /** llava-hf names stored but never read (a tower's last layer when the feature layer is −2), written as NaN. */
  poisoned?: (name: string) => boolean;
  shards: number;
}

const TINY_CLIP = {
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  image_size: 32,
  patch_size: 8,
};
const TINY_SIGLIP = {
  hidden_size: 32,
  intermediate_size: 48,
  num_attention_heads: 2,
  image_size: 30,
  patch_size: 7,
};
const CLIP_EXPECTED = { ...TINY_CLIP, model_type: 'clip_vision_model', num_channels: 3, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5 };
const SIGLIP_EXPECTED = { ...TINY_SIGLIP, model_type: 'siglip_vision_model', num_channels: 3, hidden_act: 'gelu_pytorch_tanh', layer_norm_eps: 1e-6 };

/** transformers ≥ 4.52 names (model.vision_tower.*, model.multi_modal_projector.*, model.language_model.*, lm_head.*). */
function newLlavaLayout(name: string): string {
  if (name.startsWith('language_model.model.')) return `model.language_model.${name.slice('language_model.model.'.length)}`;
  if (name.startsWith('language_model.lm_head.')) return name.slice('language_model.'.length);
  return `model.${name}`;
}

/** nanoLLaVA / Bunny / LLaVA codebase names (modeling_llava_qwen2.py; see mlx-vlm nanoLlava sanitize). */
function bunnyLayout(name: string): string {
  if (name.startsWith('vision_tower.')) return `model.vision_tower.${name}`;
  if (name.startsWith('multi_modal_projector.linear_1.')) return `model.mm_projector.0.${name.split('.').pop()}`;
  if (name.startsWith('multi_modal_projector.linear_2.')) return `model.mm_projector.2.${name.split('.').pop()}`;
  if (name.startsWith('language_model.model.')) return `model.${name.slice('language_model.model.'.length)}`;
  if (name.startsWith('language_model.lm_head.')) return name.slice('language_model.'.length);
  throw new Error(`no nanoLLaVA name for ${name}`);
}

const V = 'vision_tower.vision_model';

/** llava-hf/llava-interleave-qwen-0.5b-hf config.json (blame 187fe5eb): SigLIP (26 of so400m's 27 layers), −1, full. */
function interleave(): LlavaSource {
  const tok = qwen2TinyTokenizer();
  const text = {
    _name_or_path: 'Qwen/Qwen1.5-0.5B-Chat',
    architectures: ['Qwen2ForCausalLM'],
    bos_token_id: tok.padTokenId,
    eos_token_id: tok.eosTokenId,
    hidden_size: 64,
    intermediate_size: 96,
    max_position_embeddings: 32768,
    max_window_layers: 21,
    model_type: 'qwen2',
    num_attention_heads: 4,
    num_hidden_layers: 2,
    num_key_value_heads: 4,
    rope_theta: 1000000.0,
    sliding_window: 32768,
    tie_word_embeddings: true,
    torch_dtype: 'bfloat16',
    use_sliding_window: false,
    vocab_size: tok.vocabSize,
  };
  return {
    name: 'llava-interleave-qwen-0.5b-hf',
    source: 'https://huggingface.co/llava-hf/llava-interleave-qwen-0.5b-hf/blame/187fe5ebba14c29a67f99fe56f3351b058af3e10/config.json',
    config: {
      architectures: ['LlavaForConditionalGeneration'],
      ignore_index: -100,
      image_token_index: tok.imageTokenId,
      model_type: 'llava',
      projector_hidden_act: 'gelu',
      text_config: text,
      tie_word_embeddings: true,
      torch_dtype: 'float16',
      transformers_version: '4.41.0.dev0',
      vision_config: { ...TINY_SIGLIP, model_type: 'siglip_vision_model', num_hidden_layers: 2, vision_use_head: false },
      vision_feature_layer: -1,
      vision_feature_select_strategy: 'full',
    },
    expected: {
      model_type: 'llava',
      image_token_index: tok.imageTokenId,
      vision_feature_layer: -1,
      vision_feature_select_strategy: 'full',
      projector_hidden_act: 'gelu',
      vision_config: { ...SIGLIP_EXPECTED, num_hidden_layers: 2 },
      text_config: { ...text, rms_norm_eps: 1e-6, hidden_act: 'silu' },
    },
    tokenizer: tok,
    rename: (n) => n,
    // Tied: safetensors drops the shared lm_head. post_layernorm is stored; hidden_states[-1] comes before it.
    omit: (n) => n === 'language_model.lm_head.weight',
    unused: [
      [`${V}.post_layernorm.weight`, [32]],
      [`${V}.post_layernorm.bias`, [32]],
    ],
    shards: 1,
  };
}

/** llava-hf/bakLlava-v1-hf config.json (blame main): CLIP-L/336 −2 default, Mistral-7B text (sliding_window 4096). */
function bakLlava(): LlavaSource {
  const tok = llamaTinyTokenizer();
  // The real text_config omits hidden/layers/heads (MistralConfig's 4096/32/32); at tiny widths they are given.
  // sliding_window is scaled with the context: 12 keys, shorter than the 16 image tokens + prompt, so it matters.
  const text = {
    _name_or_path: 'mistralai/Mistral-7B-v0.1',
    architectures: ['MistralForCausalLM'],
    intermediate_size: 96,
    max_position_embeddings: 32768,
    model_type: 'mistral',
    num_key_value_heads: 2,
    rms_norm_eps: 1e-5,
    rope_theta: 10000.0,
    sliding_window: 12,
    torch_dtype: 'bfloat16',
    vocab_size: tok.vocabSize,
    hidden_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
  };
  return {
    name: 'bakLlava-v1-hf',
    source: 'https://huggingface.co/llava-hf/bakLlava-v1-hf/blame/main/config.json',
    config: {
      architectures: ['LlavaForConditionalGeneration'],
      ignore_index: -100,
      image_token_index: tok.imageTokenId,
      model_type: 'llava',
      pad_token_id: tok.padTokenId,
      projector_hidden_act: 'gelu',
      text_config: text,
      torch_dtype: 'float16',
      transformers_version: '4.36.0.dev0',
      vision_config: { ...TINY_CLIP, model_type: 'clip_vision_model', projection_dim: 768, vocab_size: 32000 },
      vision_feature_layer: -2,
      vision_feature_select_strategy: 'default',
      vocab_size: tok.vocabSize,
    },
    expected: {
      model_type: 'llava',
      image_token_index: tok.imageTokenId,
      pad_token_id: tok.padTokenId,
      vision_feature_layer: -2,
      vision_feature_select_strategy: 'default',
      projector_hidden_act: 'gelu',
      vision_config: CLIP_EXPECTED,
      text_config: { ...text, hidden_act: 'silu', tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2 },
    },
    tokenizer: tok,
    rename: (n) => n,
    unused: [
      [`${V}.post_layernorm.weight`, [32]],
      [`${V}.post_layernorm.bias`, [32]],
    ],
    shards: 3,
  };
}

/**
 * llava-hf/llava-1.5-7b-hf (copy: https://huggingface.co/mohitsha/llava-1.5-7b-hf/blob/main/config.json), text_config with
 * widths left to LlamaConfig; `resaved`: the same model saved by transformers 4.57 (image_seq_length,
 * multimodal_projector_bias, full text_config; https://huggingface.co/lbasile/llava_7b_skip6/blob/main/config.json) with the
 * ≥ 4.52 tensor names. llava-1.5-13b-hf has the same layout at 5120 wide / 40 layers.
 */
function llava15(resaved: boolean): LlavaSource {
  const tok = llamaTinyTokenizer();
  const text = {
    _name_or_path: 'lmsys/vicuna-7b-v1.5',
    architectures: ['LlamaForCausalLM'],
    max_position_embeddings: 4096,
    model_type: 'llama',
    rms_norm_eps: 1e-5,
    torch_dtype: 'float16',
    vocab_size: tok.vocabSize,
    hidden_size: 64,
    intermediate_size: 96,
    num_hidden_layers: 2,
    num_attention_heads: 4,
  };
  return {
    name: resaved ? 'llava-1.5-7b-hf (transformers 4.57 save)' : 'llava-1.5-7b-hf',
    source: resaved
      ? 'https://huggingface.co/lbasile/llava_7b_skip6/blob/main/config.json'
      : 'https://huggingface.co/mohitsha/llava-1.5-7b-hf/blob/main/config.json',
    config: {
      architectures: ['LlavaForConditionalGeneration'],
      ignore_index: -100,
      image_token_index: tok.imageTokenId,
      model_type: 'llava',
      pad_token_id: tok.padTokenId,
      projector_hidden_act: 'gelu',
      text_config: text,
      tie_word_embeddings: false,
      torch_dtype: 'float16',
      transformers_version: resaved ? '4.57.3' : '4.36.0.dev0',
      vision_config: { ...TINY_CLIP, model_type: 'clip_vision_model', projection_dim: 768, vocab_size: 32000 },
      vision_feature_layer: -2,
      vision_feature_select_strategy: 'default',
      vocab_size: tok.vocabSize,
      ...(resaved ? { image_seq_length: 16, multimodal_projector_bias: true } : {}),
    },
    expected: {
      model_type: 'llava',
      image_token_index: tok.imageTokenId,
      pad_token_id: tok.padTokenId,
      vision_feature_layer: -2,
      vision_feature_select_strategy: 'default',
      projector_hidden_act: 'gelu',
      vision_config: CLIP_EXPECTED,
      text_config: { ...text, num_key_value_heads: 4, rope_theta: 10000, hidden_act: 'silu', tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2 },
    },
    tokenizer: tok,
    rename: resaved ? newLlavaLayout : (n) => n,
    shards: 2,
  };
}

/**
 * nanoLLaVA: Xenova/nanoLLaVA's config.json (the flat llava_qwen2 config of qnguyen3/nanoLLaVA, commit 4da9593 diff,
 * with the text_config and vision_config Xenova added; https://huggingface.co/Xenova/nanoLLaVA/discussions/2/files) and
 * qnguyen3/nanoLLaVA's tensor names. Its SigLIP tower skips the last of the tower's layers (hidden_states[-2] in
 * transformers' indexing) and keeps all patches; the stored last layer and attention-pooling head are never read.
 */
function nanoLlava(): LlavaSource {
  const tok = qwen2TinyTokenizer();
  const text = {
    hidden_size: 64,
    intermediate_size: 96,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 4,
    vocab_size: tok.vocabSize,
    max_position_embeddings: 32768,
    rope_theta: 1000000.0,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: false,
    bos_token_id: tok.eosTokenId,
    eos_token_id: tok.eosTokenId,
    hidden_act: 'silu',
    use_sliding_window: false,
    sliding_window: 4096,
    max_window_layers: 21,
  };
  const vision = { ...TINY_SIGLIP, model_type: 'siglip_vision_model', num_hidden_layers: 3, hidden_act: 'gelu_pytorch_tanh', layer_norm_eps: 1e-6 };
  return {
    name: 'nanoLLaVA',
    source: 'https://huggingface.co/Xenova/nanoLLaVA/discussions/2/files (config), qnguyen3/nanoLLaVA modeling_llava_qwen2.py (names)',
    config: {
      architectures: ['LlavaQwen2ForCausalLM'],
      auto_map: { AutoConfig: 'configuration_llava_qwen2.LlavaQwen2Config', AutoModelForCausalLM: 'modeling_llava_qwen2.LlavaQwen2ForCausalLM' },
      model_type: 'llava_qwen2',
      mm_hidden_size: 32,
      mm_projector_type: 'mlp2x_gelu',
      mm_vision_tower: 'google/siglip-so400m-patch14-384',
      image_aspect_ratio: 'pad',
      num_image_tokens: 16,
      torch_dtype: 'bfloat16',
      use_cache: true,
      ...text,
      text_config: { ...text, model_type: 'qwen2', num_image_tokens: 16 },
      vision_config: { ...vision, num_image_tokens: 16 },
    },
    expected: {
      // No image_token_index: the tokenizer's <image> (the LLaVA codebase's −200 when it has none).
      model_type: 'llava_qwen2',
      image_token_index: tok.imageTokenId,
      vision_feature_layer: -2,
      vision_feature_select_strategy: 'full',
      projector_hidden_act: 'gelu',
      vision_config: { ...SIGLIP_EXPECTED, num_hidden_layers: 3 },
      text_config: { ...text, model_type: 'qwen2' },
    },
    tokenizer: tok,
    rename: bunnyLayout,
    poisoned: (n) => n.startsWith(`${V}.encoder.layers.2.`),
    unused: [
      [`${V}.post_layernorm.weight`, [32]],
      [`${V}.post_layernorm.bias`, [32]],
      [`${V}.head.probe`, [1, 1, 32]],
      [`${V}.head.attention.in_proj_weight`, [96, 32]],
      [`${V}.head.attention.in_proj_bias`, [96]],
    ],
    shards: 1,
  };
}

export const LLAVA_SOURCES: Array<() => LlavaSource> = [interleave, bakLlava, () => llava15(false), () => llava15(true), nanoLlava];

/** Writes the source's folder (config.json, safetensors, tokenizer); returns the weights under llava-hf names. */
export function writeLlavaSource(dir: string, src: LlavaSource, seed = 5): WeightSource {
  const weights = randomWeights(src.expected, seed);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(src.config, null, 2));
  const nan = (shape: number[]) => new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(NaN);
  const tensors: TensorToWrite[] = weights
    .names()
    .filter((n) => !src.omit?.(n))
    .map((n) => {
      const w = weights.get(n)!;
      return { name: src.rename(n), shape: w.shape, dtype: 'float32', data: src.poisoned?.(n) ? nan(w.shape) : w.read() };
    });
  for (const [name, shape] of src.unused ?? []) tensors.push({ name: src.rename(name), shape, dtype: 'float32', data: nan(shape) });
  if (src.shards === 1) writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  else {
    const per = Math.ceil(tensors.length / src.shards);
    writeShardedSafetensors(
      dir,
      Array.from({ length: src.shards }, (_, i) => tensors.slice(i * per, (i + 1) * per)),
    );
  }
  writeTinyTokenizer(dir, src.tokenizer);
  return weights;
}
