// Preprocess of the bench's 1080p JPEG into the 336-pixel CLIP tensor, both resamplers interleaved (best, median
// and first call, which pays for the JIT), and how far the libvips path's pixels are from the PIL-exact ones.
import * as fs from 'fs';
import { preprocessImage } from '../lib/pipeline/image-preprocess';
import type { PreprocessOptions, Resampler } from '../lib/pipeline/types';
import { median } from './stats';

export interface PreprocessTiming {
  firstMs: number;
  bestMs: number;
  medianMs: number;
}

export interface PreprocessBench {
  size: number;
  rounds: number;
  resamplers: Record<Resampler, PreprocessTiming>;
  /** libvips against pil, in 0–255 levels: mean and largest absolute difference. */
  meanAbsDiff: number;
  maxAbsDiff: number;
}

const SIZE = 336;
const CLIP: PreprocessOptions = {
  mode: 'crop',
  size: SIZE,
  mean: [0.48145466, 0.4578275, 0.40821073],
  std: [0.26862954, 0.26130258, 0.27577711],
};
const RESAMPLERS: Resampler[] = ['pil', 'libvips'];

export async function benchPreprocess(imageFile: string, rounds: number): Promise<PreprocessBench> {
  const bytes = fs.readFileSync(imageFile);
  const times: Record<Resampler, number[]> = { pil: [], libvips: [] };
  const pixels: Partial<Record<Resampler, Float32Array>> = {};
  for (let r = 0; r < rounds; r++) {
    for (const resampler of RESAMPLERS) {
      const out = await preprocessImage(bytes, { ...CLIP, resampler });
      times[resampler].push(out.ms);
      pixels[resampler] = out.pixels;
    }
  }
  const [a, b] = [pixels.pil!, pixels.libvips!];
  let sum = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    // Back to 0–255 levels through the channel's std.
    const d = Math.abs(a[i] - b[i]) * CLIP.std[Math.floor(i / (SIZE * SIZE))] * 255;
    sum += d;
    max = Math.max(max, d);
  }
  const timing = (t: number[]): PreprocessTiming => ({ firstMs: t[0], bestMs: Math.min(...t), medianMs: median(t) });
  return {
    size: SIZE,
    rounds,
    resamplers: { pil: timing(times.pil), libvips: timing(times.libvips) },
    meanAbsDiff: sum / a.length,
    maxAbsDiff: Math.round(max),
  };
}

export function preprocessLines(p: PreprocessBench): string[] {
  const row = (name: Resampler) => {
    const t = p.resamplers[name];
    return `| ${name} | ${t.firstMs.toFixed(0)} | ${t.bestMs.toFixed(1)} | ${t.medianMs.toFixed(1)} |`;
  };
  return [
    '',
    `Preprocess, 1920×1080 JPEG → ${p.size}² normalised tensor (crop), resamplers interleaved, ${p.rounds} rounds:`,
    '',
    '| resampler | first ms | best ms | median ms |',
    '|---|--:|--:|--:|',
    row('pil'),
    row('libvips'),
    `libvips vs pil pixels: mean ${p.meanAbsDiff.toFixed(2)}, max ${p.maxAbsDiff} levels of 255`,
  ];
}
