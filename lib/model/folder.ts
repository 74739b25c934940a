// Reads a model folder: which layout it is, which ONNX files make it up for the chosen weight variant,
// and its configs. Two layouts (see README "Model folders"):
//   transformers-js: onnx/vision_encoder (projector inside), onnx/embed_tokens, onnx/decoder_model_merged
//   split:           the same, but vision_encoder stops before the projector and onnx/multi_modal_projector follows
import * as fs from 'fs';
import * as path from 'path';
import type { LlavaConfig } from './config';
import { completeLlavaConfig } from './hf-config';

export type ModelLayout = 'transformers-js' | 'split';

/** transformers.js file suffixes by weight variant name. */
export const WEIGHT_VARIANTS: Record<string, string> = {
  fp32: '',
  fp16: '_fp16',
  q8: '_quantized',
  int8: '_int8',
  uint8: '_uint8',
  q4: '_q4',
  q4f16: '_q4f16',
  bnb4: '_bnb4',
};

export interface ModelFiles {
  vision: string;
  projector?: string;
  embed: string;
  decoder: string;
}

/** preprocessor_config.json: a Hugging Face image processor's settings (lib/pipeline/image-preprocess-config.ts reads them). */
export interface PreprocessorConfig {
  image_processor_type?: string;
  processor_class?: string;
  do_resize?: boolean;
  size?: { shortest_edge?: number; height?: number; width?: number; longest_edge?: number } | number;
  do_center_crop?: boolean;
  crop_size?: { height: number; width: number } | number;
  resample?: number;
  do_rescale?: boolean;
  rescale_factor?: number;
  do_normalize?: boolean;
  image_mean?: number[];
  image_std?: number[];
  do_pad?: boolean;
}

export interface GenerationConfig {
  bos_token_id?: number;
  eos_token_id?: number | number[];
  pad_token_id?: number;
  max_new_tokens?: number;
  [key: string]: unknown;
}

export interface ModelFolder {
  dir: string;
  layout: ModelLayout;
  variant: string;
  files: ModelFiles;
  config: LlavaConfig;
  preprocessor: PreprocessorConfig;
  generation: GenerationConfig;
}

function readJson<T>(file: string, what: string): T {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new Error(`model folder is missing ${what} (${path.basename(file)})`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new Error(`${path.basename(file)} is not valid JSON: ${(err as Error).message}`);
  }
}

function readOptionalJson<T>(file: string): T | undefined {
  return fs.existsSync(file) ? readJson<T>(file, path.basename(file)) : undefined;
}

function variantsPresent(onnxDir: string, name: string): string[] {
  return Object.entries(WEIGHT_VARIANTS)
    .filter(([, suffix]) => fs.existsSync(path.join(onnxDir, `${name}${suffix}.onnx`)))
    .map(([variant]) => variant);
}

/**
 * Picks `name{suffix}.onnx`. The small graphs (vision, embeddings, projector) fall back to fp32, since exports
 * often quantize only the decoder; the decoder itself must exist in the variant asked for.
 */
function pickFile(onnxDir: string, name: string, variant: string, fallBackToFp32 = true): string {
  const suffix = WEIGHT_VARIANTS[variant];
  const candidates = fallBackToFp32 ? [`${name}${suffix}.onnx`, `${name}.onnx`] : [`${name}${suffix}.onnx`];
  for (const candidate of candidates) {
    const file = path.join(onnxDir, candidate);
    if (fs.existsSync(file)) return file;
  }
  const present = variantsPresent(onnxDir, name);
  throw new Error(
    present.length
      ? `model folder has no ${variant} ${name} (onnx/${name}${suffix}.onnx); available: ${present.join(', ')}`
      : `model folder is missing onnx/${name}.onnx (${layoutHint(onnxDir)})`,
  );
}

/** For a folder in no known layout: what it holds, and what a LLaVA folder holds. */
function layoutHint(onnxDir: string): string {
  const found = fs.readdirSync(onnxDir).filter((f) => f.endsWith('.onnx'));
  return (
    `onnx/ holds ${found.length ? found.join(', ') : 'no .onnx files'}; a LLaVA model folder has vision_encoder, embed_tokens and ` +
    'decoder_model_merged, plus multi_modal_projector in the split layout'
  );
}

/** The id of the tokenizer's `<image>` added token, if it has one (for configs that name no image token). */
export function imageTokenIdOf(tokenizerFile: string): number | undefined {
  if (!fs.existsSync(tokenizerFile)) return undefined;
  const added = readJson<{ added_tokens?: Array<{ id: number; content: string }> }>(tokenizerFile, 'tokenizer.json').added_tokens;
  return added?.find((t) => t.content === '<image>')?.id;
}

/**
 * The variant 'auto' opens: the one config.json records (folders this package builds), else fp32 when the
 * decoder has it, else the only decoder variant present.
 */
function autoVariant(config: LlavaConfig, onnxDir: string): string {
  const recorded = config['node-red-contrib-llava']?.variant;
  if (typeof recorded === 'string' && recorded in WEIGHT_VARIANTS) return recorded;
  const present = variantsPresent(onnxDir, 'decoder_model_merged');
  if (present.length === 0 || present.includes('fp32')) return 'fp32';
  if (present.length === 1) return present[0];
  throw new Error(`model folder has decoder variants ${present.join(', ')} and no fp32 one: choose a weight variant`);
}

/** Opens a model folder with the given weight variant ('auto' by default: see autoVariant). */
export function openModelFolder(dir: string, requested = 'auto'): ModelFolder {
  const root = path.resolve(dir);
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) {
    throw new Error(`model folder not found: ${dir}`);
  }
  if (requested !== 'auto' && !(requested in WEIGHT_VARIANTS)) {
    throw new Error(`unknown weight variant "${requested}"; one of: auto, ${Object.keys(WEIGHT_VARIANTS).join(', ')}`);
  }
  const raw = readJson<Record<string, unknown>>(path.join(root, 'config.json'), 'config.json');
  const config = completeLlavaConfig(raw, {
    imageTokenId:
      raw.image_token_index === undefined && raw.image_token_id === undefined ? imageTokenIdOf(path.join(root, 'tokenizer.json')) : undefined,
  });

  const onnxDir = path.join(root, 'onnx');
  if (!fs.existsSync(onnxDir)) throw new Error(`model folder has no onnx/ subfolder: ${dir}`);
  const variant = requested === 'auto' ? autoVariant(config, onnxDir) : requested;
  const hasProjector = variantsPresent(onnxDir, 'multi_modal_projector').length > 0;
  const layout: ModelLayout = hasProjector ? 'split' : 'transformers-js';
  const files: ModelFiles = {
    vision: pickFile(onnxDir, 'vision_encoder', variant),
    embed: pickFile(onnxDir, 'embed_tokens', variant),
    decoder: pickFile(onnxDir, 'decoder_model_merged', variant, false),
    ...(hasProjector ? { projector: pickFile(onnxDir, 'multi_modal_projector', variant) } : {}),
  };

  if (!fs.existsSync(path.join(root, 'tokenizer.json'))) throw new Error(`model folder is missing tokenizer.json: ${dir}`);

  return {
    dir: root,
    layout,
    variant,
    files,
    config,
    preprocessor: readOptionalJson<PreprocessorConfig>(path.join(root, 'preprocessor_config.json')) ?? {},
    generation: readOptionalJson<GenerationConfig>(path.join(root, 'generation_config.json')) ?? {},
  };
}
