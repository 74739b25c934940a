// Opens a Hugging Face LLaVA checkpoint folder (config.json, weights, tokenizer files): llava-hf's
// LlavaForConditionalGeneration (both tensor-name layouts) or nanoLLaVA's llava_qwen2 (LLaVA/Bunny codebase names), as a
// completed LlavaConfig (lib/model/hf-config.ts) plus a lazy WeightSource in the llava-hf naming convention.
import * as fs from 'fs';
import * as path from 'path';
import type { LlavaConfig } from '../../model/config';
import { imageTokenIdOf } from '../../model/folder';
import { completeLlavaConfig } from '../../model/hf-config';
import { checkTextConfig } from '../text/llama';
import { checkVisionConfig } from '../vision';
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
    raw = JSON.parse(fs.readFileSync(configFile, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${configFile} is not valid JSON: ${(e as Error).message}`);
  }
  const config = completeLlavaConfig(raw, { where: configFile, imageTokenId: imageTokenWhenUnnamed(raw, dir) });
  const layout = NAME_LAYOUTS[config.model_type];
  if (!layout) {
    throw new Error(
      `${configFile}: model_type "${config.model_type}" cannot be built yet (its anyres tiling and image_newline are not ` +
        `implemented); the builder converts ${Object.keys(NAME_LAYOUTS).join(', ')}`,
    );
  }
  checkVisionConfig(config);
  checkTextConfig(config.text_config);
  const weightFile = WEIGHT_FILES.find(([name]) => fs.existsSync(path.join(dir, name)));
  if (!weightFile) {
    throw new Error(`${dir} has no weights: expected one of ${WEIGHT_FILES.map(([n]) => n).join(', ')}`);
  }
  const weights = normaliseLlavaNames(weightFile[1](path.join(dir, weightFile[0])), layout);
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
 * nanoLLaVA (llava_qwen2) keeps the LLaVA/Bunny codebase names (qnguyen3/nanoLLaVA modeling_llava_qwen2.py; the same
 * prefixes mlx-vlm's nanoLlava `sanitize` maps): the Qwen2 model's own model.* and lm_head.*, the SigLIP tower wrapped
 * as model.vision_tower.vision_tower.vision_model.*, the projector as nn.Sequential model.mm_projector.{0,2} (Linear,
 * GELU, Linear) or a single Linear model.mm_projector.
 */
const LLAVA_QWEN2_NAMES: NameRules = [
  ['model.vision_tower.vision_tower.', 'vision_tower.'],
  ['model.mm_projector.0.', 'multi_modal_projector.linear_1.'],
  ['model.mm_projector.2.', 'multi_modal_projector.linear_2.'],
  ['model.mm_projector.', 'multi_modal_projector.linear_1.'],
  ['model.', 'language_model.model.'],
  ['lm_head.', 'language_model.lm_head.'],
];

/** The model types the builder converts, with their checkpoints' tensor-name layout. */
const NAME_LAYOUTS: Record<string, NameRules> = { llava: LLAVA_NAMES, llava_qwen2: LLAVA_QWEN2_NAMES };

/** The LLaVA codebase's IMAGE_TOKEN_INDEX: its prompt code splices the image in where the tokenizer has no token. */
const LLAVA_CODEBASE_IMAGE_TOKEN = -200;

/** The image token of a config that names none: the tokenizer's <image>, else (llava_qwen2) the LLaVA codebase's. */
function imageTokenWhenUnnamed(raw: Record<string, unknown>, dir: string): number | undefined {
  if (raw.image_token_index !== undefined || raw.image_token_id !== undefined) return undefined;
  return imageTokenIdOf(path.join(dir, 'tokenizer.json')) ?? (raw.model_type === 'llava_qwen2' ? LLAVA_CODEBASE_IMAGE_TOKEN : undefined);
}

function renameWith(rules: NameRules, name: string): string {
  for (const [from, to] of rules) if (name.startsWith(from)) return to + name.slice(from.length);
  return name;
}

/** A llava checkpoint tensor name in the llava-hf convention (see LLAVA_NAMES). */
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

/** Every weight a build reads must be present with its shape; catches configs that do not fit the weights. */
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
