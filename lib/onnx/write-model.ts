// Writes a complete model folder that lib/model/folder.ts (and transformers.js, for the transformers-js layout) loads:
//   transformers-js: onnx/vision_encoder.onnx (pixel_values → image_features, projector inside),
//                    onnx/embed_tokens.onnx (input_ids → inputs_embeds),
//                    onnx/decoder_model_merged{suffix}.onnx (suffix _q4 / _int8 when quantized)
//   split:           the same, but vision_encoder's image_features are the selected tower features (vision width),
//                    and onnx/multi_modal_projector.onnx maps image_features → image_embeds (text width)
// plus config.json, preprocessor_config.json, processor_config.json, generation_config.json and the tokenizer files.
// Graphs with more than ~64 MB of weights get external data (`<file>.onnx_data`), which onnxruntime maps instead
// of copying into its heap.
import * as fs from 'fs';
import * as path from 'path';
import type { ModelLayout } from '../model/folder';
import { LlavaConfig, RECORD_KEY } from '../model/config';
import { EMBED_IO, PROJECTOR_IO, VISION_IO } from '../model/graph-io';
import { llamaTinyTokenizer, qwen2TinyTokenizer, writeTinyTokenizer } from '../model/tiny-tokenizer';
import type { QuantOptions } from './blocks';
import { buildVisionEncoderGraph, visionTokenCount, visionTower } from './vision';
import { patchGrid } from './vision/tower';
import { buildDecoderGraph, buildEmbedGraph, DecoderVariant } from './decoder';
import type { Graph } from './graph';
import { buildProjectorGraph } from './projector';
import { DEFAULT_BLOCK_SIZE, parseQuantBits } from './quantize';
import { appendSpecialTokens, SpecialToken } from './tokenizer-added-tokens';
import type { WeightSource } from './weights';

export type QuantizeName = 'int4' | 'int8';

/** File suffix (transformers.js dtype naming, see lib/model/folder.ts) of a quantized decoder. */
export const QUANT_VARIANT: Record<QuantizeName, { variant: string; suffix: string }> = {
  int4: { variant: 'q4', suffix: '_q4' },
  int8: { variant: 'int8', suffix: '_int8' },
};

/**
 * Graphs with more weight bytes than this are written with external data when externalData is 'auto'. onnxruntime
 * maps an external data file rather than reading the protobuf into its heap, so only the pages a run touches are
 * resident: Qwen2-0.5B's 545 MB embed_tokens peaks at ~90 MB resident instead of ~1.1 GB. Tiny graphs stay inline.
 */
const AUTO_EXTERNAL_BYTES = 64e6;
/** MatMulNBits accuracy_level written by default: int8 activations, the fastest CPU path. */
export const DEFAULT_ACCURACY_LEVEL = 4;

/**
 * A generated tiny tokenizer, or files to copy (a checkpoint's tokenizer, processor and generation configs);
 * specialTokens are added to the copied tokenizer.json when it lacks them (mmpretrain v1's <im_start>/<im_end>).
 */
export type TokenizerSource = { kind: 'tiny-llama' } | { kind: 'tiny-qwen2' } | { kind: 'files'; files: string[]; specialTokens?: SpecialToken[] };

export interface BuildProgress {
  file: string;
  tensorsDone: number;
  tensorsTotal: number;
  bytesWritten: number;
}

export interface WriteModelOptions {
  outDir: string;
  config: LlavaConfig;
  weights: WeightSource;
  tokenizer: TokenizerSource;
  layout?: ModelLayout;
  decoder?: DecoderVariant;
  quantize?: QuantizeName;
  /** The vision tower's encoder-layer weights as MatMulNBits too (the file keeps its name). */
  quantizeVision?: QuantizeName;
  /** MatMulNBits accuracy_level of every quantized graph. */
  accuracyLevel?: number;
  /** MatMulNBits block size of every quantized graph (default DEFAULT_BLOCK_SIZE). */
  blockSize?: number;
  /** The lm_head's precision when quantizing (default: the same as the other matrices). */
  lmHead?: QuantizeName | 'fp32';
  /** Decoder logits: 'all' positions (default) or the 'last' only (faster prefill, see DecoderOptions). */
  logits?: 'all' | 'last';
  /** true: every graph; false: none (fails over 2 GB); 'auto' (default): graphs over ~64 MB of weights. */
  externalData?: boolean | 'auto';
  /** Replace the model files of an existing folder (otherwise a non-empty outDir is an error). */
  overwrite?: boolean;
  /** Recorded in config.json (e.g. the preset name). */
  source?: string;
  onProgress?: (p: BuildProgress) => void;
}

export interface WrittenModel {
  dir: string;
  /** Paths relative to dir. */
  files: string[];
  /** The weight variant to open the folder with (lib/model/folder.ts openModelFolder). */
  variant: string;
}

const GENERATED_FILES = ['config.json', 'preprocessor_config.json', 'processor_config.json', 'generation_config.json'];

function writeJson(file: string, value: unknown): void {
  fs.writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

function writeTokenizer(dir: string, src: TokenizerSource): void {
  if (src.kind === 'tiny-llama') writeTinyTokenizer(dir, llamaTinyTokenizer());
  else if (src.kind === 'tiny-qwen2') writeTinyTokenizer(dir, qwen2TinyTokenizer());
  else {
    if (!src.files.some((f) => path.basename(f) === 'tokenizer.json')) {
      throw new Error('the checkpoint has no tokenizer.json: a model folder needs one (add it to the checkpoint folder)');
    }
    for (const f of src.files) fs.copyFileSync(f, path.join(dir, path.basename(f)));
    if (src.specialTokens?.length) appendSpecialTokens(path.join(dir, 'tokenizer.json'), src.specialTokens);
  }
}

/** Creates dir/onnx; a non-empty dir needs `overwrite`, and then only the files a build writes are removed. */
function prepareFolder(dir: string, onnxDir: string, opts: WriteModelOptions): void {
  if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0) {
    if (!opts.overwrite) throw new Error(`output folder is not empty: ${opts.outDir} (use overwrite to replace its model files)`);
    fs.rmSync(onnxDir, { recursive: true, force: true });
    const copied = opts.tokenizer.kind === 'files' ? opts.tokenizer.files.map((f) => path.basename(f)) : [];
    for (const f of [...GENERATED_FILES, 'tokenizer.json', 'tokenizer_config.json', ...copied]) fs.rmSync(path.join(dir, f), { force: true });
  }
  fs.mkdirSync(onnxDir, { recursive: true });
}

export function writeModelFolder(opts: WriteModelOptions): WrittenModel {
  const c = opts.config;
  const layout = opts.layout ?? 'transformers-js';
  const decoder = opts.decoder ?? 'optimized';
  const quantOptions = (name: QuantizeName | undefined): QuantOptions | undefined =>
    name
      ? { bits: parseQuantBits(name), accuracyLevel: opts.accuracyLevel ?? DEFAULT_ACCURACY_LEVEL, blockSize: opts.blockSize ?? DEFAULT_BLOCK_SIZE }
      : undefined;
  const quant = quantOptions(opts.quantize);
  const lmHeadQuant: QuantOptions | null | undefined =
    !quant || opts.lmHead === undefined || opts.lmHead === opts.quantize
      ? undefined
      : opts.lmHead === 'fp32'
        ? null
        : { ...quant, bits: parseQuantBits(opts.lmHead) };
  const { variant, suffix } = opts.quantize ? QUANT_VARIANT[opts.quantize] : { variant: 'fp32', suffix: '' };
  const dir = path.resolve(opts.outDir);
  const onnxDir = path.join(dir, 'onnx');
  const files: string[] = [];
  const external: Record<string, boolean> = {};
  const write = (name: string, graph: Graph): void => {
    const fileName = `${name}.onnx`;
    const useExternal = opts.externalData === 'auto' || opts.externalData === undefined ? graph.initializerBytes() > AUTO_EXTERNAL_BYTES : opts.externalData;
    const written = graph.writeFile(path.join(onnxDir, fileName), {
      externalData: useExternal,
      onProgress: (p) => opts.onProgress?.({ file: `onnx/${fileName}`, ...p }),
    });
    external[fileName] = written.length > 1;
    files.push(...written.map((f) => path.relative(dir, f)));
  };

  // Every graph is built (config and weight shapes checked) before any file is written. Weights are read lazily
  // while writing, one tensor at a time, so building all four first costs no weight memory.
  const graphs: Array<[string, Graph]> = [
    ['vision_encoder', buildVisionEncoderGraph(opts.weights, c, { withProjector: layout === 'transformers-js', quant: quantOptions(opts.quantizeVision) })],
    ...(layout === 'split' ? [['multi_modal_projector', buildProjectorGraph(opts.weights, c)] as [string, Graph]] : []),
    ['embed_tokens', buildEmbedGraph(opts.weights, c)],
    [`decoder_model_merged${suffix}`, buildDecoderGraph(opts.weights, c, { variant: decoder, quant, lmHeadQuant, logits: opts.logits })],
  ];

  prepareFolder(dir, onnxDir, opts);
  for (const [name, graph] of graphs) write(name, graph);

  const vision =
    layout === 'split'
      ? {
          vision_encoder: { input: VISION_IO.pixelValues, output: VISION_IO.imageFeatures, width: c.vision_config.hidden_size },
          multi_modal_projector: { input: PROJECTOR_IO.imageFeatures, output: PROJECTOR_IO.imageEmbeds, width: c.text_config.hidden_size },
        }
      : { vision_encoder: { input: VISION_IO.pixelValues, output: VISION_IO.imageFeatures, width: c.text_config.hidden_size } };
  const config: LlavaConfig = {
    ...c,
    image_seq_length: visionTokenCount(c),
    [RECORD_KEY]: {
      ...c[RECORD_KEY],
      source: opts.source,
      layout,
      decoder,
      quantize: opts.quantize ?? null,
      ...(opts.quantizeVision ? { quantize_vision: opts.quantizeVision } : {}),
      ...(quant || opts.quantizeVision
        ? { accuracy_level: opts.accuracyLevel ?? DEFAULT_ACCURACY_LEVEL, block_size: opts.blockSize ?? DEFAULT_BLOCK_SIZE }
        : {}),
      ...(quant ? { lm_head: opts.lmHead ?? opts.quantize } : {}),
      variant,
      io: { ...vision, embed_tokens: { input: EMBED_IO.inputIds, output: EMBED_IO.inputsEmbeds } },
    },
    'transformers.js_config': {
      dtype: { vision_encoder: 'fp32', embed_tokens: 'fp32', decoder_model_merged: variant },
      use_external_data_format: external,
    },
  };
  writeJson(path.join(dir, 'config.json'), config);

  writeTokenizer(dir, opts.tokenizer);
  const defaults: Array<[string, unknown]> = [
    ['preprocessor_config.json', visionTower(c).imageProcessor(c.vision_config)],
    [
      'processor_config.json',
      {
        processor_class: 'LlavaProcessor',
        image_token: '<image>',
        // transformers.js counts patches + num_additional_image_tokens image tokens and, unlike Python, never
        // subtracts the CLS for 'default': this makes it match the vision_encoder's token count (CLIP full: 1, else 0).
        num_additional_image_tokens: visionTokenCount(c) - patchGrid(c.vision_config) ** 2,
        patch_size: c.vision_config.patch_size,
        vision_feature_select_strategy: c.vision_feature_select_strategy,
      },
    ],
    [
      'generation_config.json',
      {
        ...(c.text_config.bos_token_id !== undefined ? { bos_token_id: c.text_config.bos_token_id } : {}),
        eos_token_id: c.text_config.eos_token_id,
        pad_token_id: c.pad_token_id,
      },
    ],
  ];
  for (const [name, value] of defaults) {
    if (!fs.existsSync(path.join(dir, name))) writeJson(path.join(dir, name), value);
  }
  files.push(
    ...fs
      .readdirSync(dir)
      .filter((f) => f !== 'onnx')
      .sort(),
  );
  return { dir, files, variant };
}
