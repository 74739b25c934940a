import { randomInt } from 'node:crypto';

// A small seeded PRNG (mulberry32: a 32-bit state stepped by a Weyl sequence and mixed): same seed, same draws.

export type RandomSource = () => number;

/** Uniform draws in [0, 1) with 32-bit resolution. Any safe integer seeds it; its high bits are folded in. */
export function seededRandom(seed: number): RandomSource {
  if (!Number.isSafeInteger(seed)) throw new Error(`Random seed must be a safe integer, got ${seed}`);
  let state = (seed ^ Math.floor(seed / 0x100000000)) >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 0x100000000;
  };
}

/** A seed from the OS entropy source, for unseeded sampling. */
export function randomSeed(): number {
  return randomInt(0, 0x100000000);
}
