// Logits processors: each rewrites one row of scores in place, and buildLogitsProcessors composes them
// in the order HF transformers' _get_logits_processor uses:
//   repetition penalty → min_new_tokens (EOS suppression) → [sampling only] temperature → top-k → top-p → min-p.
import type { ResolvedGenerationOptions } from './options';
import type { LogitsProcessor, TokenHistory } from './types';
import { expShifted, kthLargest, maxScore } from './vector-math';

/**
 * HF RepetitionPenaltyLogitsProcessor: every distinct token already in the sequence (prompt and generated)
 * has its score divided by the penalty when positive and multiplied by it when negative.
 */
export class RepetitionPenalty implements LogitsProcessor {
  private readonly seen: Uint8Array;

  constructor(
    private readonly penalty: number,
    vocabSize: number,
  ) {
    this.seen = new Uint8Array(vocabSize);
  }

  apply(scores: Float32Array, history: TokenHistory): void {
    this.visit(scores, history.promptIds, true);
    this.visit(scores, history.generatedIds, true);
    this.visit(scores, history.promptIds, false);
    this.visit(scores, history.generatedIds, false);
  }

  /** First pass penalises each distinct id once; second pass clears the marks. */
  private visit(scores: Float32Array, ids: readonly number[], penalise: boolean): void {
    const seen = this.seen;
    for (const id of ids) {
      if (!(id >= 0 && id < seen.length)) continue;
      if (!penalise) {
        seen[id] = 0;
      } else if (seen[id] === 0) {
        seen[id] = 1;
        const s = scores[id];
        scores[id] = s < 0 ? s * this.penalty : s / this.penalty;
      }
    }
  }
}

/** HF MinNewTokensLengthLogitsProcessor: EOS ids are removed while fewer than minNewTokens tokens exist. */
export class MinNewTokens implements LogitsProcessor {
  constructor(
    private readonly minNewTokens: number,
    private readonly eosTokenIds: readonly number[],
  ) {}

  apply(scores: Float32Array, history: TokenHistory): void {
    if (history.generatedIds.length >= this.minNewTokens) return;
    for (const id of this.eosTokenIds) scores[id] = -Infinity;
  }
}

/** HF TemperatureLogitsWarper: scores / temperature. */
export class Temperature implements LogitsProcessor {
  constructor(private readonly temperature: number) {
    if (!(temperature > 0)) throw new Error(`Temperature must be > 0, got ${temperature}`);
  }

  apply(scores: Float32Array): void {
    const inv = 1 / this.temperature;
    for (let i = 0; i < scores.length; i++) scores[i] *= inv;
  }
}

/** HF TopKLogitsWarper: removes every token scoring below the k-th largest score (ties with it stay). */
export class TopK implements LogitsProcessor {
  private readonly scratch: Float32Array;

  constructor(
    private readonly k: number,
    vocabSize: number,
  ) {
    if (!Number.isInteger(k) || k < 1) throw new Error(`topK must be an integer >= 1, got ${k}`);
    this.scratch = new Float32Array(vocabSize);
  }

  apply(scores: Float32Array): void {
    if (this.k >= scores.length) return;
    const threshold = kthLargest(scores, this.k, this.scratch);
    for (let i = 0; i < scores.length; i++) if (!(scores[i] >= threshold)) scores[i] = -Infinity;
  }
}

/**
 * HF TopPLogitsWarper: keeps the most probable tokens until their cumulative probability reaches p (the token
 * that crosses p stays; at least one token stays). A token is kept iff the mass of the tokens more probable than
 * it is < p, so the kept set is {prob >= t} for one threshold t, found by a quickselect weighted by probability
 * (expected O(vocab), no sort). Tokens tied with the threshold all stay.
 */
export class TopP implements LogitsProcessor {
  private readonly probs: Float32Array;
  private readonly order: Uint32Array;

  constructor(
    private readonly p: number,
    vocabSize: number,
  ) {
    if (!(p > 0 && p <= 1)) throw new Error(`topP must be in (0, 1], got ${p}`);
    this.probs = new Float32Array(vocabSize);
    this.order = new Uint32Array(vocabSize);
  }

  apply(scores: Float32Array): void {
    if (this.p >= 1) return;
    const probs = this.probs;
    const total = expShifted(scores, probs);
    let count = 0;
    for (let i = 0; i < scores.length; i++) if (probs[i] > 0) this.order[count++] = i;
    const threshold = this.nucleusThreshold(count, this.p * total);
    for (let i = 0; i < scores.length; i++) if (probs[i] < threshold) scores[i] = -Infinity;
  }

  /** The smallest probability whose strictly-more-probable mass is < target, over order[0, count). */
  private nucleusThreshold(count: number, target: number): number {
    const { probs, order } = this;
    let lo = 0;
    let hi = count;
    let massAbove = 0; // mass of the candidates already known to rank above [lo, hi)
    for (;;) {
      const pivot = probs[order[lo + ((hi - lo) >>> 1)]];
      // Three-way partition of [lo, hi): greater | equal | less than the pivot.
      let gt = lo;
      let i = lo;
      let lt = hi;
      let greaterMass = 0;
      let equalMass = 0;
      while (i < lt) {
        const v = probs[order[i]];
        if (v > pivot) {
          greaterMass += v;
          const t = order[gt];
          order[gt++] = order[i];
          order[i++] = t;
        } else if (v < pivot) {
          const t = order[--lt];
          order[lt] = order[i];
          order[i] = t;
        } else {
          equalMass += v;
          i++;
        }
      }
      if (massAbove + greaterMass >= target) {
        hi = gt; // the pivot is out: the threshold is among the greater ones
      } else if (massAbove + greaterMass + equalMass >= target || lt === hi) {
        return pivot; // the pivot is in, and nothing below it is
      } else {
        massAbove += greaterMass + equalMass;
        lo = lt;
      }
    }
  }
}

/**
 * HF MinPLogitsWarper: removes tokens whose probability is below minP × the top probability. Done in log space
 * (score < max + ln minP), which is the same test without a softmax.
 */
export class MinP implements LogitsProcessor {
  constructor(private readonly minP: number) {
    if (!(minP >= 0 && minP <= 1)) throw new Error(`minP must be in [0, 1], got ${minP}`);
  }

  apply(scores: Float32Array): void {
    if (this.minP <= 0) return;
    const cutoff = maxScore(scores) + Math.log(this.minP);
    for (let i = 0; i < scores.length; i++) if (!(scores[i] >= cutoff)) scores[i] = -Infinity;
  }
}

/** The processors the options ask for, in HF order. Sampling warpers only when sampling, as in HF. */
export function buildLogitsProcessors(options: ResolvedGenerationOptions, vocabSize: number): LogitsProcessor[] {
  const list: LogitsProcessor[] = [];
  if (options.repetitionPenalty !== 1) list.push(new RepetitionPenalty(options.repetitionPenalty, vocabSize));
  if (options.minNewTokens > 0 && options.eosTokenIds.length > 0) list.push(new MinNewTokens(options.minNewTokens, options.eosTokenIds));
  if (options.doSample) {
    if (options.temperature !== 1) list.push(new Temperature(options.temperature));
    if (options.topK > 0 && options.topK < vocabSize) list.push(new TopK(options.topK, vocabSize));
    if (options.topP < 1) list.push(new TopP(options.topP, vocabSize));
    if (options.minP > 0) list.push(new MinP(options.minP));
  }
  return list;
}
