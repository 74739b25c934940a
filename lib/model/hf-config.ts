// A model folder's config.json as Hugging Face transformers reads it: every field the file leaves out gets the
// default of its config class, so the folder loader (lib/model/folder.ts) and the builder (lib/onnx/checkpoint/hf.ts)
// see the same complete LlavaConfig. The defaults are those of transformers' config classes, cited per table.
import { CLIP_VIT_L_336, LlavaConfig, SIGLIP_SO400M_384, TextConfig, VisionConfig } from './config';

/** The top-level model types a folder may have, with the text transformers.js and transformers give them. */
export const LLAVA_MODEL_TYPES = ['llava', 'llava_onevision', 'llava_qwen2'] as const;
export type LlavaModelType = (typeof LLAVA_MODEL_TYPES)[number];

/** Why the LLaVA-family types we do not run are refused (named in the error). */
const REFUSED_MODEL_TYPES: Record<string, string> = {
  llava_next: 'LLaVA-NeXT (llava_next) needs anyres tiling, image_newline and unpadding, which this package does not implement',
  llava_llama: 'this looks like an original haotian-liu LLaVA folder: use its llava-hf conversion instead',
  llava_mistral: 'this looks like an original haotian-liu LLaVA folder: use its llava-hf conversion instead',
};

type TextDefaults = Omit<TextConfig, 'num_key_value_heads'> & { num_key_value_heads?: number };

// Vision config classes. CLIPVisionConfig: src/transformers/models/clip/configuration_clip.py;
// SiglipVisionConfig: src/transformers/models/siglip/configuration_siglip.py (hidden 768, 12 layers, 12 heads,
// image 224, patch 16, gelu_pytorch_tanh, layer_norm_eps 1e-6).
const VISION_CLASS_DEFAULTS: Record<string, VisionConfig> = {
  clip_vision_model: {
    model_type: 'clip_vision_model',
    hidden_size: 768,
    intermediate_size: 3072,
    num_hidden_layers: 12,
    num_attention_heads: 12,
    image_size: 224,
    patch_size: 32,
    num_channels: 3,
    hidden_act: 'quick_gelu',
    layer_norm_eps: 1e-5,
  },
  siglip_vision_model: {
    model_type: 'siglip_vision_model',
    hidden_size: 768,
    intermediate_size: 3072,
    num_hidden_layers: 12,
    num_attention_heads: 12,
    image_size: 224,
    patch_size: 16,
    num_channels: 3,
    hidden_act: 'gelu_pytorch_tanh',
    layer_norm_eps: 1e-6,
  },
};

// Text config classes. LlamaConfig: src/transformers/models/llama/configuration_llama.py (num_key_value_heads None →
// num_attention_heads); MistralConfig: src/transformers/models/mistral/configuration_mistral.py (intermediate 14336,
// 8 KV heads, max_position_embeddings 4096*32, sliding_window 4096); Qwen2Config:
// src/transformers/models/qwen2/configuration_qwen2.py (num_key_value_heads 32, not the head count; sliding window
// off unless use_sliding_window). rope_theta 10000 is each class's default (transformers ≥ 5: rope_parameters).
const TEXT_CLASS_DEFAULTS: Record<string, TextDefaults> = {
  llama: {
    model_type: 'llama',
    vocab_size: 32000,
    hidden_size: 4096,
    intermediate_size: 11008,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    hidden_act: 'silu',
    tie_word_embeddings: false,
    bos_token_id: 1,
    eos_token_id: 2,
    attention_bias: false,
  },
  mistral: {
    model_type: 'mistral',
    vocab_size: 32000,
    hidden_size: 4096,
    intermediate_size: 14336,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: 8,
    max_position_embeddings: 4096 * 32,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    hidden_act: 'silu',
    tie_word_embeddings: false,
    bos_token_id: 1,
    eos_token_id: 2,
    sliding_window: 4096,
  },
  qwen2: {
    model_type: 'qwen2',
    vocab_size: 151936,
    hidden_size: 4096,
    intermediate_size: 22016,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: 32,
    max_position_embeddings: 32768,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    hidden_act: 'silu',
    tie_word_embeddings: false,
  },
};

/** The text fields nanoLLaVA's llava_qwen2 config keeps at top level (a Qwen2Config with mm_* fields added). */
const FLAT_TEXT_FIELDS = [
  'vocab_size',
  'hidden_size',
  'intermediate_size',
  'num_hidden_layers',
  'num_attention_heads',
  'num_key_value_heads',
  'head_dim',
  'max_position_embeddings',
  'rms_norm_eps',
  'rope_theta',
  'rope_parameters',
  'hidden_act',
  'tie_word_embeddings',
  'bos_token_id',
  'eos_token_id',
  'sliding_window',
  'use_sliding_window',
];

/** Published vision towers that original-codebase configs name by mm_vision_tower instead of a vision_config. */
const NAMED_TOWERS: Record<string, VisionConfig> = {
  // https://huggingface.co/google/siglip-so400m-patch14-384/blob/main/config.json (vision_config)
  'google/siglip-so400m-patch14-384': SIGLIP_SO400M_384,
  'openai/clip-vit-large-patch14-336': CLIP_VIT_L_336,
};

interface ClassDefaults {
  /** Top-level fields of the config class. */
  fields: Partial<LlavaConfig>;
  /** The vision_config the class builds when config.json has none, and the vision model_type it assumes. */
  vision: VisionConfig;
  visionType: string;
  textType: string;
}

// LlavaConfig: src/transformers/models/llava/configuration_llava.py (vision default: CLIP ViT-L/14-336; text: LlamaConfig()).
// LlavaOnevisionConfig: src/transformers/models/llava_onevision/configuration_llava_onevision.py (image token 151646,
// 'full' features of layer -1; vision default: a siglip_vision_model at CLIP-L/336 widths; text: Qwen2Config()).
// llava_qwen2 (nanoLLaVA, custom code on the Hub): LLaVA's original-codebase fields (mm_*), a SigLIP tower, which has
// no CLS token, so all its patches are features.
const CLASS_DEFAULTS: Record<LlavaModelType, ClassDefaults> = {
  llava: {
    fields: {
      image_token_index: 32000,
      projector_hidden_act: 'gelu',
      vision_feature_select_strategy: 'default',
      vision_feature_layer: -2,
      multimodal_projector_bias: true,
    },
    vision: CLIP_VIT_L_336,
    visionType: 'clip_vision_model',
    textType: 'llama',
  },
  llava_onevision: {
    fields: {
      image_token_index: 151646,
      projector_hidden_act: 'gelu',
      vision_feature_select_strategy: 'full',
      vision_feature_layer: -1,
      multimodal_projector_bias: true,
    },
    vision: {
      ...VISION_CLASS_DEFAULTS.siglip_vision_model,
      intermediate_size: 4096,
      hidden_size: 1024,
      patch_size: 14,
      image_size: 336,
      num_hidden_layers: 24,
      num_attention_heads: 16,
    },
    visionType: 'siglip_vision_model',
    textType: 'qwen2',
  },
  llava_qwen2: {
    fields: { projector_hidden_act: 'gelu', vision_feature_select_strategy: 'full', vision_feature_layer: -2, multimodal_projector_bias: true },
    vision: NAMED_TOWERS['google/siglip-so400m-patch14-384'],
    visionType: 'siglip_vision_model',
    textType: 'qwen2',
  },
};

export interface CompleteConfigOptions {
  /** Named in errors (default 'config.json'). */
  where?: string;
  /** The tokenizer's <image> id, used when config.json has neither image_token_index nor image_token_id. */
  imageTokenId?: number;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Which config class reads this file; a clear error naming what was found and what is supported otherwise. */
export function llavaModelType(raw: Record<string, unknown>, where = 'config.json'): LlavaModelType {
  const type = raw.model_type;
  if ((LLAVA_MODEL_TYPES as readonly unknown[]).includes(type)) return type as LlavaModelType;
  const architectures = Array.isArray(raw.architectures) ? raw.architectures : [];
  if (type === undefined && architectures.includes('LlavaForConditionalGeneration')) return 'llava';
  const why = typeof type === 'string' ? REFUSED_MODEL_TYPES[type] : undefined;
  throw new Error(
    `${where} is not a supported LLaVA config: model_type is ${JSON.stringify(type)}` +
      (why ? ` (${why})` : '') +
      `; supported: ${LLAVA_MODEL_TYPES.join(', ')}`,
  );
}

/** The section with its class's defaults under it; `section.model_type` picks the class. */
function completeSection<T extends { model_type: string }>(
  section: Record<string, unknown>,
  classes: Record<string, T>,
  defaultType: string,
  where: string,
  key: string,
): T {
  const modelType = typeof section.model_type === 'string' ? section.model_type : defaultType;
  const defaults = classes[modelType];
  if (!defaults) {
    throw new Error(`${where}: ${key}.model_type "${modelType}" is not supported (supported: ${Object.keys(classes).join(', ')})`);
  }
  return { ...defaults, ...section, model_type: modelType };
}

function sectionOf(raw: Record<string, unknown>, key: string, where: string): Record<string, unknown> | undefined {
  const section = raw[key];
  if (section === undefined || section === null) return undefined;
  if (!isObject(section)) throw new Error(`${where}: ${key} is not an object`);
  return section;
}

function completeVision(raw: Record<string, unknown>, type: LlavaModelType, where: string): VisionConfig {
  const section = sectionOf(raw, 'vision_config', where);
  const classDefaults = CLASS_DEFAULTS[type];
  if (section) return completeSection(section, VISION_CLASS_DEFAULTS, classDefaults.visionType, where, 'vision_config');
  const named = typeof raw.mm_vision_tower === 'string' ? raw.mm_vision_tower : undefined;
  if (named !== undefined) {
    const tower = NAMED_TOWERS[named];
    if (!tower) {
      throw new Error(`${where}: mm_vision_tower "${named}" is not known and there is no vision_config (known: ${Object.keys(NAMED_TOWERS).join(', ')})`);
    }
    return { ...tower };
  }
  return { ...classDefaults.vision };
}

function completeText(raw: Record<string, unknown>, type: LlavaModelType, where: string): TextConfig {
  let section = sectionOf(raw, 'text_config', where) ?? {};
  if (type === 'llava_qwen2') {
    // transformers.js reads llava_qwen2's text widths from the top level (configs.js); a text_config Xenova added
    // alongside says the same.
    const flat = Object.fromEntries(FLAT_TEXT_FIELDS.filter((k) => raw[k] !== undefined).map((k) => [k, raw[k]]));
    section = { model_type: 'qwen2', ...section, ...flat };
  }
  const text = completeSection(section, TEXT_CLASS_DEFAULTS, CLASS_DEFAULTS[type].textType, where, 'text_config');
  const rope = isObject(section.rope_parameters) ? section.rope_parameters : undefined;
  // transformers ≥ 5 writes rope_parameters {rope_type, rope_theta} in place of rope_theta.
  if (section.rope_theta === undefined && typeof rope?.rope_theta === 'number') text.rope_theta = rope.rope_theta;
  // Qwen2Config keeps sliding_window only when use_sliding_window is true.
  if (text.model_type === 'qwen2' && section.use_sliding_window !== true) text.sliding_window = null;
  return { ...text, num_key_value_heads: text.num_key_value_heads ?? text.num_attention_heads };
}

/** llava_qwen2 names its projector like the original LLaVA code (mm_projector_type). */
function projectorAct(raw: Record<string, unknown>): string | undefined {
  if (typeof raw.projector_hidden_act === 'string') return raw.projector_hidden_act;
  if (raw.mm_projector_type === 'linear') return 'linear';
  if (typeof raw.mm_projector_type === 'string' && /^mlp\d+x_gelu$/.test(raw.mm_projector_type)) return 'gelu';
  return undefined;
}

/**
 * A config.json object as a complete LlavaConfig, read the way transformers reads it: the class of its
 * model_type fills every field it leaves out, image_token_id is the alias of image_token_index, rope_parameters
 * gives rope_theta, and llava_qwen2's flat Qwen2 fields are its text_config.
 */
export function completeLlavaConfig(raw: Record<string, unknown>, options: CompleteConfigOptions | string = {}): LlavaConfig {
  const { where = 'config.json', imageTokenId } = typeof options === 'string' ? { where: options } : options;
  if (!isObject(raw)) throw new Error(`${where} is not a JSON object`);
  const type = llavaModelType(raw, where);
  const vision = completeVision(raw, type, where);
  const text = completeText(raw, type, where);
  const fields: Record<string, unknown> = { ...CLASS_DEFAULTS[type].fields };
  const act = projectorAct(raw);
  if (act !== undefined) fields.projector_hidden_act = act;
  if (type === 'llava_qwen2' && typeof raw.mm_vision_select_layer === 'number') fields.vision_feature_layer = raw.mm_vision_select_layer;
  // image_token_id is transformers' alias (attribute_map) for image_token_index.
  const imageToken = raw.image_token_index ?? raw.image_token_id ?? fields.image_token_index ?? imageTokenId;
  if (typeof imageToken !== 'number') {
    throw new Error(`${where} has no image_token_index (nor image_token_id), and the tokenizer has no <image> token`);
  }
  const config = {
    ...fields,
    ...raw,
    model_type: type,
    image_token_index: imageToken,
    vision_config: vision,
    text_config: text,
  } as LlavaConfig;
  if (typeof config.vision_feature_layer !== 'number') {
    throw new Error(`${where}: vision_feature_layer ${JSON.stringify(config.vision_feature_layer)} is not supported (one layer index only)`);
  }
  if (config.vision_feature_select_strategy !== 'default' && config.vision_feature_select_strategy !== 'full') {
    throw new Error(`${where}: vision_feature_select_strategy must be "default" or "full", got ${JSON.stringify(config.vision_feature_select_strategy)}`);
  }
  for (const [section, keys] of [
    ['vision_config', ['hidden_size', 'num_hidden_layers', 'num_attention_heads', 'image_size', 'patch_size']],
    ['text_config', ['vocab_size', 'hidden_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'max_position_embeddings']],
  ] as const) {
    const values = config[section] as unknown as Record<string, unknown>;
    for (const k of keys) {
      if (!(typeof values[k] === 'number' && Number.isInteger(values[k]) && values[k] > 0)) {
        throw new Error(`${where}: ${section}.${k} must be a positive integer, got ${JSON.stringify(values[k])}`);
      }
    }
  }
  return config;
}
