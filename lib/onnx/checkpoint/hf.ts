// Opens a Hugging Face LLaVA model folder (llava-hf layout: config.json, weights, tokenizer files) as a
// completed LlavaConfig plus a lazy WeightSource in the llava-hf naming convention.
import * as fs from 'fs';
import * as path from 'path';
import { CLIP_VIT_L_336, LlavaConfig, TextConfig, VisionConfig } from '../../model/config';
import { llavaWeightShapes } from '../weight-layout';
import { WeightSource } from '../weights';
import { openPytorchCheckpoint } from './pytorch';
import { openSafetensors, openSafetensorsIndex } from './safetensors';
import { openShardIndex } from './sharded';
import { TensorTable, fmtShape, renamed } from './source';
import { filesIn, tokenizerFilesIn } from './tokenizer-files';

export interface HfCheckpoint {
  dir: string;
  config: LlavaConfig;
  /** Names normalised to vision_tower.*, multi_modal_projector.*, language_model.model.*, language_model.lm_head.*. */
  weights: WeightSource;
  /** Absolute paths of the tokenizer and chat-template files present (copy them next to the converted model). */
  tokenizerFiles: string[];
  /** Absolute paths of the image-processor, processor and generation configs present. */
  processorFiles: string[];
}

const PROCESSOR_FILES = ['preprocessor_config.json', 'processor_config.json', 'generation_config.json'];

/** Weight files in the order transformers prefers them. */
const WEIGHT_FILES: Array<[string, (file: string) => WeightSource]> = [
  ['model.safetensors.index.json', openSafetensorsIndex],
  ['model.safetensors', openSafetensors],
  ['pytorch_model.bin.index.json', (f) => openShardIndex(f, openPytorchCheckpoint)],
  ['pytorch_model.bin', openPytorchCheckpoint],
];

export function openHfCheckpoint(dir: string): HfCheckpoint {
  const configFile = path.join(dir, 'config.json');
  if (!fs.existsSync(configFile)) throw new Error(`${dir} is not a Hugging Face model folder: it has no config.json`);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  } catch (e) {
    throw new Error(`${configFile} is not valid JSON: ${(e as Error).message}`);
  }
  const config = completeLlavaConfig(raw, configFile);
  const weightFile = WEIGHT_FILES.find(([name]) => fs.existsSync(path.join(dir, name)));
  if (!weightFile) {
    throw new Error(`${dir} has no weights: expected one of ${WEIGHT_FILES.map(([n]) => n).join(', ')}`);
  }
  const weights = normaliseLlavaNames(weightFile[1](path.join(dir, weightFile[0])));
  checkWeightsMatchConfig(weights, config, path.join(dir, weightFile[0]));
  return { dir, config, weights, tokenizerFiles: tokenizerFilesIn(dir), processorFiles: filesIn(dir, PROCESSOR_FILES) };
}

/**
 * transformers ≥ 4.52 saves LlavaForConditionalGeneration as model.vision_tower.*, model.multi_modal_projector.*,
 * model.language_model.* and lm_head.*; earlier versions (and llava-hf on the Hub) use vision_tower.*,
 * multi_modal_projector.*, language_model.model.* and language_model.lm_head.*. This maps the first to the second.
 */
export function normaliseLlavaName(name: string): string {
  const rules: Array<[string, string]> = [
    ['model.vision_tower.', 'vision_tower.'],
    ['model.multi_modal_projector.', 'multi_modal_projector.'],
    ['model.language_model.', 'language_model.model.'],
    ['lm_head.', 'language_model.lm_head.'],
  ];
  for (const [from, to] of rules) if (name.startsWith(from)) return to + name.slice(from.length);
  return name;
}

export function normaliseLlavaNames(source: WeightSource): WeightSource {
  const table = new TensorTable();
  for (const name of source.names()) {
    const target = normaliseLlavaName(name);
    const tensor = source.get(name)!;
    if (table.get(target)) throw new Error(`checkpoint holds both '${name}' and another tensor that is also '${target}'`);
    table.add(target === name ? tensor : renamed(tensor, target));
  }
  return table;
}

// Defaults of transformers' config classes, used for the fields a config.json leaves out
// (configuration_llava.py, configuration_clip.py, configuration_llama.py, configuration_qwen2.py). Only the
// vision and text models the ONNX builder implements are accepted.
const LLAVA_DEFAULTS = {
  image_token_index: 32000,
  projector_hidden_act: 'gelu',
  vision_feature_select_strategy: 'default',
  vision_feature_layer: -2,
  image_seq_length: 576,
  multimodal_projector_bias: true,
};
/** LlavaConfig builds this CLIP ViT-L/14-336 when config.json has no vision_config at all. */
const LLAVA_DEFAULT_VISION: VisionConfig = CLIP_VIT_L_336;
/** Class defaults for fields missing from a vision_config that is present. */
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
};
const TEXT_CLASS_DEFAULTS: Record<string, Omit<TextConfig, 'num_key_value_heads'>> = {
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
  qwen2: {
    model_type: 'qwen2',
    vocab_size: 151936,
    hidden_size: 4096,
    intermediate_size: 22016,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    max_position_embeddings: 32768,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    hidden_act: 'silu',
    tie_word_embeddings: false,
  },
};

/** A config.json object as a complete LlavaConfig: the fields it omits get transformers' defaults. */
export function completeLlavaConfig(raw: Record<string, unknown>, where = 'config.json'): LlavaConfig {
  const architectures = raw.architectures as string[] | undefined;
  if (raw.model_type !== 'llava' && !architectures?.includes('LlavaForConditionalGeneration')) {
    const original = typeof raw.model_type === 'string' && raw.model_type.startsWith('llava_');
    throw new Error(
      `${where} is not a LLaVA config: model_type is ${JSON.stringify(raw.model_type)} ` +
        `(expected "llava", i.e. LlavaForConditionalGeneration)` +
        (original ? '; this looks like an original haotian-liu LLaVA folder, use its llava-hf conversion instead' : ''),
    );
  }
  // image_token_id is transformers' alias (attribute_map) for image_token_index.
  if (raw.image_token_index === undefined && typeof raw.image_token_id === 'number') {
    raw = { ...raw, image_token_index: raw.image_token_id };
  }
  const vision = completeSection(raw.vision_config, VISION_CLASS_DEFAULTS, 'clip_vision_model', LLAVA_DEFAULT_VISION, where, 'vision_config');
  const text = completeSection(raw.text_config, TEXT_CLASS_DEFAULTS, 'llama', TEXT_CLASS_DEFAULTS.llama, where, 'text_config');
  const textConfig = { ...text, num_key_value_heads: (text as TextConfig).num_key_value_heads ?? text.num_attention_heads } as TextConfig;
  const config = { ...LLAVA_DEFAULTS, ...raw, model_type: 'llava', vision_config: vision, text_config: textConfig } as LlavaConfig;
  if (typeof config.vision_feature_layer !== 'number') {
    throw new Error(`${where}: vision_feature_layer ${JSON.stringify(config.vision_feature_layer)} is not supported (one layer index only)`);
  }
  if (config.vision_feature_select_strategy !== 'default' && config.vision_feature_select_strategy !== 'full') {
    throw new Error(`${where}: vision_feature_select_strategy must be "default" or "full"`);
  }
  return config;
}

function completeSection<T extends { model_type: string }>(
  section: unknown,
  classDefaults: Record<string, T>,
  defaultType: string,
  whenAbsent: T,
  where: string,
  key: string,
): T {
  if (section === undefined || section === null) return { ...whenAbsent };
  if (typeof section !== 'object') throw new Error(`${where}: ${key} is not an object`);
  const modelType = (section as { model_type?: string }).model_type ?? defaultType;
  const defaults = classDefaults[modelType];
  if (!defaults) {
    throw new Error(`${where}: ${key}.model_type "${modelType}" is not supported (supported: ${Object.keys(classDefaults).join(', ')})`);
  }
  return { ...defaults, ...(section as object), model_type: modelType };
}

/** Every weight the config implies must be present with its shape; catches configs that do not fit the weights. */
function checkWeightsMatchConfig(weights: WeightSource, config: LlavaConfig, where: string): void {
  if (!weights.names().some((n) => n.startsWith('vision_tower.')) || !weights.names().some((n) => n.startsWith('language_model.'))) {
    throw new Error(`${where} does not hold LLaVA weights (no vision_tower.* and language_model.* tensors)`);
  }
  const problems: string[] = [];
  for (const [name, shape] of llavaWeightShapes(config)) {
    const tensor = weights.get(name);
    if (!tensor) problems.push(`${name} is missing`);
    else if (fmtShape(tensor.shape) !== fmtShape(shape)) {
      problems.push(`${name} is ${fmtShape(tensor.shape)}, config implies ${fmtShape(shape)}`);
    }
  }
  if (problems.length) {
    const more = problems.length > 5 ? ` (and ${problems.length - 5} more)` : '';
    throw new Error(`${where} does not match its config.json: ${problems.slice(0, 5).join('; ')}${more}`);
  }
}
