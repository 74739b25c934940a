// `llava generate`: caption an image or answer a question about it from the command line.
import * as fs from 'fs';
import type { parseArgs } from 'util';
import { getRuntime } from '../runtime';
import { isProviderChoice, PROVIDER_CHOICES } from '../runtime/providers';
import type { ProviderPreference } from '../runtime/types';
import { assertDecodable } from '../pipeline/image-preprocess';
import { LlavaModel } from '../pipeline/llava-model';
import { GENERATION_OPTION_NAMES, GENERATION_OPTION_SPECS, generationFlagsUsage } from '../pipeline/generation/option-spec';
import type { GenerationOptions, JsonFormat } from '../pipeline/types';
import { compileJsonFormat, openAiResponseFormat, parseCheckedJsonAnswer } from '../pipeline/generation/json-schema';
import { IMAGE_MARKER } from '../pipeline/templates';
import { RemoteEngine } from '../engine/remote-engine';
import { apiKey, number, parseOptions } from './args';
import { MODEL_HELP, modelFolder } from './hub-model';
import { UsageError } from './usage-error';

export const usage = `usage: llava generate (--model DIR|ORG/NAME[@REV] [--no-pull] | --engine URL --engine-model NAME [--api-key K] [--image-max-side N])
       --image FILE [--prompt TEXT] [--preset NAME] [--variant V|GRAPH=V,…]
       ${generationFlagsUsage()}
       [--format text|json] [--json-schema FILE|JSON] [--max-input-pixels N] [--provider ${PROVIDER_CHOICES.join('|')}] [--threads N]
       [--json] [--verbose]
A --prompt containing <image> is used as written; otherwise it is the question put into the preset's template.
--variant: auto (default), one of fp32 fp16 q8 int8 uint8 q4 q4f16 q2 q2f16 q1 q1f16 bnb4, or per graph:
vision_encoder=fp16,embed_tokens=fp16,decoder_model_merged=q4.
--max-time stops the answer after SECONDS (prefill included) and keeps the text so far (finish_reason "time").
--max-input-pixels refuses larger images before decoding them (default 100000000).
--format json constrains the answer to a JSON object, --json-schema (a file or the schema itself) to a value matching
the schema (see the README for the supported subset); the parsed answer is printed as one line of JSON. An answer cut
off by --max-new-tokens before its JSON closes is an error that shows the partial text.
${MODEL_HELP}
--engine sends the request to an OpenAI-compatible server (llava serve, vLLM, llama-server, Ollama's /v1…) instead
of running the model here; the API key may come from LLAVA_API_KEY instead of --api-key. Beams, top-k, min-p,
repetition and length penalties, min-new-tokens and ignore-eos are not part of that API and are refused.`;

const OPTIONS = {
  model: { type: 'string' },
  'no-pull': { type: 'boolean' },
  engine: { type: 'string' },
  'engine-model': { type: 'string' },
  'api-key': { type: 'string' },
  'image-max-side': { type: 'string' },
  image: { type: 'string' },
  prompt: { type: 'string' },
  preset: { type: 'string' },
  variant: { type: 'string' },
  ...generationFlags(),
  greedy: { type: 'boolean' },
  format: { type: 'string' },
  'json-schema': { type: 'string' },
  'max-input-pixels': { type: 'string' },
  provider: { type: 'string' },
  threads: { type: 'string' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
} as const;

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
  return options;
}

/** --format / --json-schema: the JSON format, checked (an unsupported keyword fails before the model loads). */
function jsonFormat(v: Values): JsonFormat | undefined {
  if (v.format !== undefined && v.format !== 'text' && v.format !== 'json') throw new UsageError(`--format must be text or json, got "${v.format}"`);
  const given = v['json-schema'];
  if (given === undefined) return v.format === 'json' ? compiled({ type: 'json' }) : undefined;
  if (v.format === 'text') throw new UsageError('--json-schema needs --format json (or no --format)');
  let schema = given;
  if (!given.trimStart().startsWith('{')) {
    try {
      schema = fs.readFileSync(given, 'utf8');
    } catch (e) {
      throw new UsageError(`--json-schema: "${given}" is neither a readable file (${(e as NodeJS.ErrnoException).code}) nor a JSON schema`);
    }
  }
  return compiled({ type: 'json_schema', schema });
}

function compiled(format: JsonFormat): JsonFormat {
  try {
    compileJsonFormat(format);
  } catch (e) {
    throw new UsageError(`--json-schema: ${(e as Error).message}`);
  }
  return format;
}

function parse(argv: string[]): Values {
  return parseOptions(argv, OPTIONS) as Values;
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
  if (v.engine) return runRemote(v, out);
  if (!v.model) throw new UsageError('--model DIR, --model org/name or --engine URL is required');
  if (!v.image) throw new UsageError('--image FILE is required');
  if (v.provider && !isProviderChoice(v.provider)) throw new UsageError(`--provider must be one of ${PROVIDER_CHOICES.join(', ')}`);
  const format = jsonFormat(v);
  const options = { ...generationOptions(v), ...(format ? { format } : {}) };
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
        onText: v.json || format ? undefined : (delta) => out.write(delta),
      });
      out.write(
        v.json
          ? JSON.stringify({
              ...(format ? { value: result.json } : {}),
              text: result.text,
              token_ids: result.tokenIds,
              prompt_token_count: result.promptTokenCount,
              image_token_count: result.imageTokenCount,
              provider: result.provider,
              finish_reason: result.finishReason,
              timings: result.timings,
            }) + '\n'
          : format
            ? JSON.stringify(result.json) + '\n'
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

/** `--engine URL`: the same request through an OpenAI-compatible server. */
async function runRemote(v: Values, out: NodeJS.WritableStream): Promise<number> {
  if (v.model) throw new UsageError('give --model or --engine, not both');
  if (!v['engine-model']) throw new UsageError('--engine-model NAME is required with --engine (the name the server serves)');
  if (!v.image) throw new UsageError('--image FILE is required');
  for (const local of ['preset', 'variant', 'provider', 'threads'] as const) {
    if (v[local] !== undefined) throw new UsageError(`--${local} is for a local model; the server at --engine chooses its own`);
  }
  if (v.prompt?.includes(IMAGE_MARKER))
    throw new UsageError('with --engine, --prompt is the question only: the server writes the prompt with its own template');
  const engine = new RemoteEngine({
    baseUrl: v.engine!,
    model: v['engine-model'],
    apiKey: apiKey(v['api-key']),
    imageMaxSide: number(v['image-max-side'], 'image-max-side', true),
  });
  const format = jsonFormat(v);
  const controller = new AbortController();
  const stop = () => controller.abort(new Error('interrupted'));
  process.once('SIGINT', stop);
  try {
    const result = await engine.generate({
      image: readImage(v.image),
      chat: v.prompt === undefined ? {} : { question: v.prompt },
      options: generationOptions(v),
      // The server constrains the answer; it is checked against the schema here.
      ...(format ? { responseFormat: openAiResponseFormat(format) } : {}),
      maxInputPixels: number(v['max-input-pixels'], 'max-input-pixels', true),
      signal: controller.signal,
      onEvent: v.json || format ? undefined : (e) => e.type === 'text' && out.write(e.delta),
    });
    const value = format ? parseCheckedJsonAnswer(result.text, result.finishReason, result.usage?.completionTokens ?? 0, format) : undefined;
    out.write(
      v.json
        ? JSON.stringify({
            ...(format ? { value } : {}),
            text: result.text,
            finish_reason: result.finishReason,
            usage: result.usage ?? null,
            engine: result.ranOn,
            timings: result.timings,
          }) + '\n'
        : format
          ? JSON.stringify(value) + '\n'
          : '\n',
    );
    return 0;
  } finally {
    process.off('SIGINT', stop);
    await engine.close();
  }
}
