// generate(): checks the options, composes processors and a token selector, and runs the matching loop.
import type { GenerationOptions } from '../types';
import { beamSearch } from './beam-search';
import { buildLogitsProcessors } from './logits-processors';
import { resolveGenerationOptions } from './options';
import { randomSeed, seededRandom } from './rng';
import { checkLogitsRow, StepperCalls, TimeLimit } from './run-state';
import { GreedySelector, MultinomialSampler } from './token-selectors';
import { decodeTokens } from './token-loop';
import type { DecoderStepper, GenerationHooks, GenerationResult } from './types';

/**
 * Generates from the logits of the last prompt position (batch 1, after prefill).
 * numBeams > 1 → beam search (text reaches onText once, at the end); doSample → seeded multinomial sampling;
 * otherwise greedy.
 */
export async function generate(
  initialLogits: Float32Array,
  stepper: DecoderStepper,
  options: GenerationOptions,
  hooks: GenerationHooks,
): Promise<GenerationResult> {
  const resolved = resolveGenerationOptions(options, stepper.vocabSize);
  checkLogitsRow(initialLogits, stepper.vocabSize);
  if (typeof hooks?.decode !== 'function') throw new Error('generate() needs hooks.decode(ids) → text');
  const processors = [...(hooks.constraint ? [hooks.constraint] : []), ...buildLogitsProcessors(resolved, stepper.vocabSize)];
  const calls = new StepperCalls(stepper, hooks.signal, new TimeLimit(resolved.maxTimeMs, hooks.startedAt));
  if (resolved.numBeams > 1) return beamSearch(initialLogits, calls, resolved, hooks, processors);
  const selector = resolved.doSample ? new MultinomialSampler(seededRandom(resolved.seed ?? randomSeed()), stepper.vocabSize) : new GreedySelector();
  return decodeTokens(initialLogits, calls, resolved, hooks, processors, selector);
}
