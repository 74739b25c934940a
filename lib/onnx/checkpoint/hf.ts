// Opens a Hugging Face LLaVA model folder (llava-hf layout: config.json, weights, tokenizer files) as a
// completed LlavaConfig plus a lazy WeightSource in the llava-hf naming convention.
import * as fs from 'fs';
import * as path from 'path';
import type { LlavaConfig } from '../../model/config';
import { completeLlavaConfig } from '../../model/hf-config';
import { checkVisionConfig } from '../clip-vision';
import { checkTextConfig } from '../decoder';
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
  if (config.model_type !== 'llava') throw new Error(`${configFile}: model_type "${config.model_type}" cannot be built yet (llava only)`);
  checkVisionConfig(config.vision_config);
  checkTextConfig(config.text_config);
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
