// Typed views of a model folder's config.json (Hugging Face LlavaConfig and its vision/text configs).
// Only the fields this package reads; unknown fields are kept by the JSON but not typed.

/** The key under which config.json records what this package built or chose (preset, variant, layout…). */
export const RECORD_KEY = 'node-red-contrib-llava';

export interface VisionConfig {
  model_type: string; // 'clip_vision_model' | 'siglip_vision_model'
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  image_size: number;
  patch_size: number;
  num_channels?: number;
  hidden_act: string; // 'quick_gelu' (CLIP), 'gelu_pytorch_tanh' (SigLIP)
  layer_norm_eps: number;
  /** SigLIP's attention-pooling head; LLaVA configs set false (the head is not used). */
  vision_use_head?: boolean;
}

/** openai/clip-vit-large-patch14-336, the vision tower of LLaVA-1.5 (and HF LlavaConfig's default). */
export const CLIP_VIT_L_336: Readonly<VisionConfig> = Object.freeze({
  model_type: 'clip_vision_model',
  hidden_size: 1024,
  intermediate_size: 4096,
  num_hidden_layers: 24,
  num_attention_heads: 16,
  image_size: 336,
  patch_size: 14,
  num_channels: 3,
  hidden_act: 'quick_gelu',
  layer_norm_eps: 1e-5,
});

/** CLIP mean/std on the 0–1 scale; mmpretrain's ×255 values on 0–255 pixels are the same normalisation. */
export const CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

/** google/siglip-so400m-patch14-384's vision tower, the one the SigLIP LLaVAs (interleave, onevision, nanoLLaVA) use. */
export const SIGLIP_SO400M_384: Readonly<VisionConfig> = Object.freeze({
  model_type: 'siglip_vision_model',
  hidden_size: 1152,
  intermediate_size: 4304,
  num_hidden_layers: 27,
  num_attention_heads: 16,
  image_size: 384,
  patch_size: 14,
  num_channels: 3,
  hidden_act: 'gelu_pytorch_tanh',
  layer_norm_eps: 1e-6,
});

export interface TextConfig {
  model_type: string; // 'llama' | 'mistral' | 'qwen2'
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim?: number;
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;
  hidden_act: string; // 'silu'
  tie_word_embeddings?: boolean;
  bos_token_id?: number;
  eos_token_id?: number | number[];
  attention_bias?: boolean;
  /** Mistral's sliding attention window (null: none); it matters only past that many positions. */
  sliding_window?: number | null;
  /** Qwen2: whether sliding_window applies at all (false in every LLaVA-family Qwen2). */
  use_sliding_window?: boolean;
}

export interface LlavaConfig {
  model_type: string; // 'llava' | 'llava_onevision' | 'llava_qwen2' (lib/model/hf-config.ts)
  architectures?: string[];
  image_token_index: number;
  /** Which vision hidden state feeds the projector: -2 (HF/original LLaVA), -1 (mmpretrain's code). */
  vision_feature_layer: number;
  /** 'default' drops CLS, 'full' keeps it. */
  vision_feature_select_strategy: 'default' | 'full';
  /** 'gelu' → mlp2x_gelu (v1.5), 'linear' → a single Linear (v1). */
  projector_hidden_act: string;
  projector_type?: 'linear' | 'mlp2x_gelu';
  multimodal_projector_bias?: boolean;
  vision_config: VisionConfig;
  text_config: TextConfig;
  pad_token_id?: number;
  image_seq_length?: number;
  /** Settings this package records (preset, layout, decoder variant). */
  [RECORD_KEY]?: Record<string, unknown>;
  'transformers.js_config'?: Record<string, unknown>;
}

export function headDim(t: TextConfig): number {
  return t.head_dim ?? t.hidden_size / t.num_attention_heads;
}

export function projectorType(c: LlavaConfig): 'linear' | 'mlp2x_gelu' {
  return c.projector_type ?? (c.projector_hidden_act === 'linear' ? 'linear' : 'mlp2x_gelu');
}
