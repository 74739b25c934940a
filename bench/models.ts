// The benchmark's model folders, built with the project's builder (random weights) and cached under .cache/bench.
// A folder is reused when its recorded build spec and builder fingerprint match; otherwise it is rebuilt.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { architecture, withTinyTokenizer } from '../lib/onnx/architectures';
import type { DecoderVariant } from '../lib/onnx/decoder';
import { randomWeights } from '../lib/onnx/random-weights';
import { QUANT_VARIANT, QuantizeName, writeModelFolder } from '../lib/onnx/write-model';
import type { LlavaConfig, TextConfig } from '../lib/model/config';
import { GgufType, writeGguf } from './gguf';

export interface ModelSpec {
  /** Short name in the table. */
  name: string;
  arch: string;
  textLayers?: number;
  visionLayers?: number;
  /** Text decoder widths over the architecture's (a size between the tiny and the real ones). */
  text?: Partial<TextConfig>;
  decoder: DecoderVariant;
  quantize?: QuantizeName;
  /** The vision tower's weights quantized too (llava build --quantize-vision): a TTFT row, ours only. */
  quantizeVision?: QuantizeName;
}

export interface BuiltModel {
  spec: ModelSpec;
  dir: string;
  variant: string;
  /** Bytes of the decoder graph and its external data: what one decode step reads. */
  decoderBytes: number;
  /** Bytes of every graph the pipeline loads for this variant. */
  modelBytes: number;
  decoderFile: string;
}

const MARKER = 'bench-spec.json';
const WEIGHT_SEED = 1;
/** Compiled sources that decide what the builder writes: a change to any of them rebuilds the cached folders. */
const BUILDER_DIRS = [path.join(__dirname, '..', 'lib', 'onnx'), path.join(__dirname, '..', 'lib', 'model')];

function builderFingerprint(): string {
  const hash = crypto.createHash('sha256');
  for (const dir of BUILDER_DIRS) {
    for (const f of fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.js'))
      .sort()) {
      hash.update(f).update(fs.readFileSync(path.join(dir, f)));
    }
  }
  return hash.digest('hex').slice(0, 16);
}

/** Vision layers built for the real-width models (LLaVA uses layer −2, so one fewer runs). */
export const BENCH_VISION_LAYERS = 4;

const VARIANTS: Array<Pick<ModelSpec, 'decoder' | 'quantize' | 'quantizeVision'>> = [
  { decoder: 'portable' },
  { decoder: 'optimized' },
  { decoder: 'optimized', quantize: 'int4' },
  { decoder: 'optimized', quantize: 'int4', quantizeVision: 'int8' },
];

export function modelSpecs(quick: boolean): ModelSpec[] {
  const families: Array<Omit<ModelSpec, 'decoder' | 'quantize' | 'quantizeVision'>> = [
    { name: 'tiny', arch: 'tiny' },
    // ~175 MB fp32 decoder: a step takes a few ms, so per-token costs outside onnxruntime show.
    {
      name: '8x512',
      arch: 'llava-0.5b',
      visionLayers: 2,
      text: { hidden_size: 512, num_hidden_layers: 8, num_attention_heads: 8, num_key_value_heads: 8, intermediate_size: 1536, vocab_size: 32000 },
    },
    { name: '0.5b', arch: 'llava-0.5b', visionLayers: BENCH_VISION_LAYERS },
    ...(quick ? [] : [{ name: '7b-2L', arch: 'llava-1.5-7b', textLayers: 2, visionLayers: BENCH_VISION_LAYERS }]),
  ];
  return families.flatMap((f) => VARIANTS.map((v) => ({ ...f, ...v })));
}

export function variantLabel(spec: ModelSpec): string {
  return `${spec.decoder} ${spec.quantize ?? 'fp32'}${spec.quantizeVision ? `, ${spec.quantizeVision} vision` : ''}`;
}

export function folderName(spec: ModelSpec): string {
  return `${spec.name}-${spec.decoder}-${spec.quantize ?? 'fp32'}${spec.quantizeVision ? `-vision-${spec.quantizeVision}` : ''}`;
}

function fileBytes(dir: string, names: string[]): number {
  let total = 0;
  for (const n of names) {
    for (const f of [n, `${n}_data`]) {
      const p = path.join(dir, 'onnx', f);
      if (fs.existsSync(p)) total += fs.statSync(p).size;
    }
  }
  return total;
}

export function ensureModel(spec: ModelSpec, cacheDir: string, log: (line: string) => void): BuiltModel {
  const dir = path.join(cacheDir, folderName(spec));
  const marker = path.join(dir, MARKER);
  const recorded = fs.existsSync(marker) ? fs.readFileSync(marker, 'utf8') : null;
  const wanted = JSON.stringify({ spec, builder: builderFingerprint() });
  if (recorded !== wanted) {
    const started = Date.now();
    const arch = withTinyTokenizer(architecture(spec.arch, { textLayers: spec.textLayers, visionLayers: spec.visionLayers }));
    Object.assign(arch.config.text_config, spec.text);
    fs.rmSync(dir, { recursive: true, force: true });
    writeModelFolder({
      outDir: dir,
      config: arch.config,
      weights: randomWeights(arch.config, WEIGHT_SEED),
      tokenizer: { kind: arch.tokenizer === 'tiny-qwen2' ? 'tiny-qwen2' : 'tiny-llama' },
      decoder: spec.decoder,
      quantize: spec.quantize,
      quantizeVision: spec.quantizeVision,
      // The generation loop reads the last position's logits only; transformers.js slices the same row.
      logits: 'last',
    });
    fs.writeFileSync(marker, wanted);
    log(`built ${folderName(spec)} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
  const { variant, suffix } = spec.quantize ? QUANT_VARIANT[spec.quantize] : { variant: 'fp32', suffix: '' };
  const decoderName = `decoder_model_merged${suffix}.onnx`;
  return {
    spec,
    dir,
    variant,
    decoderBytes: fileBytes(dir, [decoderName]),
    modelBytes: fileBytes(dir, ['vision_encoder.onnx', 'embed_tokens.onnx', decoderName]),
    decoderFile: path.join(dir, 'onnx', decoderName),
  };
}

/**
 * The llama.cpp counterpart of an optimized folder: its text decoder's weights (the same seeded values) as a GGUF,
 * F32 for fp32 and Q4_0 for int4 (every matrix, like `llama-quantize --pure`: our int4 quantizes every matrix too).
 * Written next to the folder's graphs, so a rebuilt folder gets a new one.
 */
export function ensureGguf(model: BuiltModel, log: (line: string) => void): string | null {
  const types: Record<string, GgufType> = { fp32: 'F32', int4: 'Q4_0' };
  const type = model.spec.decoder === 'optimized' && !model.spec.quantizeVision ? types[model.spec.quantize ?? 'fp32'] : undefined;
  if (!type) return null;
  const file = path.join(model.dir, `llama-cpp-${type}.gguf`);
  if (!fs.existsSync(file)) {
    const started = Date.now();
    const config = JSON.parse(fs.readFileSync(path.join(model.dir, 'config.json'), 'utf8')) as LlavaConfig;
    const partial = `${file}.partial`;
    writeGguf(partial, config, randomWeights(config, WEIGHT_SEED), type);
    fs.renameSync(partial, file);
    log(`wrote ${path.basename(model.dir)}/${path.basename(file)} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
  return file;
}
