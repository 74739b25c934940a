// transformers.js (devDependency) on the same model folder: its processor and LlavaForConditionalGeneration,
// greedy, the same prompt, image and token count. Vision time is read by wrapping its encode_image.
import * as path from 'path';
import { AutoProcessor, BaseStreamer, env, LlavaForConditionalGeneration, RawImage } from '@huggingface/transformers';
import { CaseInput, CaseOutput, peakRssBytes, RunFigures } from './types';

/** Records when generate() pushes each token (its first put is the prompt). */
class TokenClock extends BaseStreamer {
  times: number[] = [];
  override put(): void {
    this.times.push(performance.now());
  }
  override end(): void {}
}

export async function runTransformersJs(input: CaseInput): Promise<CaseOutput> {
  env.allowRemoteModels = false;
  env.localModelPath = path.dirname(input.model.dir);
  const name = path.basename(input.model.dir);
  const model = await LlavaForConditionalGeneration.from_pretrained(name, {
    device: 'cpu',
    local_files_only: true,
    dtype: { vision_encoder: 'fp32', embed_tokens: 'fp32', decoder_model_merged: input.model.variant as 'fp32' | 'q4' },
  });
  const processor = await AutoProcessor.from_pretrained(name, { local_files_only: true });
  let visionMs = 0;
  const m = model as unknown as { encode_image: (x: unknown) => Promise<unknown> };
  const encode = m.encode_image.bind(model);
  m.encode_image = async (x: unknown) => {
    const t0 = performance.now();
    const out = await encode(x);
    visionMs = performance.now() - t0;
    return out;
  };
  const once = async (tokens: number) => {
    const t0 = performance.now();
    const image = await RawImage.read(input.image);
    const inputs = await processor(image, input.prompt);
    const preprocessMs = performance.now() - t0;
    const clock = new TokenClock();
    const g0 = performance.now();
    await model.generate({ ...inputs, max_new_tokens: tokens, min_new_tokens: tokens, do_sample: false, streamer: clock });
    return { preprocessMs, g0, clock, promptTokens: inputs.input_ids.dims[1] as number };
  };
  const runs: RunFigures[] = [];
  try {
    // Warm-up: the processor (sharp) and the vision session run once before timing, as in the pipeline's case.
    await m.encode_image({ pixel_values: (await processor(await RawImage.read(input.image), input.prompt)).pixel_values });
    for (let r = 0; r < input.repeats; r++) {
      const { preprocessMs, g0, clock, promptTokens } = await once(input.tokens);
      const [, first, ...rest] = clock.times;
      const last = rest.length ? rest[rest.length - 1] : first;
      runs.push({
        preprocess_ms: preprocessMs,
        vision_ms: visionMs,
        prefill_ms: first - g0 - visionMs,
        ttft_ms: preprocessMs + (first - g0),
        decode_tok_s: rest.length > 0 ? (rest.length * 1000) / (last - first) : NaN,
        prompt_tokens: promptTokens,
      });
    }
  } finally {
    await model.dispose();
  }
  return { runs, peakRssBytes: peakRssBytes() };
}
