// Reads a model folder: which layout it is, which ONNX files make it up for the chosen weight variant,
// and its configs. Two layouts (see README "Model folders"):
//   transformers-js: onnx/vision_encoder (projector inside), onnx/embed_tokens, onnx/decoder_model_merged
//   split:           the same, but vision_encoder stops before the projector and onnx/multi_modal_projector follows
import * as fs from 'fs';
import * as path from 'path';
import { LlavaConfig, RECORD_KEY } from './config';
import { completeLlavaConfig } from './hf-config';
import { chooseVariants, GraphName, onnxFileName, parseVariantSpec, VariantSpec } from './weight-variants';

export type ModelLayout = 'transformers-js' | 'split';

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
  /** The decoder's weight variant. */
  variant: string;
  /** The weight variant of each graph opened. */
  variants: Partial<Record<GraphName, string>>;
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
 * Opens a model folder with the weight variants asked for: one for all graphs, per graph
 * (`vision_encoder=fp16,embed_tokens=fp16,decoder_model_merged=q4`), or 'auto' (see chooseVariants).
 */
export function openModelFolder(dir: string, requested: string | VariantSpec = 'auto'): ModelFolder {
  const root = path.resolve(dir);
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) {
    throw new Error(`model folder not found: ${dir}`);
  }
  const spec = parseVariantSpec(requested);
  const raw = readJson<Record<string, unknown>>(path.join(root, 'config.json'), 'config.json');
  const config = completeLlavaConfig(raw, {
    imageTokenId: raw.image_token_index === undefined && raw.image_token_id === undefined ? imageTokenIdOf(path.join(root, 'tokenizer.json')) : undefined,
  });

  const onnxDir = path.join(root, 'onnx');
  if (!fs.existsSync(onnxDir)) throw new Error(`model folder has no onnx/ subfolder: ${dir}`);
  const has = (file: string) => fs.existsSync(path.join(onnxDir, file));
  const variants = chooseVariants(has, spec, {
    transformersJs: config['transformers.js_config'],
    recorded: config[RECORD_KEY]?.variant,
  });
  for (const graph of ['vision_encoder', 'embed_tokens', 'decoder_model_merged'] as const) {
    if (!variants[graph]) throw new Error(`model folder is missing onnx/${graph}.onnx (${layoutHint(onnxDir)})`);
  }
  const file = (graph: GraphName) => path.join(onnxDir, onnxFileName(graph, variants[graph]!));
  const layout: ModelLayout = variants.multi_modal_projector ? 'split' : 'transformers-js';
  const files: ModelFiles = {
    vision: file('vision_encoder'),
    embed: file('embed_tokens'),
    decoder: file('decoder_model_merged'),
    ...(variants.multi_modal_projector ? { projector: file('multi_modal_projector') } : {}),
  };

  if (!fs.existsSync(path.join(root, 'tokenizer.json'))) throw new Error(`model folder is missing tokenizer.json: ${dir}`);

  return {
    dir: root,
    layout,
    variant: variants.decoder_model_merged!,
    variants,
    files,
    config,
    preprocessor: readOptionalJson<PreprocessorConfig>(path.join(root, 'preprocessor_config.json')) ?? {},
    generation: readOptionalJson<GenerationConfig>(path.join(root, 'generation_config.json')) ?? {},
  };
}
