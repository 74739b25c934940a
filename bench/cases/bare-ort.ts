// The floor for pipeline overhead: onnxruntime alone running the same decoder file one token at a time, feeding
// each step's present back as past and nothing else (fixed embeddings, no sampling, onnxruntime's default session
// options, so thread spinning on). It starts from a zero cache of the prompt's length, so each step attends over as
// many positions as the pipeline's steps do.
import * as os from 'os';
import * as ort from 'onnxruntime-node';
import { CaseInput, CaseOutput, peakRssBytes, RunFigures } from './types';

function fixedDim(d: number | string): number {
  if (typeof d !== 'number') throw new Error(`expected a fixed dimension, got "${d}"`);
  return d;
}

export async function runBareOrt(input: CaseInput): Promise<CaseOutput> {
  const promptTokens = input.contextTokens ?? 0;
  // onnxruntime's defaults but for the thread count (the pipeline's), so the gap is the pipeline's own cost and options.
  const session = await ort.InferenceSession.create(input.model.decoderFile, {
    intraOpNumThreads: os.availableParallelism(),
    ...(input.sessionConfig ? { extra: input.sessionConfig } : {}),
  });
  const meta = new Map(session.inputMetadata.map((m) => [m.name, m]));
  const shapeOf = (name: string) => (meta.get(name) as ort.InferenceSession.TensorValueMetadata).shape;
  const hidden = fixedDim(shapeOf('inputs_embeds')[2]);
  const pastNames = session.inputNames.filter((n) => n.startsWith('past_key_values.'));
  const [, kvHeads, , headDim] = shapeOf(pastNames[0]).map((d, i) => (i === 1 || i === 3 ? fixedDim(d) : 0));
  const embeds = new ort.Tensor(
    'float32',
    Float32Array.from({ length: hidden }, (_, i) => Math.sin(i) * 0.1),
    [1, 1, hidden],
  );
  const runs: RunFigures[] = [];
  try {
    for (let r = 0; r < input.repeats; r++) {
      let past: Record<string, ort.Tensor> = {};
      for (const n of pastNames) past[n] = new ort.Tensor('float32', new Float32Array(kvHeads * promptTokens * headDim), [1, kvHeads, promptTokens, headDim]);
      const step = async (length: number) => {
        const feeds: Record<string, ort.Tensor> = {
          ...past,
          inputs_embeds: embeds,
          attention_mask: new ort.Tensor('int64', new BigInt64Array(length + 1).fill(1n), [1, length + 1]),
          position_ids: new ort.Tensor('int64', BigInt64Array.of(BigInt(length)), [1, 1]),
        };
        const out = await session.run(feeds);
        past = {};
        for (const n of pastNames) past[n] = out[n.replace('past_key_values.', 'present.')];
      };
      // One untimed step, then the same number of steps the pipeline times (tokens − 1).
      await step(promptTokens);
      const t0 = performance.now();
      for (let i = 1; i < input.tokens; i++) await step(promptTokens + i);
      const steps = input.tokens - 1;
      runs.push({ decode_tok_s: (steps * 1000) / (performance.now() - t0) });
    }
  } finally {
    await session.release();
  }
  return { runs, peakRssBytes: peakRssBytes() };
}
