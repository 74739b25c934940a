// The model side of generation, and the small pieces the generation loops compose.
import type { FinishReason } from '../types';

/**
 * A decoder with a KV cache, seen from the generation loop. Implemented in the inference worker.
 */
export interface DecoderStepper {
  /** Length of every logits row step() returns. */
  readonly vocabSize: number;
  /**
   * Feeds one token per live sequence and returns the next-token logits of each (row i for sequence i).
   * parents[i] = index of the sequence (in the previous step's list) whose cache sequence i continues:
   * identity for greedy/sampling, a gather for beams. The first call after prefill starts from the single
   * prefilled sequence, so its parents are all 0.
   */
  step(tokens: number[], parents: number[]): Promise<Float32Array[]>;
}

export interface GenerationHooks {
  /** Token ids → text (the tokenizer's decode, typically with skip_special_tokens). Must be deterministic. */
  decode(ids: number[]): string;
  /** Text deltas as they become final; their concatenation equals GenerationResult.text. */
  onText?(delta: string): void;
  /** Checked before every decoder step; an abort ends generation with finishReason 'aborted'. */
  signal?: AbortSignal;
  /** performance.now() when the request's work began (before prefill); the time limit counts from it (default: now). */
  startedAt?: number;
  /**
   * The ids already in the sequence (the prompt). Only the repetition penalty reads them, as HF's does
   * (it penalises every token of input_ids). Ids outside the vocabulary (LLaVA's -200 image placeholder) are skipped.
   */
  promptTokenIds?: readonly number[];
  /** A grammar mask (the JSON-schema constraint), applied to each row before every other processor. */
  constraint?: LogitsProcessor;
}

export interface GenerationResult {
  /** Generated ids only. A final EOS token is not included; a stop string's tokens are. */
  tokenIds: number[];
  /** decode(tokenIds), cut before the first stop string when finishReason is 'stop'. */
  text: string;
  finishReason: FinishReason;
  /** Number of stepper.step() calls. */
  steps: number;
  /** Wall time inside generate(). */
  decodeMs: number;
  /** The part of decodeMs spent awaiting stepper.step(). */
  stepperMs: number;
}

/** The tokens a sequence holds so far. */
export interface TokenHistory {
  readonly promptIds: readonly number[];
  readonly generatedIds: readonly number[];
}

/** Rewrites one row of next-token scores in place (-Infinity removes a token). */
export interface LogitsProcessor {
  apply(scores: Float32Array, history: TokenHistory): void;
}

/** Picks the next token from processed scores. */
export interface TokenSelector {
  select(scores: Float32Array): number;
}
