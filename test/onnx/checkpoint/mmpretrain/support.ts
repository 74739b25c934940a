// The seed's models (mmpretrain llava-7b-v1_caption, llava-7b-v1.5_caption, llava-7b-v1.5_vqa) in tiny form: tiny
// random checkpoints with mmpretrain's key names in the PyTorch zip format, converted with the CLI exactly as a user
// would, and what mmpretrain would compute for them, from a float64 reference that follows mmpretrain's code.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import { Tokenizer } from '@huggingface/tokenizers';
import { llamaTinyTokenizer, writeTinyTokenizer } from '../../../../lib/model/tiny-tokenizer';
import { openMmpretrainCheckpoint } from '../../../../lib/onnx/checkpoint/mmpretrain';
import { clipVision, llavaLanguage } from '../../../support/checkpoint-writers/mmpretrain-tiny';
import { torchSave } from '../../../support/checkpoint-writers/torch-save';
import { referenceImageEmbeds, referencePixels } from '../../../support/reference-pipeline';
import type { RefTensor } from '../../../support/reference';
import type { TinyModel } from '../../../support/tiny-model';

export type SeedModel = 'llava-7b-v1_caption' | 'llava-7b-v1.5_caption' | 'llava-7b-v1.5_vqa';

const CLI = path.join(__dirname, '..', '..', '..', '..', 'lib', 'cli.js');

/** Runs `node dist/lib/cli.js ...args`. */
export function llavaCli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

// configs/llava/*.py, verbatim (the seed's prompts; note "User:").
const V1_META =
  'You are LLaVA, a large language and vision assistant trained by UW Madison WAIV Lab.You are able to understand the visual content that the user provides, and assist the user with a variety of tasks using natural language.Follow the instructions carefully and explain your answers in detail.';
const V15_META =
  "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions.";

/** The prompt text mmpretrain builds for a model (and question, for VQA). */
export function seedPrompt(model: SeedModel, question?: string): string {
  if (model === 'llava-7b-v1_caption') return `${V1_META} User: <im_start><image><im_end>\nDescribe the image in detail. ASSISTANT:`;
  if (model === 'llava-7b-v1.5_caption') return `${V15_META} User: <image>\nDescribe the image in detail. ASSISTANT:`;
  return `${V15_META} User: <image>\n${question} ASSISTANT:`;
}

const FACTS: Record<SeedModel, { size: number; depth: 1 | 2; clipPrefix: string }> = {
  // The v1 CLIP file as tools/model_converters/openai-clip_to_mmpretrain-clip.py writes it ('visual.'), v1.5's
  // as clip_to_mmpretrain.py does ('backbone.').
  'llava-7b-v1_caption': { size: 224, depth: 1, clipPrefix: 'visual.' },
  'llava-7b-v1.5_caption': { size: 336, depth: 2, clipPrefix: 'backbone.' },
  'llava-7b-v1.5_vqa': { size: 336, depth: 2, clipPrefix: 'backbone.' },
};

export interface ConvertedSeedModel {
  /** The model folder the CLI wrote. */
  dir: string;
  /** The checkpoint's weights (llava-hf names) and config, for the float64 reference. */
  reference: TinyModel;
  /** Ids of <im_start>/<im_end> (v1), as mmpretrain's tokenizer numbers them. */
  imStartEnd?: [number, number];
}

/**
 * Writes tiny checkpoints for `model` under `root` (LLaVA .pth, CLIP .pth, tokenizer folder) and converts them with
 * `llava build --from-mmpretrain`. v1 with `tokenizerHasImStartEnd: false` gives a tokenizer without <im_start>/
 * <im_end> and a checkpoint with two more embedding rows, as mmpretrain's Llava makes them.
 */
export function convertTinySeedModel(
  root: string,
  model: SeedModel,
  options: { tokenizerHasImStartEnd?: boolean; extraArgs?: string[] } = {},
): ConvertedSeedModel {
  const { size, depth, clipPrefix } = FACTS[model];
  const v1 = model === 'llava-7b-v1_caption';
  const tokHasMarkers = v1 && (options.tokenizerHasImStartEnd ?? true);
  const src = fs.mkdtempSync(path.join(root, 'ckpt-'));
  const tokenizer = llamaTinyTokenizer({ imStartEnd: tokHasMarkers });
  const tokenizerDir = path.join(src, 'tokenizer');
  writeTinyTokenizer(tokenizerDir, tokenizer);
  // Llava.__init__: add_tokens([<im_start>, <im_end>]) then resize_token_embeddings(len(tokenizer)).
  const vocab = tokenizer.vocabSize + (v1 && !tokHasMarkers ? 2 : 0);
  const llavaFile = path.join(src, `${model}.pth`);
  const clipFile = path.join(src, 'clip.pth');
  torchSave(llavaFile, llavaLanguage(vocab, depth));
  torchSave(clipFile, clipVision(clipPrefix, size));
  const dir = path.join(src, 'model');
  const r = llavaCli(
    'build',
    '--from-mmpretrain',
    llavaFile,
    '--vision',
    clipFile,
    '--tokenizer',
    tokenizerDir,
    '--preset',
    model,
    '--vision-heads',
    '2',
    '--text-heads',
    '3',
    '--out',
    dir,
    ...(options.extraArgs ?? []),
  );
  if (r.status !== 0) throw new Error(`llava build failed (${r.status}): ${r.stderr}`);
  const { config, weights } = openMmpretrainCheckpoint({ llava: llavaFile, vision: clipFile, preset: model, visionHeads: 2, textHeads: 3 });
  // mmpretrain's semantics, stated here rather than taken from the converted config: the last ViT layer's raw
  // output (final_norm=False), CLS dropped.
  const refConfig = { ...config, vision_feature_layer: -1, vision_feature_select_strategy: 'default' as const };
  return {
    dir,
    reference: { dir, config: refConfig, weights, variant: 'fp32' },
    ...(v1 ? { imStartEnd: tokHasMarkers ? [tokenizer.imStartTokenId!, tokenizer.imEndTokenId!] : [vocab - 2, vocab - 1] } : {}),
  };
}

/**
 * A non-square image of seeded noise: squash and crop give different pixels, and bicubic resampling of noise shows
 * any difference in preprocessing. On the tiny checkpoints, seed 5 makes beam search and greedy answer differently.
 */
export async function seedTestImage(seed = 5): Promise<Buffer> {
  const w = 50;
  const h = 70;
  const data = Buffer.alloc(w * h * 3);
  let x = seed * 7919;
  for (let i = 0; i < data.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    data[i] = x >>> 24;
  }
  return sharp(data, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toBuffer();
}

/** MultiModalDataPreprocessor mean/std (0–255 scale) of configs/llava/*.py. */
const MEAN_255 = [122.770938, 116.7460125, 104.09373615];
const STD_255 = [68.5005327, 66.6321579, 70.32316305];

/** Resize(scale=(size, size), bicubic, pillow) — a squash, aspect ignored — then (x − mean) / std on 0–255 values. */
export function seedPixels(image: Buffer, size: number): Promise<Float64Array> {
  return referencePixels(image, {
    mode: 'squash',
    size,
    mean: MEAN_255.map((m) => m / 255) as [number, number, number],
    std: STD_255.map((s) => s / 255) as [number, number, number],
  });
}

export interface SeedRequest {
  /** Prompt ids with one row per image feature (placeholder 0 there). */
  ids: number[];
  imagePositions: number[];
  image: RefTensor;
}

/**
 * What mmpretrain feeds the language model: the image squashed to size×size (bicubic) and normalised, its
 * projected features, and the prompt split at <image>, each chunk tokenized without special tokens (no BOS), the
 * feature rows spliced at the slot.
 */
export async function seedRequest(converted: ConvertedSeedModel, model: SeedModel, image: Buffer, question?: string): Promise<SeedRequest> {
  const pixels = await seedPixels(image, FACTS[model].size);
  const embeds = referenceImageEmbeds(converted.reference, pixels);
  const tokenizer = new Tokenizer(
    JSON.parse(fs.readFileSync(path.join(converted.dir, 'tokenizer.json'), 'utf8')),
    JSON.parse(fs.readFileSync(path.join(converted.dir, 'tokenizer_config.json'), 'utf8')),
  );
  const [before, after] = seedPrompt(model, question).split('<image>');
  const ids = tokenizer.encode(before, { add_special_tokens: false }).ids;
  const imagePositions: number[] = [];
  for (let r = 0; r < embeds.dims[1]; r++) {
    imagePositions.push(ids.length);
    ids.push(0);
  }
  ids.push(...tokenizer.encode(after, { add_special_tokens: false }).ids);
  return { ids, imagePositions, image: embeds };
}
