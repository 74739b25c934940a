// Checks GenerationOptions and fills in the defaults, once, before a generation loop starts.
import type { GenerationOptions } from '../types';

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
  eosTokenIds: number[];
}

function fail(message: string): never {
  throw new Error(`Invalid generation options: ${message}`);
}

function integerAtLeast(name: string, value: number | undefined, min: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min) fail(`${name} must be an integer >= ${min}, got ${value}`);
  return value;
}

function numberIn(name: string, value: number | undefined, ok: (v: number) => boolean, range: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value)) fail(`${name} must be ${range}, got ${value}`);
  return value;
}

/**
 * Defaults differ from HF's GenerationConfig in one place: topK is off unless given (HF's default is 50).
 * Sampling options are ignored unless doSample is set, as in HF.
 */
export function resolveGenerationOptions(options: GenerationOptions, vocabSize: number): ResolvedGenerationOptions {
  if (options === null || typeof options !== 'object') fail('expected an object');
  if (!Number.isInteger(vocabSize) || vocabSize < 1) throw new Error(`Decoder vocabSize must be a positive integer, got ${vocabSize}`);
  if (options.maxNewTokens === undefined) fail('maxNewTokens is required');
  const maxNewTokens = integerAtLeast('maxNewTokens', options.maxNewTokens, 0, 0);
  const temperature = numberIn('temperature', options.temperature, (v) => v >= 0, 'a number >= 0', 1);
  const numBeams = integerAtLeast('numBeams', options.numBeams, 1, 1);
  const doSample = options.doSample === true && temperature > 0;
  if (doSample && numBeams > 1) fail('beam sampling (doSample with numBeams > 1) is not supported');
  const seed = options.seed;
  if (seed !== undefined && !Number.isSafeInteger(seed)) fail(`seed must be an integer, got ${seed}`);
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
    minNewTokens: integerAtLeast('minNewTokens', options.minNewTokens, 0, 0),
    ignoreEos: options.ignoreEos === true,
    doSample,
    temperature,
    topK: integerAtLeast('topK', options.topK, 0, 0),
    topP: numberIn('topP', options.topP, (v) => v > 0 && v <= 1, 'in (0, 1]', 1),
    minP: numberIn('minP', options.minP, (v) => v >= 0 && v <= 1, 'in [0, 1]', 0),
    seed,
    repetitionPenalty: numberIn('repetitionPenalty', options.repetitionPenalty, (v) => v > 0, 'a number > 0', 1),
    numBeams,
    lengthPenalty: numberIn('lengthPenalty', options.lengthPenalty, () => true, 'a finite number', 1),
    stopStrings: [...stopStrings],
    eosTokenIds: [...new Set(eosTokenIds)],
  };
}
