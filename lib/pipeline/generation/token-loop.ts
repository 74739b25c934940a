// Greedy and sampled decoding: one sequence, one token per step.
import type { ResolvedGenerationOptions } from './options';
import { StepperCalls } from './run-state';
import { StopStringMatcher } from './stop-strings';
import { TextStreamer } from './text-streamer';
import type { FinishReason } from '../types';
import type { GenerationHooks, GenerationResult, LogitsProcessor, TokenSelector } from './types';

export async function decodeTokens(
  initialLogits: Float32Array,
  calls: StepperCalls,
  options: ResolvedGenerationOptions,
  hooks: GenerationHooks,
  processors: readonly LogitsProcessor[],
  selector: TokenSelector,
): Promise<GenerationResult> {
  const eos = new Set(options.ignoreEos ? [] : options.eosTokenIds);
  const streamer = new TextStreamer(hooks.decode, new StopStringMatcher(options.stopStrings), hooks.onText);
  const generated: number[] = [];
  const history = { promptIds: hooks.promptTokenIds ?? [], generatedIds: generated };
  // Processors write into a copy; the decoder's rows stay untouched. Without processors (greedy, sampling at
  // temperature 1) the selector reads the decoder's row itself, uncopied.
  const scratch = new Float32Array(processors.length > 0 ? initialLogits.length : 0);
  let logits = initialLogits;
  let finishReason: FinishReason = 'length';
  while (generated.length < options.maxNewTokens) {
    if (calls.aborted) {
      finishReason = 'aborted';
      break;
    }
    let scores = logits;
    if (processors.length > 0) {
      scratch.set(logits);
      for (const processor of processors) processor.apply(scratch, history);
      scores = scratch;
    }
    const token = selector.select(scores);
    if (eos.has(token)) {
      finishReason = 'eos';
      break;
    }
    generated.push(token);
    if (streamer.update(generated)) {
      finishReason = 'stop';
      break;
    }
    if (generated.length === options.maxNewTokens) break;
    const interruption = calls.interruption;
    if (interruption) {
      finishReason = interruption;
      break;
    }
    [logits] = await calls.step([token], [0]);
  }
  return {
    tokenIds: generated,
    text: streamer.finish(),
    finishReason,
    steps: calls.steps,
    decodeMs: calls.elapsedMs,
    stepperMs: calls.stepperMs,
  };
}
