export { generate } from './generate';
export type { DecoderStepper, GenerationHooks, GenerationResult, LogitsProcessor, TokenHistory, TokenSelector } from './types';
export { resolveGenerationOptions, type ResolvedGenerationOptions } from './options';
export { buildLogitsProcessors, MinNewTokens, MinP, RepetitionPenalty, Temperature, TopK, TopP } from './logits-processors';
export { GreedySelector, MultinomialSampler } from './token-selectors';
export { seededRandom, type RandomSource } from './rng';
export { StopStringMatcher } from './stop-strings';
export { TextStreamer } from './text-streamer';
