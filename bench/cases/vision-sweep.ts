// The vision encoder alone under onnxruntime session configurations, to find the best one for that graph
// (the target is the pipeline's vision time within 1.3× of it), with the pipeline itself timed alongside.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { LlavaModel } from '../../lib/pipeline/llava-model';
import { getRuntime } from '../../lib/runtime';
import { median } from '../stats';
import { CaseInput, CaseOutput, peakRssBytes } from './types';

type Options = ort.InferenceSession.SessionOptions;

/** The sweep's entry for the pipeline itself (LlavaModel.encodeImage), measured in the same process. */
export const PIPELINE_VISION = 'pipeline (LlavaModel.encodeImage)';

interface Config {
  name: string;
  options: Options;
  /** The graph ORT optimized and saved (optimizedModelFilePath), loaded with optimization off. */
  preOptimized?: boolean;
}

function configs(cores: number): Config[] {
  const extra = { 'session.intra_op.allow_spinning': '0', 'session.inter_op.allow_spinning': '0' };
  const t = cores;
  return [
    { name: 'ort defaults', options: {} },
    { name: `all, ${t} threads, no spin (pipeline)`, options: { intraOpNumThreads: t, extra } },
    { name: `all, ${t} threads, spin`, options: { intraOpNumThreads: t } },
    { name: 'all, 1 thread', options: { intraOpNumThreads: 1, extra } },
    { name: `extended, ${t} threads, no spin`, options: { intraOpNumThreads: t, graphOptimizationLevel: 'extended', extra } },
    { name: `basic, ${t} threads, no spin`, options: { intraOpNumThreads: t, graphOptimizationLevel: 'basic', extra } },
    { name: `all, no CPU arena, ${t} threads, no spin`, options: { intraOpNumThreads: t, enableCpuMemArena: false, extra } },
    { name: `pre-optimized file, ${t} threads, no spin`, options: { intraOpNumThreads: t, graphOptimizationLevel: 'disabled', extra }, preOptimized: true },
  ];
}

async function timeConfig(file: string, options: Options, pixels: ort.Tensor, repeats: number): Promise<number[]> {
  const session = await ort.InferenceSession.create(file, { logSeverityLevel: 4, ...options });
  try {
    const feeds = { [session.inputNames[0]]: pixels };
    await session.run(feeds);
    const times: number[] = [];
    for (let r = 0; r < repeats; r++) {
      const t0 = performance.now();
      await session.run(feeds);
      times.push(performance.now() - t0);
    }
    return times;
  } finally {
    await session.release();
  }
}

/** The pipeline's own encodeImage (runtime worker, tensor store) on the same pixels, timed like the configurations. */
async function timePipeline(input: CaseInput, pixels: Float32Array, repeats: number): Promise<number[]> {
  const model = await LlavaModel.load(input.model.dir, { variant: input.model.variant });
  try {
    const times: number[] = [];
    for (let r = 0; r <= repeats; r++) {
      const features = await model.encodeImage(pixels.slice()); // the runtime transfers (detaches) what it is given
      await model.releaseImage(features);
      if (r > 0) times.push(features.ms);
    }
    return times;
  } finally {
    model.close();
    await getRuntime().dispose();
  }
}

export async function runVisionSweep(input: CaseInput): Promise<CaseOutput> {
  const visionFile = path.join(input.model.dir, 'onnx', 'vision_encoder.onnx');
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-bench-vision-'));
  const optimizedFile = path.join(scratch, 'vision_encoder.optimized.onnx');
  try {
    // optimizedModelFilePath: ORT writes the fully optimized graph once; later loads skip optimization.
    // External initializers go to their own file, as the source graph's do (inline ones would hit the 2 GB limit).
    await (
      await ort.InferenceSession.create(visionFile, {
        optimizedModelFilePath: optimizedFile,
        extra: { 'session.optimized_model_external_initializers_file_name': `${path.basename(optimizedFile)}_data` },
      })
    ).release();
    const config = JSON.parse(fs.readFileSync(path.join(input.model.dir, 'config.json'), 'utf8'));
    const size: number = config.vision_config.image_size;
    const pixels = new ort.Tensor(
      'float32',
      Float32Array.from({ length: 3 * size * size }, (_, i) => Math.sin(i * 0.01)),
      [1, 3, size, size],
    );
    const result: Record<string, number> = {};
    const repeats = Math.max(5, input.repeats);
    result[PIPELINE_VISION] = median(await timePipeline(input, pixels.data, repeats));
    for (const c of configs(os.availableParallelism())) {
      const times = await timeConfig(c.preOptimized ? optimizedFile : visionFile, c.options, pixels, repeats);
      result[c.name] = median(times);
    }
    return { runs: [], peakRssBytes: peakRssBytes(), configs: result };
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
