// `llava serve`: this project's runtime as an OpenAI-compatible server, so one machine with the model serves many
// Node-RED instances (or any OpenAI client).
import * as fs from 'fs';
import * as path from 'path';
import { looksLikeRepoId } from '../hub/repo-id';
import { LocalEngine } from '../engine/local-engine';
import { DEFAULT_MAX_BODY_BYTES, OpenAiServer } from '../engine/openai-server';
import { LlavaModel } from '../pipeline/llava-model';
import { getRuntime } from '../runtime';
import type { ProviderPreference } from '../runtime/types';
import { isProviderChoice, PROVIDER_CHOICES } from '../runtime/providers';
import { apiKey, number, parseOptions } from './args';
import { MODEL_HELP, modelFolder } from './hub-model';
import { UsageError } from './usage-error';

export const usage = `usage: llava serve --model DIR|ORG/NAME[@REV] [--no-pull] [--model-name NAME] [--host 127.0.0.1] [--port 8080] [--api-key K]
       [--parallel N] [--queue N] [--max-body-mb N] [--allow-remote-images] [--max-input-pixels N]
       [--preset NAME] [--variant auto|fp32|q4|…] [--provider auto|cpu|cuda|webgpu] [--threads N]
Serves GET /v1/models, POST /v1/chat/completions (plain and streaming; one image per request as a data: URI in
the first user message) and GET /health (503 while the model loads or downloads). --model-name is the id
clients send as "model" (default: the Hub id, or the folder's name). Listens on loopback unless --host says otherwise; --api-key (or the
LLAVA_API_KEY environment variable, which stays out of the process list) makes /v1/* require
"Authorization: Bearer K". --parallel generations run at once (default 1; one machine's runtime runs one ORT call
at a time, so more only overlaps image decoding and streaming), --queue more wait (default 16), later ones get 429.
Requests over --max-body-mb (default 20) get 413. http(s) image URLs are refused unless --allow-remote-images.
Omitted temperature means the model preset's decoding; temperature 0 is greedy. A request's max_time (seconds, an
extension of the API) ends its answer there, keeping the text so far, with finish_reason "time". The first line on stdout is
"listening on http://HOST:PORT".
${MODEL_HELP}`;

const OPTIONS = {
  model: { type: 'string' },
  'no-pull': { type: 'boolean' },
  'model-name': { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  'api-key': { type: 'string' },
  parallel: { type: 'string' },
  queue: { type: 'string' },
  'max-body-mb': { type: 'string' },
  'allow-remote-images': { type: 'boolean' },
  'max-input-pixels': { type: 'string' },
  preset: { type: 'string' },
  variant: { type: 'string' },
  provider: { type: 'string' },
  threads: { type: 'string' },
  verbose: { type: 'boolean' },
} as const;

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** Runs until SIGINT or SIGTERM; resolves with the exit code. */
export async function run(argv: string[]): Promise<number> {
  const v = parseOptions(argv, OPTIONS);
  if (!v.model) throw new UsageError('--model DIR is required');
  if (v.provider && !isProviderChoice(v.provider)) throw new UsageError(`--provider must be one of ${PROVIDER_CHOICES.join(', ')}`);
  const host = v.host ?? '127.0.0.1';
  const port = number(v.port, 'port', true) ?? 8080;
  const parallel = number(v.parallel, 'parallel', true) ?? 1;
  const queue = number(v.queue, 'queue', true) ?? 16;
  if (parallel < 1) throw new UsageError('--parallel must be at least 1');
  if (queue < 0) throw new UsageError('--queue must be at least 0');
  const maxBodyMb = number(v['max-body-mb'], 'max-body-mb');
  if (maxBodyMb !== undefined && !(maxBodyMb > 0)) throw new UsageError('--max-body-mb must be positive');
  const key = apiKey(v['api-key']);
  const modelName = v['model-name'] ?? (!fs.existsSync(v.model) && looksLikeRepoId(v.model) ? v.model : path.basename(path.resolve(v.model)));
  const log = (line: string) => process.stderr.write(`llava serve: ${line}\n`);
  if (!LOOPBACK.has(host) && !key) log(`warning: listening on ${host} without an API key: anyone who reaches this port can use the model`);

  // A Hub id is pulled into the Hub cache (or found there) while /health already answers 503.
  const loading = modelFolder(v.model, { variant: v.variant, noPull: v['no-pull'] })
    .then((dir) =>
      LlavaModel.load(dir, {
        preset: v.preset,
        variant: v.variant,
        providers: v.provider as ProviderPreference | undefined,
        threads: number(v.threads, 'threads', true),
      }),
    )
    .then((model) => new LocalEngine(model));
  const server = new OpenAiServer({
    engine: loading,
    modelName,
    apiKey: key,
    parallel,
    maxQueue: queue,
    maxBodyBytes: maxBodyMb === undefined ? DEFAULT_MAX_BODY_BYTES : Math.round(maxBodyMb * 1024 * 1024),
    allowRemoteImages: v['allow-remote-images'] === true,
    maxInputPixels: number(v['max-input-pixels'], 'max-input-pixels', true),
    onRequest: v.verbose ? log : undefined,
  });
  const address = await server.listen(port, host);
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  process.stdout.write(`listening on http://${shown}:${address.port}\n`);
  try {
    const engine = await loading;
    log(`model "${modelName}" loaded (${engine.label})`);
  } catch (err) {
    await server.close().catch(() => undefined);
    throw new Error(`cannot load the model: ${(err as Error).message}`);
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  log('shutting down');
  await server.close();
  await getRuntime().dispose();
  return 0;
}
