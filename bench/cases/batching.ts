// Continuous batching: c requests at once against the same c one after another, on one loaded model, for camera
// requests (an image prompt: the prefills are serial either way, only the decode steps are shared) and for short
// text prompts (decode-bound: what batching the steps gives). Total generated tokens per second of wall time, and
// per second of the process's CPU time (steadier than wall time on a machine shared with other work).
import * as fs from 'fs';
import { ImageFeatures, LlavaModel } from '../../lib/pipeline/llava-model';
import { getRuntime } from '../../lib/runtime';
import { CaseInput, CaseOutput, peakRssBytes, RunFigures } from './types';

export const BATCH_SIZES = [1, 2, 4];

type Ask = (i: number) => Promise<number>;

/** Generated tokens per second of wall time and per second of this process's CPU time (all its threads). */
async function timed(count: number, ask: Ask, together: boolean): Promise<{ wall: number; cpu: number }> {
  const started = performance.now();
  const cpu = process.cpuUsage();
  let tokens = 0;
  if (together) {
    tokens = (await Promise.all(Array.from({ length: count }, (_, i) => ask(i)))).reduce((a, b) => a + b, 0);
  } else {
    for (let i = 0; i < count; i++) tokens += await ask(i);
  }
  const used = process.cpuUsage(cpu);
  return { wall: (tokens * 1000) / (performance.now() - started), cpu: (tokens * 1e6) / (used.user + used.system) };
}

export async function runBatching(input: CaseInput): Promise<CaseOutput> {
  const bytes = fs.readFileSync(input.image);
  const model = await LlavaModel.load(input.model.dir, { variant: input.model.variant, prefixReuse: false });
  const options = { maxNewTokens: input.tokens, ignoreEos: true, doSample: false };
  const runs: RunFigures[] = [];
  try {
    const max = Math.max(...BATCH_SIZES);
    const images: ImageFeatures[] = [];
    const askCamera: Ask = async (i) => (await model.generate({ prompt: model.prompt({ prompt: input.prompt }), image: images[i], options })).tokenIds.length;
    const askText: Ask = async (i) => (await model.generate({ prompt: `Tell me about camera ${i + 1}.`, image: null, options })).tokenIds.length;
    for (let r = 0; r < input.repeats; r++) {
      const figures: RunFigures = {};
      for (const c of BATCH_SIZES) {
        for (const together of [false, true]) {
          images.length = 0;
          for (let i = 0; i < max; i++) images.push(await model.project(await model.encodeImage(await model.preprocess(bytes))));
          const mode = together ? 'batched' : 'serial';
          const record = (kind: string, t: { wall: number; cpu: number }) => {
            figures[`${kind}_${c}_${mode}_tok_s`] = t.wall;
            figures[`${kind}_${c}_${mode}_tok_cpu_s`] = t.cpu;
          };
          record('camera', await timed(c, askCamera, together));
          await Promise.all(images.slice(c).map((im) => model.releaseImage(im)));
          record('text', await timed(c, askText, together));
        }
      }
      runs.push(figures);
    }
  } finally {
    model.close();
    await getRuntime().dispose();
  }
  return { runs, peakRssBytes: peakRssBytes() };
}
