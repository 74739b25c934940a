// Opens a Hugging Face LLaVA model folder (llava-hf layout: config.json, weights, tokenizer files) as a
// completed LlavaConfig plus a lazy WeightSource in the llava-hf naming convention.
import * as fs from 'fs';
import * as path from 'path';
import { CLIP_VIT_L_336, LlavaConfig, TextConfig, VisionConfig } from '../../model/config';
import { TEXT_MODELS, TextModel } from '../text/llama';
import { VISION_TOWERS } from '../vision';
import { SIGLIP_SO400M_384 } from '../vision/siglip';
import { requiredWeightShapes } from '../weight-layout';
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
  const names = raw.model_type === 'llava_qwen2' ? LLAVA_QWEN2_NAMES : LLAVA_NAMES;
  const weightFile = WEIGHT_FILES.find(([name]) => fs.existsSync(path.join(dir, name)));
  if (!weightFile) {
    throw new Error(`${dir} has no weights: expected one of ${WEIGHT_FILES.map(([n]) => n).join(', ')}`);
  }
  const weights = normaliseLlavaNames(weightFile[1](path.join(dir, weightFile[0])), names);
  checkWeightsMatchConfig(weights, config, path.join(dir, weightFile[0]));
  return { dir, config, weights, tokenizerFiles: tokenizerFilesIn(dir), processorFiles: filesIn(dir, PROCESSOR_FILES) };
}

type NameRules = Array<[from: string, to: string]>;

/**
 * transformers ≥ 4.52 saves LlavaForConditionalGeneration as model.vision_tower.*, model.multi_modal_projector.*,
 * model.language_model.* and lm_head.*; earlier versions (and llava-hf on the Hub) use vision_tower.*,
 * multi_modal_projector.*, language_model.model.* and language_model.lm_head.*. This maps the first to the second.
 */
const LLAVA_NAMES: NameRules = [
  ['model.vision_tower.', 'vision_tower.'],
  ['model.multi_modal_projector.', 'multi_modal_projector.'],
  ['model.language_model.', 'language_model.model.'],
  ['lm_head.', 'language_model.lm_head.'],
];

/**
 * nanoLLaVA (llava_qwen2) keeps the LLaVA/Bunny codebase names: the Qwen2 model's own model.* and lm_head.*, the
 * SigLIP tower wrapped as model.vision_tower.vision_tower.vision_model.*, and the projector as an nn.Sequential
 * model.mm_projector.{0,2} (Linear, GELU, Linear) or a single Linear model.mm_projector.
 */
const LLAVA_QWEN2_NAMES: NameRules = [
  ['model.vision_tower.vision_tower.', 'vision_tower.'],
  ['model.mm_projector.0.', 'multi_modal_projector.linear_1.'],
  ['model.mm_projector.2.', 'multi_modal_projector.linear_2.'],
  ['model.mm_projector.', 'multi_modal_projector.linear_1.'],
  ['model.', 'language_model.model.'],
  ['lm_head.', 'language_model.lm_head.'],
];

function renameWith(rules: NameRules, name: string): string {
  for (const [from, to] of rules) if (name.startsWith(from)) return to + name.slice(from.length);
  return name;
}

/** A checkpoint tensor name in the llava-hf convention (see LLAVA_NAMES). */
export function normaliseLlavaName(name: string): string {
  return renameWith(LLAVA_NAMES, name);
}

export function normaliseLlavaNames(source: WeightSource, rules: NameRules = LLAVA_NAMES): WeightSource {
  const table = new TensorTable();
  for (const name of source.names()) {
    const target = renameWith(rules, name);
    const tensor = source.get(name)!;
    if (table.get(target)) throw new Error(`checkpoint holds both '${name}' and another tensor that is also '${target}'`);
    table.add(target === name ? tensor : renamed(tensor, target));
  }
  return table;
}

// Defaults of transformers' LlavaConfig (configuration_llava.py), used for the fields a config.json leaves out; the
// vision and text defaults come from the architecture modules (lib/onnx/vision, lib/onnx/text), which list the
// towers and text models the builder implements.
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
const VISION_CLASS_DEFAULTS: Record<string, VisionConfig> = Object.fromEntries(VISION_TOWERS.map((t) => [t.modelType, t.classDefaults]));
const TEXT_CLASS_DEFAULTS: Record<string, TextModel['classDefaults']> = Object.fromEntries(TEXT_MODELS.map((m) => [m.modelType, m.classDefaults]));

const SUPPORTED_MODEL_TYPES = 'llava (LlavaForConditionalGeneration) or llava_qwen2 (nanoLLaVA)';

/** A config.json object as a complete LlavaConfig: the fields it omits get transformers' defaults. */
export function completeLlavaConfig(raw: Record<string, unknown>, where = 'config.json'): LlavaConfig {
  if (raw.model_type === 'llava_qwen2') return completeLlavaQwen2Config(raw, where);
  const architectures = raw.architectures as string[] | undefined;
  if (raw.model_type !== 'llava' && !architectures?.includes('LlavaForConditionalGeneration')) {
    const original = typeof raw.model_type === 'string' && raw.model_type.startsWith('llava_');
    throw new Error(
      `${where} is not a LLaVA config the builder supports: model_type is ${JSON.stringify(raw.model_type)} ` +
        `(supported: ${SUPPORTED_MODEL_TYPES})` +
        (original ? '; this looks like an original haotian-liu LLaVA folder, use its llava-hf conversion instead' : ''),
    );
  }
  // image_token_id is transformers' alias (attribute_map) for image_token_index.
  if (raw.image_token_index === undefined && typeof raw.image_token_id === 'number') {
    raw = { ...raw, image_token_index: raw.image_token_id };
  }
  const vision = completeSection(raw.vision_config, VISION_CLASS_DEFAULTS, 'clip_vision_model', LLAVA_DEFAULT_VISION, where, 'vision_config');
  const text = completeText(raw.text_config ?? {}, where);
  const config = { ...LLAVA_DEFAULTS, ...raw, model_type: 'llava', vision_config: vision, text_config: text } as LlavaConfig;
  if (typeof config.vision_feature_layer !== 'number') {
    throw new Error(`${where}: vision_feature_layer ${JSON.stringify(config.vision_feature_layer)} is not supported (one layer index only)`);
  }
  if (config.vision_feature_select_strategy !== 'default' && config.vision_feature_select_strategy !== 'full') {
    throw new Error(`${where}: vision_feature_select_strategy must be "default" or "full"`);
  }
  return config;
}

function completeText(section: unknown, where: string, defaultType = 'llama'): TextConfig {
  const text = completeSection(section, TEXT_CLASS_DEFAULTS, defaultType, TEXT_CLASS_DEFAULTS[defaultType], where, 'text_config');
  return { ...text, num_key_value_heads: text.num_key_value_heads ?? text.num_attention_heads } as TextConfig;
}

/** The vision towers nanoLLaVA-style configs name in mm_vision_tower (their config.json has no vision_config). */
const KNOWN_VISION_TOWERS: Record<string, VisionConfig> = { 'google/siglip-so400m-patch14-384': SIGLIP_SO400M_384 };
/** The LLaVA codebase's IMAGE_TOKEN_INDEX: the image placeholder is spliced in by the prompt code, not the tokenizer. */
const LLAVA_CODEBASE_IMAGE_TOKEN = -200;
const FLAT_TEXT_FIELDS = [
  ...Object.keys(TEXT_CLASS_DEFAULTS.qwen2), 'num_key_value_heads', 'head_dim', 'bos_token_id', 'eos_token_id', 'attention_bias',
  'sliding_window', 'use_sliding_window',
];

/**
 * nanoLLaVA (qnguyen3/nanoLLaVA, model_type llava_qwen2, Bunny-derived custom code): the Qwen2 text fields at the top
 * level (Xenova/nanoLLaVA adds text_config and vision_config, used when present), mm_vision_tower naming the SigLIP
 * tower, mm_projector_type. Its SigLipVisionTower deletes the last encoder layer and reads hidden_states[-1], i.e.
 * transformers' hidden_states[-2] of the whole tower, with all 729 patch tokens.
 */
function completeLlavaQwen2Config(raw: Record<string, unknown>, where: string): LlavaConfig {
  const flatText = Object.fromEntries(FLAT_TEXT_FIELDS.filter((k) => raw[k] !== undefined).map((k) => [k, raw[k]]));
  const text = completeText(raw.text_config ?? { ...flatText, model_type: 'qwen2' }, where, 'qwen2');
  let vision: VisionConfig;
  if (raw.vision_config !== undefined) {
    vision = completeSection(raw.vision_config, VISION_CLASS_DEFAULTS, 'siglip_vision_model', SIGLIP_SO400M_384, where, 'vision_config');
  } else {
    const known = KNOWN_VISION_TOWERS[raw.mm_vision_tower as string];
    if (!known) {
      throw new Error(`${where}: mm_vision_tower ${JSON.stringify(raw.mm_vision_tower)} is not a known tower and there is no vision_config ` +
        `(known: ${Object.keys(KNOWN_VISION_TOWERS).join(', ')})`);
    }
    vision = { ...known };
  }
  const projector = (raw.mm_projector_type as string | undefined) ?? 'linear';
  if (projector !== 'mlp2x_gelu' && projector !== 'linear') {
    throw new Error(`${where}: mm_projector_type "${projector}" is not supported (mlp2x_gelu, linear)`);
  }
  return {
    model_type: 'llava',
    architectures: ['LlavaForConditionalGeneration'],
    image_token_index: typeof raw.image_token_index === 'number' ? raw.image_token_index : LLAVA_CODEBASE_IMAGE_TOKEN,
    ...(typeof raw.pad_token_id === 'number' ? { pad_token_id: raw.pad_token_id } : {}),
    vision_feature_layer: -2,
    vision_feature_select_strategy: 'full',
    projector_hidden_act: projector === 'linear' ? 'linear' : 'gelu',
    projector_type: projector,
    multimodal_projector_bias: true,
    vision_config: vision,
    text_config: text,
  };
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
  for (const [name, shape] of requiredWeightShapes(config)) {
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
