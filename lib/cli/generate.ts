// `llava generate`: caption an image or answer a question about it from the command line.
import * as fs from 'fs';
import { parseArgs } from 'util';
import { getRuntime } from '../runtime';
import { isProviderChoice, PROVIDER_CHOICES } from '../runtime/providers';
import type { ProviderPreference } from '../runtime/types';
import { assertDecodable } from '../pipeline/image-preprocess';
import { LlavaModel } from '../pipeline/llava-model';
import { GENERATION_OPTION_NAMES, GENERATION_OPTION_SPECS, generationFlagsUsage } from '../pipeline/generation/option-spec';
import type { GenerationOptions } from '../pipeline/types';
import { MODEL_HELP, modelFolder } from './hub-model';
import { UsageError } from './usage-error';

export const usage = `usage: llava generate --model DIR|ORG/NAME[@REV] [--no-pull] --image FILE [--prompt TEXT] [--preset NAME] [--variant auto|fp32|fp16|q4|int8…]
       ${generationFlagsUsage()}
       [--max-input-pixels N] [--provider ${PROVIDER_CHOICES.join('|')}] [--threads N] [--json] [--verbose]
A --prompt containing <image> is used as written; otherwise it is the question put into the preset's template.
--max-input-pixels refuses larger images before decoding them (default 100000000).
${MODEL_HELP}`;

const OPTIONS = {
  model: { type: 'string' },
  'no-pull': { type: 'boolean' },
  image: { type: 'string' },
  prompt: { type: 'string' },
  preset: { type: 'string' },
  variant: { type: 'string' },
  ...generationFlags(),
  greedy: { type: 'boolean' },
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

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'];

/** parseArgs options for the generation flags, from the option specs: numbers are read as text and checked here. */
function generationFlags(): Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> {
  const flags: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {};
  for (const name of GENERATION_OPTION_NAMES) {
    const { flag, kind } = GENERATION_OPTION_SPECS[name];
    if (flag) flags[flag] = kind === 'boolean' ? { type: 'boolean' } : kind === 'strings' ? { type: 'string', multiple: true } : { type: 'string' };
  }
  return flags;
}

/** The generation options the flags set; their ranges are checked with the request, like every other caller's. */
function generationOptions(v: Values): Partial<GenerationOptions> {
  const given = v as Record<string, string | string[] | boolean | undefined>;
  const options: Record<string, unknown> = {};
  const sampling: string[] = [];
  for (const name of GENERATION_OPTION_NAMES) {
    const spec = GENERATION_OPTION_SPECS[name];
    const value = spec.flag === undefined ? undefined : given[spec.flag];
    if (value === undefined) continue;
    if (spec.sampling) sampling.push(spec.flag!);
    options[name] = spec.kind === 'integer' || spec.kind === 'number' ? number(value as string, spec.flag!, spec.kind === 'integer') : value;
  }
  if (v.greedy && sampling.length) throw new UsageError(`--greedy cannot be combined with --${sampling.join(', --')}`);
  if (v.greedy) options.doSample = false;
  else if (sampling.length) options.doSample = true;
  return options as Partial<GenerationOptions>;
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
  if (!v.model) throw new UsageError('--model DIR or --model org/name is required');
  if (!v.image) throw new UsageError('--image FILE is required');
  if (v.provider && !isProviderChoice(v.provider)) throw new UsageError(`--provider must be one of ${PROVIDER_CHOICES.join(', ')}`);
  const options = generationOptions(v);
  const maxInputPixels = number(v['max-input-pixels'], 'max-input-pixels', true);
  if (maxInputPixels !== undefined && maxInputPixels < 1) throw new UsageError('--max-input-pixels must be at least 1');
  const image = readImage(v.image);
  await assertDecodable(image, maxInputPixels);
  try {
    const model = await LlavaModel.load(await modelFolder(v.model, { variant: v.variant, noPull: v['no-pull'] }), {
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
