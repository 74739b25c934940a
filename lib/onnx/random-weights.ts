// Seeded random weights for any LLaVA config, generated lazily per tensor (so a 7B-width model never holds
// more than one tensor). Each tensor's values depend only on (seed, name). Scales keep activations O(1):
// Linear/conv weights have variance 1/fan_in, norm gains are near 1, biases and embeddings are small.
import type { LlavaConfig } from '../model/config';
import { llavaWeightShapes } from './weight-layout';
import type { WeightSource, WeightTensor } from './weights';

/** FNV-1a of the name mixed with the seed: one independent stream per tensor. */
function streamSeed(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** mulberry32: uniform floats in [-1, 1). */
function uniformStream(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

/** [offset, amplitude] of the uniform values for a weight, chosen from its role. */
function distribution(name: string, shape: number[]): [number, number] {
  const isNorm = /norm|layrnorm/.test(name);
  if (isNorm) return name.endsWith('.bias') ? [0, 0.1] : [1, 0.1];
  if (name.endsWith('.bias')) return [0, 0.1];
  if (/embed_tokens|position_embedding|class_embedding/.test(name)) return [0, 0.5];
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  return [0, Math.sqrt(3 / fanIn)]; // uniform(-a, a) has variance a²/3 = 1/fan_in
}

export function randomWeights(config: LlavaConfig, seed = 0): WeightSource {
  const tensors = new Map<string, WeightTensor>();
  for (const [name, shape] of llavaWeightShapes(config)) {
    const [offset, amp] = distribution(name, shape);
    tensors.set(name, {
      name,
      shape,
      dtype: 'float32',
      read() {
        const next = uniformStream(streamSeed(seed, name));
        const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
        for (let i = 0; i < out.length; i++) out[i] = offset + amp * next();
        return out;
      },
    });
  }
  return { names: () => [...tensors.keys()], get: (name) => tensors.get(name) };
}
