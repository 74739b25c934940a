// Choosing the next token from a processed row of scores.
import type { RandomSource } from './rng';
import type { TokenSelector } from './types';
import { argmax, expShifted } from './vector-math';

/** Greedy decoding: the highest score (first one on ties). */
export class GreedySelector implements TokenSelector {
  select(scores: Float32Array): number {
    return argmax(scores);
  }
}

/** Multinomial sampling from softmax(scores), drawing from a seeded source. */
export class MultinomialSampler implements TokenSelector {
  private readonly weights: Float32Array;

  constructor(
    private readonly random: RandomSource,
    vocabSize: number,
  ) {
    this.weights = new Float32Array(vocabSize);
  }

  select(scores: Float32Array): number {
    const weights = this.weights;
    const total = expShifted(scores, weights);
    const u = this.random() * total;
    let cumulative = 0;
    let last = -1;
    for (let i = 0; i < scores.length; i++) {
      if (weights[i] === 0) continue;
      cumulative += weights[i];
      last = i;
      if (u < cumulative) return i;
    }
    return last; // u landed on the rounding slack at the very top
  }
}
