// Tiny LLaVA model folders built at test time with the project's own builder, once per process per variant.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { architecture, ArchitectureOverrides } from '../../lib/onnx/architectures';
import type { LlavaConfig } from '../../lib/model/config';
import type { ModelLayout } from '../../lib/model/folder';
import type { DecoderVariant } from '../../lib/onnx/decoder';
import { randomWeights } from '../../lib/onnx/random-weights';
import type { WeightSource } from '../../lib/onnx/weights';
import { QuantizeName, writeModelFolder } from '../../lib/onnx/write-model';

export interface TinyModelOptions {
  arch?: 'tiny' | 'tiny-qwen2' | 'tiny-siglip';
  layout?: ModelLayout;
  decoder?: DecoderVariant;
  quantize?: QuantizeName;
  overrides?: ArchitectureOverrides;
  seed?: number;
  /** Recorded in config.json as the folder's preset. */
  source?: string;
}

export interface TinyModel {
  dir: string;
  config: LlavaConfig;
  weights: WeightSource;
  variant: string;
}

const built = new Map<string, TinyModel>();
let root: string | null = null;

export function tinyModel(options: TinyModelOptions = {}): TinyModel {
  const key = JSON.stringify(options);
  const cached = built.get(key);
  if (cached) return cached;
  if (!root) {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-tiny-'));
    process.once('exit', () => fs.rmSync(root as string, { recursive: true, force: true }));
  }
  const arch = architecture(options.arch ?? 'tiny', options.overrides);
  const weights = randomWeights(arch.config, options.seed ?? 7);
  const dir = path.join(root, `m${built.size}`);
  const written = writeModelFolder({
    outDir: dir,
    config: arch.config,
    weights,
    tokenizer: { kind: arch.tokenizer === 'tiny-qwen2' ? 'tiny-qwen2' : 'tiny-llama' },
    layout: options.layout,
    decoder: options.decoder,
    quantize: options.quantize,
    source: options.source,
  });
  const model: TinyModel = { dir, config: arch.config, weights, variant: written.variant };
  built.set(key, model);
  return model;
}
