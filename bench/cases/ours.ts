// This project's pipeline as a user runs it: LlavaModel stages one by one, timed, with the main thread's
// event-loop delay watched while the generation task runs in the inference worker. The first frame after the
// load is reported apart (first_* fields) from the frames after it.
import * as fs from 'fs';
import { monitorEventLoopDelay } from 'perf_hooks';
import { LlavaModel } from '../../lib/pipeline/llava-model';
import { getRuntime } from '../../lib/runtime';
import { CaseInput, CaseOutput, peakRssBytes, RunFigures } from './types';

/**
 * The event-loop monitor's timer period. A 1 ms one would itself wake the main thread 1000 times a second next to
 * the inference threads; stalls still show at their full length. Its histogram records the whole interval between
 * two ticks (an idle loop reads min ~9.2, mean ~10.8 ms at 10 ms), so the period is subtracted: what remains is how
 * late the main thread got to run.
 */
const DELAY_RESOLUTION_MS = 10;

async function frame(model: LlavaModel, bytes: Buffer, input: CaseInput): Promise<RunFigures> {
  const options = { maxNewTokens: input.tokens, ignoreEos: true, doSample: false };
  const pre = await model.preprocess(bytes);
  const features = await model.encodeImage(pre);
  const projected = await model.project(features);
  const delay = monitorEventLoopDelay({ resolution: DELAY_RESOLUTION_MS });
  delay.enable();
  const result = await model.generate({ prompt: model.prompt({ prompt: input.prompt }), image: projected, options });
  delay.disable();
  const t = result.timings;
  const steps = result.tokenIds.length - 1;
  return {
    preprocess_ms: pre.ms,
    vision_ms: features.ms,
    projector_ms: projected.ms,
    prefill_ms: t.prefill_ms,
    ttft_ms: pre.ms + features.ms + projected.ms + t.first_token_ms,
    decode_tok_s: steps > 0 ? (steps * 1000) / t.decode_ms : NaN,
    event_loop_max_ms: delay.max / 1e6 - DELAY_RESOLUTION_MS,
    prompt_tokens: result.promptTokenCount,
  };
}

export async function runOurs(input: CaseInput): Promise<CaseOutput> {
  const bytes = fs.readFileSync(input.image);
  const started = performance.now();
  if (input.niceness !== undefined) getRuntime({ niceness: input.niceness });
  // Prefix reuse off: every engine prefills the whole prompt, image tokens included.
  const model = await LlavaModel.load(input.model.dir, {
    variant: input.model.variant,
    prefixReuse: false,
    warmup: input.warmup ?? true,
    sessionConfig: input.sessionConfig,
    kvCache: input.kvCache,
  });
  const loaded = { load_ms: performance.now() - started, warmup_ms: model.warmup?.ms ?? 0 };
  const runs: RunFigures[] = [];
  try {
    const first = await frame(model, bytes, input);
    for (let r = 0; r < input.repeats; r++) {
      runs.push({
        ...(await frame(model, bytes, input)),
        ...loaded,
        first_vision_ms: first.vision_ms,
        first_prefill_ms: first.prefill_ms,
        first_ttft_ms: first.ttft_ms,
        first_decode_tok_s: first.decode_tok_s,
      });
    }
  } finally {
    model.close();
    await getRuntime().dispose();
  }
  return { runs, peakRssBytes: peakRssBytes() };
}
