// `llava build`: writes a model folder from a tiny or preset architecture with seeded random weights, from a
// Hugging Face LLaVA checkpoint folder (--from), or from an mmpretrain LLaVA checkpoint (--from-mmpretrain).
import * as fs from 'fs';
import * as path from 'path';
import { ARCHITECTURE_NAMES, architecture, withTinyTokenizer } from '../onnx/architectures';
import { LlavaConfig, RECORD_KEY } from '../model/config';
import type { ModelLayout } from '../model/folder';
import { parseOptions } from './args';
import { UsageError } from './usage-error';
import { openHfCheckpoint } from '../onnx/checkpoint/hf';
import { openMmpretrainCheckpoint } from '../onnx/checkpoint/mmpretrain';
import type { DecoderVariant } from '../onnx/decoder';
import { randomWeights } from '../onnx/random-weights';
import { checkSpecialTokens, SpecialToken } from '../onnx/tokenizer-added-tokens';
import type { WeightSource } from '../onnx/weights';
import { BuildProgress, QuantizeName, TokenizerSource, writeModelFolder } from '../onnx/write-model';

/** The seed's models (open-mmlab/mmpretrain configs/llava/*.py), each a preset of lib/pipeline/presets.ts. */
const MMPRETRAIN_MODELS = ['llava-7b-v1_caption', 'llava-7b-v1.5_caption', 'llava-7b-v1.5_vqa'];

export const usage = `usage: llava build (--tiny | --preset NAME --random | --from HF_DIR | --from-mmpretrain PTH ...) --out DIR [options]

  --tiny                 tiny LLaMA-based test model (same as --preset tiny --random)
  --preset NAME          architecture: ${ARCHITECTURE_NAMES.join(', ')}
  --random               seeded random weights for the preset (--seed N, default 0); real-width presets get the
                         tiny tokenizer of their family, with the config's special ids pointing at it
  --from HF_DIR          convert a Hugging Face LLaVA checkpoint folder (safetensors or PyTorch .bin)
  --from-mmpretrain PTH  convert an mmpretrain LLaVA checkpoint (llava-7b-v1*_liuhaotian_*.pth) to the split layout:
                           --preset NAME    the seed model to run it as: ${MMPRETRAIN_MODELS.join(' | ')};
                                            recorded in config.json, so the pipeline and the nodes use that preset
                           --vision PTH     the CLIP ViT-L checkpoint that model's config names
                           --tokenizer DIR  the tokenizer folder it names, with a tokenizer.json (v1's <im_start>/
                                            <im_end> are added to the copy when it lacks them)
                           --vision-heads/--text-heads N  only when heads are not 64/128 wide (tiny test models)
  --out DIR              output model folder (must be empty unless --force)
  --layers N             decoder layers (default: the preset's or checkpoint's; from a checkpoint, keeps the first N)
  --vision-layers N      vision encoder layers (default: the preset's)
  --layout L             transformers-js (projector inside vision_encoder, default) | split (--from-mmpretrain: split)
  --decoder V            optimized (com.microsoft GroupQueryAttention, default) | portable (standard ops)
  --quantize Q           int4 | int8: block-32 MatMulNBits decoder weights (needs --decoder optimized)
  --quantize-vision Q    int4 | int8: block-32 MatMulNBits weights in the vision tower's encoder layers (faster
                         encode; the features move a little from fp32, see the README's Performance section)
  --accuracy-level N     MatMulNBits accuracy_level: 4 = int8 activations (default, fastest on CPU), 0 = fp32 compute
  --block-size N         MatMulNBits block: 32 (default, llama.cpp Q4_0's), 64 or 128 (fewer scale bytes, faster decode,
                         larger weight error)
  --lm-head P            the output projection's precision: same as --quantize (default) | int8 | int4 | fp32
  --logits L             last (default: lm_head on the last position only; faster prefill, less memory;
                         all a generator needs) | all (every position, e.g. for scoring a text)
  --external-data        always write weights to .onnx_data files (automatic for graphs over 64 MB)
  --force                replace the model files in a non-empty --out folder
  --verbose              stack traces on errors`;

const OPTIONS = {
  tiny: { type: 'boolean' },
  preset: { type: 'string' },
  random: { type: 'boolean' },
  from: { type: 'string' },
  'from-mmpretrain': { type: 'string' },
  vision: { type: 'string' },
  tokenizer: { type: 'string' },
  'vision-heads': { type: 'string' },
  'text-heads': { type: 'string' },
  out: { type: 'string' },
  layers: { type: 'string' },
  'vision-layers': { type: 'string' },
  layout: { type: 'string' },
  decoder: { type: 'string' },
  quantize: { type: 'string' },
  'quantize-vision': { type: 'string' },
  seed: { type: 'string' },
  'accuracy-level': { type: 'string' },
  'block-size': { type: 'string' },
  'lm-head': { type: 'string' },
  logits: { type: 'string' },
  'external-data': { type: 'boolean' },
  force: { type: 'boolean' },
  verbose: { type: 'boolean' },
} as const;

function oneOf<T extends string>(flag: string, value: string | undefined, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`--${flag} must be one of ${allowed.join(', ')}, got "${value}"`);
  return value as T;
}

function count(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new UsageError(`--${flag} must be a positive integer, got "${value}"`);
  return Number(value);
}

function formatBytes(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : `${(n / 1e6).toFixed(1)} MB`;
}

/** Progress on stderr: one updating line on a terminal, one line per finished file otherwise. */
function progressReporter(): (p: BuildProgress) => void {
  const tty = process.stderr.isTTY;
  return (p) => {
    const done = p.tensorsDone === p.tensorsTotal;
    const line = `${p.file}: ${p.tensorsDone}/${p.tensorsTotal} tensors${p.bytesWritten ? `, ${formatBytes(p.bytesWritten)} external` : ''}`;
    if (tty) process.stderr.write(`\r${line}\x1b[K${done ? '\n' : ''}`);
    else if (done) process.stderr.write(`${line}\n`);
  };
}

interface Source {
  config: LlavaConfig;
  weights: WeightSource;
  tokenizer: TokenizerSource;
  label: string;
}

function resolveSource(v: { [K in keyof typeof OPTIONS]?: string | boolean }): Source {
  const layers = count('layers', v.layers as string | undefined);
  const visionLayers = count('vision-layers', v['vision-layers'] as string | undefined);
  const mmpretrain = v['from-mmpretrain'] as string | undefined;
  // With --from-mmpretrain, --preset names the seed model rather than an architecture.
  const chosen = [v.tiny && '--tiny', v.preset && !mmpretrain && '--preset', v.from && '--from', mmpretrain && '--from-mmpretrain'].filter(Boolean);
  if (chosen.length !== 1) {
    throw new UsageError(
      `choose exactly one of --tiny, --preset NAME --random, --from HF_DIR, --from-mmpretrain PTH${chosen.length ? ` (got ${chosen.join(', ')})` : ''}`,
    );
  }
  const mmpretrainOnly = ['vision', 'tokenizer', 'vision-heads', 'text-heads'] as const;
  const misplaced = mmpretrainOnly.filter((k) => v[k] !== undefined);
  if (!mmpretrain && misplaced.length) throw new UsageError(`--${misplaced[0]} applies to --from-mmpretrain only`);
  if (mmpretrain) return mmpretrainSource(v, mmpretrain, layers, visionLayers);
  if (v.from) {
    if (v.random || v.seed !== undefined) throw new UsageError('--random/--seed apply to presets, not to --from');
    const ckpt = openHfCheckpoint(v.from as string);
    const config = ckpt.config;
    if (layers !== undefined) config.text_config.num_hidden_layers = Math.min(layers, config.text_config.num_hidden_layers);
    if (visionLayers !== undefined) throw new UsageError('--vision-layers applies to presets; the checkpoint fixes the vision tower');
    return {
      config,
      weights: ckpt.weights,
      tokenizer: { kind: 'files', files: [...ckpt.tokenizerFiles, ...ckpt.processorFiles] },
      label: `from ${path.basename(path.resolve(v.from as string))}`,
    };
  }
  const name = v.tiny ? 'tiny' : (v.preset as string);
  if (!v.tiny && !v.random) throw new UsageError(`--preset ${name} needs --random (or convert real weights with --from HF_DIR)`);
  if (!ARCHITECTURE_NAMES.includes(name)) throw new UsageError(`unknown preset "${name}"; one of: ${ARCHITECTURE_NAMES.join(', ')}`);
  const seed = v.seed === undefined ? 0 : Number(v.seed);
  if (!Number.isInteger(seed)) throw new UsageError(`--seed must be an integer, got "${v.seed}"`);
  const arch = withTinyTokenizer(architecture(name, { textLayers: layers, visionLayers }));
  const tokenizer: TokenizerSource = arch.tokenizer === 'tiny-qwen2' ? { kind: 'tiny-qwen2' } : { kind: 'tiny-llama' };
  return { config: arch.config, weights: randomWeights(arch.config, seed), tokenizer, label: `preset ${name}, random seed ${seed}` };
}

function mmpretrainSource(v: { [K in keyof typeof OPTIONS]?: string | boolean }, pth: string, layers?: number, visionLayers?: number): Source {
  const name = v.preset as string | undefined;
  if (!name || !MMPRETRAIN_MODELS.includes(name)) {
    throw new UsageError(`--from-mmpretrain needs --preset NAME, one of ${MMPRETRAIN_MODELS.join(', ')}${name ? ` (got "${name}")` : ''}`);
  }
  if (v.random || v.seed !== undefined || visionLayers !== undefined)
    throw new UsageError('--random/--seed/--vision-layers apply to architecture presets, not to --from-mmpretrain');
  if (v.layout !== undefined && v.layout !== 'split')
    throw new UsageError("--from-mmpretrain writes the split layout (the seed's preprocessing and prompts are not transformers.js's)");
  if (!v.vision) throw new UsageError(`--from-mmpretrain needs --vision PTH (the CLIP ViT-L checkpoint ${name}'s config names)`);
  if (!v.tokenizer) throw new UsageError(`--from-mmpretrain needs --tokenizer DIR (the tokenizer ${name}'s config names, with a tokenizer.json)`);
  const ckpt = openMmpretrainCheckpoint({
    llava: pth,
    vision: v.vision as string,
    preset: name,
    tokenizer: v.tokenizer as string,
    visionHeads: count('vision-heads', v['vision-heads'] as string | undefined),
    textHeads: count('text-heads', v['text-heads'] as string | undefined),
  });
  // Checked before any graph is written: a 7B build takes minutes.
  const tokenizerJson = ckpt.tokenizerFiles.find((f) => path.basename(f) === 'tokenizer.json');
  if (!tokenizerJson) {
    throw new Error(`${v.tokenizer} has no tokenizer.json (mmpretrain uses the fast tokenizer: save one with transformers' AutoTokenizer, see the README)`);
  }
  const specialTokens: SpecialToken[] = ckpt.imStartEnd
    ? [
        { id: ckpt.imStartEnd.startId, content: '<im_start>' },
        { id: ckpt.imStartEnd.endId, content: '<im_end>' },
      ]
    : [];
  checkSpecialTokens(tokenizerJson, specialTokens);
  ckpt.config[RECORD_KEY] = { ...ckpt.config[RECORD_KEY], preset: name };
  if (layers !== undefined) ckpt.config.text_config.num_hidden_layers = Math.min(layers, ckpt.config.text_config.num_hidden_layers);
  return {
    config: ckpt.config,
    weights: ckpt.weights,
    tokenizer: { kind: 'files', files: ckpt.tokenizerFiles, specialTokens },
    label: `mmpretrain ${name} (${path.basename(pth)})`,
  };
}

export async function run(argv: string[]): Promise<number> {
  const v = parseOptions(argv, OPTIONS);
  if (!v.out) throw new UsageError('--out DIR is required');
  const layout = oneOf<ModelLayout>('layout', v.layout, ['transformers-js', 'split'], v['from-mmpretrain'] ? 'split' : 'transformers-js');
  const decoder = oneOf<DecoderVariant>('decoder', v.decoder, ['optimized', 'portable'], 'optimized');
  const logits = oneOf<'last' | 'all'>('logits', v.logits, ['last', 'all'], 'last');
  const quantize = v.quantize === undefined ? undefined : oneOf<QuantizeName>('quantize', v.quantize, ['int4', 'int8'], 'int4');
  if (quantize && decoder === 'portable') throw new UsageError('--quantize needs --decoder optimized (MatMulNBits is a com.microsoft op)');
  const quantizeVision =
    v['quantize-vision'] === undefined ? undefined : oneOf<QuantizeName>('quantize-vision', v['quantize-vision'], ['int4', 'int8'], 'int8');
  const accuracyLevel = v['accuracy-level'] === undefined ? undefined : Number(oneOf('accuracy-level', v['accuracy-level'], ['0', '1', '2', '3', '4'], '4'));
  if (accuracyLevel !== undefined && !quantize && !quantizeVision)
    throw new UsageError('--accuracy-level applies to --quantize or --quantize-vision builds only');
  const blockSize = v['block-size'] === undefined ? undefined : Number(oneOf('block-size', v['block-size'], ['16', '32', '64', '128', '256'], '32'));
  const lmHead = v['lm-head'] === undefined ? undefined : oneOf<QuantizeName | 'fp32'>('lm-head', v['lm-head'], ['int4', 'int8', 'fp32'], 'int4');
  if (blockSize !== undefined && !quantize && !quantizeVision) throw new UsageError('--block-size applies to --quantize or --quantize-vision builds only');
  if (lmHead !== undefined && !quantize) throw new UsageError('--lm-head applies to --quantize builds only');
  if (!v.force && fs.existsSync(v.out) && fs.readdirSync(v.out).length > 0) {
    throw new UsageError(`--out ${v.out} is not empty: add --force to replace its model files`);
  }
  const source = resolveSource(v);
  const started = Date.now();
  const written = writeModelFolder({
    outDir: v.out,
    config: source.config,
    weights: source.weights,
    tokenizer: source.tokenizer,
    layout,
    decoder,
    quantize,
    quantizeVision,
    accuracyLevel,
    blockSize,
    lmHead,
    logits,
    externalData: v['external-data'] ? true : 'auto',
    overwrite: v.force,
    source: source.label,
    onProgress: progressReporter(),
  });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  process.stdout.write(
    `wrote ${written.dir} (${layout}, ${decoder} decoder, ${written.variant}) in ${seconds} s:\n${written.files.map((f) => `  ${f}`).join('\n')}\n`,
  );
  return 0;
}
