// Checks GenerationOptions and fills in the defaults, once, before a generation loop starts.
import type { GenerationOptions } from '../types';
import { checkNumberOption, GENERATION_OPTION_SPECS, GenerationOptionName } from './option-spec';

export interface ResolvedGenerationOptions {
  maxNewTokens: number;
  minNewTokens: number;
  ignoreEos: boolean;
  /** False when doSample was asked with temperature 0 (LLaVA's convention for greedy). */
  doSample: boolean;
  temperature: number;
  /** 0 = off. */
  topK: number;
  /** 1 = off. */
  topP: number;
  /** 0 = off. */
  minP: number;
  seed: number | undefined;
  /** 1 = off. */
  repetitionPenalty: number;
  numBeams: number;
  lengthPenalty: number;
  stopStrings: string[];
  /** maxTime in milliseconds; Infinity = off. */
  maxTimeMs: number;
  eosTokenIds: number[];
}

function fail(message: string): never {
  throw new Error(`Invalid generation options: ${message}`);
}

/** The option's value checked against its spec, or the fallback when it is not given. */
function option(name: GenerationOptionName, value: number | undefined, fallback: number, spec = GENERATION_OPTION_SPECS[name]): number {
  if (value === undefined) return fallback;
  try {
    return checkNumberOption(spec, value, name);
  } catch (err) {
    return fail((err as Error).message);
  }
}

/**
 * Defaults differ from HF's GenerationConfig in one place: topK is off unless given (HF's default is 50).
 * Sampling options are ignored unless doSample is set, as in HF.
 */
export function resolveGenerationOptions(options: GenerationOptions, vocabSize: number): ResolvedGenerationOptions {
  if (options === null || typeof options !== 'object') fail('expected an object');
  if (!Number.isInteger(vocabSize) || vocabSize < 1) throw new Error(`Decoder vocabSize must be a positive integer, got ${vocabSize}`);
  if (options.maxNewTokens === undefined) fail('maxNewTokens is required');
  // A request asks for at least one token; the budget the model passes here is cut to the context left, which may be 0.
  const maxNewTokens = option('maxNewTokens', options.maxNewTokens, 0, { ...GENERATION_OPTION_SPECS.maxNewTokens, min: 0 });
  const temperature = option('temperature', options.temperature, 1);
  const numBeams = option('numBeams', options.numBeams, 1);
  const doSample = options.doSample === true && temperature > 0;
  if (doSample && numBeams > 1) fail('beam sampling (doSample with numBeams > 1) is not supported');
  const seed = options.seed === undefined ? undefined : option('seed', options.seed, 0);
  const eosTokenIds = options.eosTokenIds ?? [];
  if (!Array.isArray(eosTokenIds)) fail('eosTokenIds must be an array');
  for (const id of eosTokenIds) {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) fail(`eos token id ${id} is outside the vocabulary (size ${vocabSize})`);
  }
  if (options.format !== undefined && (options.ignoreEos || eosTokenIds.length === 0)) {
    fail('a JSON format needs the end-of-sequence token to end the answer (no ignoreEos, and eosTokenIds set)');
  }
  const stopStrings = options.stopStrings ?? [];
  if (!Array.isArray(stopStrings)) fail('stopStrings must be an array');
  for (const s of stopStrings) {
    if (typeof s !== 'string' || s.length === 0) fail('stopStrings must be non-empty strings');
  }
  return {
    maxNewTokens,
    minNewTokens: option('minNewTokens', options.minNewTokens, 0),
    ignoreEos: options.ignoreEos === true,
    doSample,
    temperature,
    topK: option('topK', options.topK, 0),
    topP: option('topP', options.topP, 1),
    minP: option('minP', options.minP, 0),
    seed,
    repetitionPenalty: option('repetitionPenalty', options.repetitionPenalty, 1),
    numBeams,
    lengthPenalty: option('lengthPenalty', options.lengthPenalty, 1),
    stopStrings: [...stopStrings],
    maxTimeMs: option('maxTime', options.maxTime, Infinity) * 1000,
    eosTokenIds: [...new Set(eosTokenIds)],
  };
}
