// Named LLaVA architectures (HF LlavaConfig values) that `llava build --preset` and the tests build from.
// The tiny ones take their vocabulary and special ids from the tokenizers generated in lib/model/tiny-tokenizer.ts,
// so a tiny model folder is self-consistent; the real-width ones use the published models' values.
import { CLIP_VIT_L_336 as CLIP_L_336, LlavaConfig, SIGLIP_SO400M_384, TextConfig, VisionConfig } from '../model/config';
import { visionTokenCount } from './vision';
import { llamaTinyTokenizer, qwen2TinyTokenizer, TinyTokenizer } from '../model/tiny-tokenizer';

/** Which tokenizer a model folder gets: a generated tiny one, or files copied from a checkpoint. */
export type TokenizerKind = 'tiny-llama' | 'tiny-qwen2' | 'checkpoint';

export interface Architecture {
  name: string;
  description: string;
  config: LlavaConfig;
  tokenizer: TokenizerKind;
}

export interface ArchitectureOverrides {
  /** Vision encoder layers (before feature-layer selection drops the unused tail). */
  visionLayers?: number;
  textLayers?: number;
  visionFeatureLayer?: number;
  visionFeatureSelectStrategy?: 'default' | 'full';
  projectorType?: 'linear' | 'mlp2x_gelu';
}

const TINY_VISION: VisionConfig = {
  ...CLIP_L_336,
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  image_size: 32,
  patch_size: 8,
};

/** A SigLIP tower at test widths: 30 px with patch 7 floors to 4×4 patches, as 384/14 does to 27×27. */
const TINY_SIGLIP: VisionConfig = {
  ...SIGLIP_SO400M_384,
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 3,
  num_attention_heads: 2,
  image_size: 30,
  patch_size: 7,
};

/** How a LLaVA recipe reads the tower: feature layer and select strategy. */
interface FeatureSelection {
  layer: number;
  strategy: 'default' | 'full';
}
/** LLaVA-1.5: the penultimate CLIP layer without its CLS token. */
const PENULTIMATE_WITHOUT_CLS: FeatureSelection = { layer: -2, strategy: 'default' };
/** llava-interleave / llava-onevision: the last SigLIP layer's output (before post_layernorm), all patches. */
const LAST_ALL_PATCHES: FeatureSelection = { layer: -1, strategy: 'full' };

function llavaConfig(vision: VisionConfig, text: TextConfig, ids: { image: number; pad: number }, features = PENULTIMATE_WITHOUT_CLS): LlavaConfig {
  const c: LlavaConfig = {
    model_type: 'llava',
    architectures: ['LlavaForConditionalGeneration'],
    image_token_index: ids.image,
    pad_token_id: ids.pad,
    vision_feature_layer: features.layer,
    vision_feature_select_strategy: features.strategy,
    projector_hidden_act: 'gelu',
    projector_type: 'mlp2x_gelu',
    multimodal_projector_bias: true,
    vision_config: { ...vision },
    text_config: { ...text },
  };
  c.image_seq_length = visionTokenCount(c);
  return c;
}

function tinyText(modelType: 'llama' | 'qwen2', tok: TinyTokenizer): TextConfig {
  return {
    model_type: modelType,
    vocab_size: tok.vocabSize,
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 16,
    max_position_embeddings: 512,
    rms_norm_eps: 1e-6,
    rope_theta: modelType === 'qwen2' ? 1000000 : 10000,
    hidden_act: 'silu',
    tie_word_embeddings: modelType === 'qwen2',
    attention_bias: modelType === 'qwen2',
    ...(tok.bosTokenId !== null ? { bos_token_id: tok.bosTokenId } : {}),
    eos_token_id: tok.eosTokenId,
  };
}

const BUILDERS: Record<string, () => Architecture> = {
  tiny: () => {
    const tok = llamaTinyTokenizer();
    return {
      name: 'tiny',
      description: 'tiny CLIP (32 px, patch 8) + tiny LLaMA (hidden 64, 4/2 heads) for tests',
      config: llavaConfig(TINY_VISION, tinyText('llama', tok), { image: tok.imageTokenId, pad: tok.padTokenId }),
      tokenizer: 'tiny-llama',
    };
  },
  'tiny-qwen2': () => {
    const tok = qwen2TinyTokenizer();
    return {
      name: 'tiny-qwen2',
      description: 'tiny CLIP + tiny Qwen2 (q/k/v biases, tied embeddings) for tests',
      config: llavaConfig(TINY_VISION, tinyText('qwen2', tok), { image: tok.imageTokenId, pad: tok.padTokenId }),
      tokenizer: 'tiny-qwen2',
    };
  },
  'tiny-siglip': () => {
    const tok = qwen2TinyTokenizer();
    return {
      name: 'tiny-siglip',
      description: 'tiny SigLIP (30 px, patch 7: 4×4 patches, last layer, all patches) + tiny Qwen2, the llava-interleave shape for tests',
      config: llavaConfig(TINY_SIGLIP, tinyText('qwen2', tok), { image: tok.imageTokenId, pad: tok.padTokenId }, LAST_ALL_PATCHES),
      tokenizer: 'tiny-qwen2',
    };
  },
  // llava-hf/llava-interleave-qwen-0.5b-hf config.json (blame 187fe5eb): SigLIP so400m/14-384 cut to 26 layers,
  // vision_feature_layer −1, 'full'; Qwen1.5-0.5B-Chat text (rms_norm_eps absent: Qwen2Config's 1e-6).
  'llava-interleave-0.5b': () => ({
    name: 'llava-interleave-0.5b',
    description:
      'llava-hf/llava-interleave-qwen-0.5b-hf widths: SigLIP so400m/14-384 (26 layers, 729 tokens) + Qwen1.5-0.5B (hidden 1024, 24 layers, vocab 152000)',
    config: llavaConfig(
      { ...SIGLIP_SO400M_384, num_hidden_layers: 26 },
      {
        model_type: 'qwen2',
        vocab_size: 152000,
        hidden_size: 1024,
        intermediate_size: 2816,
        num_hidden_layers: 24,
        num_attention_heads: 16,
        num_key_value_heads: 16,
        max_position_embeddings: 32768,
        rms_norm_eps: 1e-6,
        rope_theta: 1000000,
        hidden_act: 'silu',
        tie_word_embeddings: true,
        bos_token_id: 151643,
        eos_token_id: 151645,
      },
      { image: 151646, pad: 151643 },
      LAST_ALL_PATCHES,
    ),
    tokenizer: 'checkpoint',
  }),
  'llava-1.5-7b': () => ({
    name: 'llava-1.5-7b',
    description: 'llava-hf/llava-1.5-7b-hf widths: CLIP ViT-L/14-336 + LLaMA-7B (Vicuna), vocab 32064',
    config: llavaConfig(
      CLIP_L_336,
      {
        model_type: 'llama',
        vocab_size: 32064,
        hidden_size: 4096,
        intermediate_size: 11008,
        num_hidden_layers: 32,
        num_attention_heads: 32,
        num_key_value_heads: 32,
        head_dim: 128,
        max_position_embeddings: 4096,
        rms_norm_eps: 1e-5,
        rope_theta: 10000,
        hidden_act: 'silu',
        tie_word_embeddings: false,
        bos_token_id: 1,
        eos_token_id: 2,
      },
      { image: 32000, pad: 32001 },
    ),
    tokenizer: 'checkpoint',
  }),
  'llava-0.5b': () => ({
    name: 'llava-0.5b',
    description: 'CLIP ViT-L/14-336 + Qwen2-0.5B widths (hidden 896, 24 layers, 14/2 heads, vocab 151936)',
    config: llavaConfig(
      CLIP_L_336,
      {
        model_type: 'qwen2',
        vocab_size: 151936,
        hidden_size: 896,
        intermediate_size: 4864,
        num_hidden_layers: 24,
        num_attention_heads: 14,
        num_key_value_heads: 2,
        head_dim: 64,
        max_position_embeddings: 32768,
        rms_norm_eps: 1e-6,
        rope_theta: 1000000,
        hidden_act: 'silu',
        tie_word_embeddings: true,
        attention_bias: true,
        eos_token_id: 151645,
      },
      { image: 151646, pad: 151643 },
    ),
    tokenizer: 'checkpoint',
  }),
};

export const ARCHITECTURE_NAMES = Object.keys(BUILDERS);

/**
 * A real-width preset with random weights has no checkpoint tokenizer: give it the tiny tokenizer of its family and
 * point the config's special ids at that tokenizer's (all within the preset's vocabulary), so the folder is consistent.
 */
export function withTinyTokenizer(arch: Architecture): Architecture {
  if (arch.tokenizer !== 'checkpoint') return arch;
  const qwen = arch.config.text_config.model_type === 'qwen2';
  const tok = qwen ? qwen2TinyTokenizer() : llamaTinyTokenizer();
  const c = arch.config;
  if (tok.vocabSize > c.text_config.vocab_size)
    throw new Error(`the tiny tokenizer (${tok.vocabSize} ids) does not fit vocab_size ${c.text_config.vocab_size}`);
  c.image_token_index = tok.imageTokenId;
  c.pad_token_id = tok.padTokenId;
  if (tok.bosTokenId !== null) c.text_config.bos_token_id = tok.bosTokenId;
  c.text_config.eos_token_id = tok.eosTokenId;
  return { ...arch, tokenizer: qwen ? 'tiny-qwen2' : 'tiny-llama' };
}

/** The named architecture with optional overrides (layer counts, feature layer, projector). */
export function architecture(name: string, overrides: ArchitectureOverrides = {}): Architecture {
  const build = BUILDERS[name];
  if (!build) throw new Error(`unknown architecture "${name}"; one of: ${ARCHITECTURE_NAMES.join(', ')}`);
  const arch = build();
  const c = arch.config;
  for (const [key, value] of [
    ['visionLayers', overrides.visionLayers],
    ['textLayers', overrides.textLayers],
  ] as const) {
    if (value !== undefined && !(Number.isInteger(value) && value >= 1)) {
      throw new Error(`${key} must be a positive integer, got ${value}`);
    }
  }
  if (overrides.visionLayers !== undefined) c.vision_config.num_hidden_layers = overrides.visionLayers;
  if (overrides.textLayers !== undefined) c.text_config.num_hidden_layers = overrides.textLayers;
  if (overrides.visionFeatureLayer !== undefined) c.vision_feature_layer = overrides.visionFeatureLayer;
  if (overrides.visionFeatureSelectStrategy !== undefined) {
    c.vision_feature_select_strategy = overrides.visionFeatureSelectStrategy;
    c.image_seq_length = visionTokenCount(c);
  }
  if (overrides.projectorType !== undefined) {
    c.projector_type = overrides.projectorType;
    c.projector_hidden_act = overrides.projectorType === 'linear' ? 'linear' : 'gelu';
  }
  return arch;
}
