// This project's pipeline as a user runs it: LlavaModel stages one by one, timed, with the main thread's
// event-loop delay watched while the generation task runs in the inference worker.
import * as fs from 'fs';
import { monitorEventLoopDelay } from 'perf_hooks';
import { LlavaModel } from '../../lib/pipeline/llava-model';
import { getRuntime } from '../../lib/runtime';
import { CaseInput, CaseOutput, peakRssBytes, RunFigures } from './types';

export async function runOurs(input: CaseInput): Promise<CaseOutput> {
  const bytes = fs.readFileSync(input.image);
  // Prefix reuse off: every engine prefills the whole prompt, image tokens included.
  const model = await LlavaModel.load(input.model.dir, { variant: input.model.variant, prefixReuse: false });
  const options = { maxNewTokens: input.tokens, ignoreEos: true, doSample: false };
  const runs: RunFigures[] = [];
  try {
    // Warm-up: sharp and the vision session run once before timing (as for transformers.js).
    await model.releaseImage(await model.project(await model.encodeImage(await model.preprocess(bytes))));
    for (let r = 0; r < input.repeats; r++) {
      const pre = await model.preprocess(bytes);
      const features = await model.encodeImage(pre);
      const projected = await model.project(features);
      // A 10 ms sampling timer: a 1 ms one would itself wake the main thread 1000 times a second next to the
      // inference threads; stalls still show at their full length.
      const delay = monitorEventLoopDelay({ resolution: 10 });
      delay.enable();
      const result = await model.generate({ prompt: model.prompt({ prompt: input.prompt }), image: projected, options });
      delay.disable();
      const t = result.timings;
      const steps = result.tokenIds.length - 1;
      runs.push({
        preprocess_ms: pre.ms,
        vision_ms: features.ms,
        projector_ms: projected.ms,
        prefill_ms: t.prefill_ms,
        ttft_ms: pre.ms + features.ms + projected.ms + t.first_token_ms,
        decode_tok_s: steps > 0 ? (steps * 1000) / t.decode_ms : NaN,
        event_loop_max_ms: delay.max / 1e6,
        prompt_tokens: result.promptTokenCount,
      });
    }
  } finally {
    model.close();
    await getRuntime().dispose();
  }
  return { runs, peakRssBytes: peakRssBytes() };
}
