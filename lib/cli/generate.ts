// `llava generate`: caption an image or answer a question about it from the command line.
import * as fs from 'fs';
import { parseArgs } from 'util';
import { getRuntime } from '../runtime';
import type { ProviderPreference } from '../runtime/types';
import { assertDecodable } from '../pipeline/image-preprocess';
import { LlavaModel } from '../pipeline/llava-model';
import type { GenerationOptions } from '../pipeline/types';
import { UsageError } from './usage-error';

export const usage = `usage: llava generate --model DIR --image FILE [--prompt TEXT] [--preset NAME] [--variant V|GRAPH=V,…]
       [--max-new-tokens N] [--min-new-tokens N] [--greedy | --temperature T --top-k K --top-p P --min-p P --seed S]
       [--repetition-penalty R] [--num-beams B] [--length-penalty L] [--stop TEXT]… [--ignore-eos]
       [--max-input-pixels N] [--provider auto|cpu|cuda|webgpu] [--threads N] [--json] [--verbose]
A --prompt containing <image> is used as written; otherwise it is the question put into the preset's template.
--variant: auto (default), one of fp32 fp16 q8 int8 uint8 q4 q4f16 q2 q2f16 q1 q1f16 bnb4, or per graph:
vision_encoder=fp16,embed_tokens=fp16,decoder_model_merged=q4.
--max-input-pixels refuses larger images before decoding them (default 100000000).`;

const OPTIONS = {
  model: { type: 'string' },
  image: { type: 'string' },
  prompt: { type: 'string' },
  preset: { type: 'string' },
  variant: { type: 'string' },
  'max-new-tokens': { type: 'string' },
  'min-new-tokens': { type: 'string' },
  greedy: { type: 'boolean' },
  temperature: { type: 'string' },
  'top-k': { type: 'string' },
  'top-p': { type: 'string' },
  'min-p': { type: 'string' },
  seed: { type: 'string' },
  'repetition-penalty': { type: 'string' },
  'num-beams': { type: 'string' },
  'length-penalty': { type: 'string' },
  stop: { type: 'string', multiple: true },
  'ignore-eos': { type: 'boolean' },
  'max-input-pixels': { type: 'string' },
  provider: { type: 'string' },
  threads: { type: 'string' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
} as const;

function number(value: string | undefined, flag: string, integer = false): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${flag} must be ${integer ? 'an integer' : 'a number'}, got "${value}"`);
  }
  return n;
}

const PROVIDERS = ['auto', 'cpu', 'cuda', 'webgpu'];

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'];

function generationOptions(v: Values): Partial<GenerationOptions> {
  const sampling = ['temperature', 'top-k', 'top-p', 'min-p', 'seed'].filter((k) => v[k as keyof Values] !== undefined);
  if (v.greedy && sampling.length) throw new UsageError(`--greedy cannot be combined with --${sampling.join(', --')}`);
  const options: Partial<GenerationOptions> = {
    maxNewTokens: number(v['max-new-tokens'], 'max-new-tokens', true),
    minNewTokens: number(v['min-new-tokens'], 'min-new-tokens', true),
    temperature: number(v.temperature, 'temperature'),
    topK: number(v['top-k'], 'top-k', true),
    topP: number(v['top-p'], 'top-p'),
    minP: number(v['min-p'], 'min-p'),
    seed: number(v.seed, 'seed', true),
    repetitionPenalty: number(v['repetition-penalty'], 'repetition-penalty'),
    numBeams: number(v['num-beams'], 'num-beams', true),
    lengthPenalty: number(v['length-penalty'], 'length-penalty'),
    stopStrings: v.stop,
    ignoreEos: v['ignore-eos'],
  };
  if (v.greedy) options.doSample = false;
  else if (sampling.length) options.doSample = true;
  return Object.fromEntries(Object.entries(options).filter(([, x]) => x !== undefined));
}

function parse(argv: string[]): Values {
  try {
    return parseArgs({ args: argv, options: OPTIONS, allowPositionals: false, strict: true }).values;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function readImage(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new Error(`cannot read image ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** Streams the text to stdout, or with --json prints one JSON object as the last line. */
export async function run(argv: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const v = parse(argv);
  if (!v.model) throw new UsageError('--model DIR is required');
  if (!v.image) throw new UsageError('--image FILE is required');
  if (v.provider && !PROVIDERS.includes(v.provider)) throw new UsageError(`--provider must be one of ${PROVIDERS.join(', ')}`);
  const options = generationOptions(v);
  const maxInputPixels = number(v['max-input-pixels'], 'max-input-pixels', true);
  if (maxInputPixels !== undefined && maxInputPixels < 1) throw new UsageError('--max-input-pixels must be at least 1');
  const image = readImage(v.image);
  await assertDecodable(image, maxInputPixels);
  try {
    const model = await LlavaModel.load(v.model, {
      preset: v.preset,
      variant: v.variant,
      providers: v.provider as ProviderPreference | undefined,
      threads: number(v.threads, 'threads', true),
    });
    try {
      const result = await model.describe({
        image,
        prompt: v.prompt,
        preprocess: maxInputPixels === undefined ? undefined : { maxInputPixels },
        options,
        onText: v.json ? undefined : (delta) => out.write(delta),
      });
      out.write(
        v.json
          ? JSON.stringify({
              text: result.text,
              token_ids: result.tokenIds,
              prompt_token_count: result.promptTokenCount,
              image_token_count: result.imageTokenCount,
              provider: result.provider,
              finish_reason: result.finishReason,
              timings: result.timings,
            }) + '\n'
          : '\n',
      );
    } finally {
      model.close();
    }
    return 0;
  } finally {
    await getRuntime().dispose();
  }
}
