// The generation options, defined once: each option's kind and allowed range, its `llava generate` flag and help.
// The resolver checks with it, llm generate checks its editor fields and msg.llava.options with it, and the CLI
// builds its flags and usage from it, so a rule cannot differ between them.
import type { GenerationOptions } from '../types';

export interface GenerationOptionSpec {
  kind: 'integer' | 'number' | 'boolean' | 'strings';
  /** Lowest allowed value; exclusive when `above`. */
  min?: number;
  above?: boolean;
  max?: number;
  /** The `llava generate` flag (without --) and what it takes; doSample has none (--greedy, or a sampling flag). */
  flag?: string;
  arg?: string;
  /** Sampling options: used only when sampling (HF's rule); a CLI sampling flag turns sampling on. */
  sampling?: boolean;
}

/** eosTokenIds come from the model; a JSON answer format is given as a schema, not a number or flag. */
export type GenerationOptionName = Exclude<keyof GenerationOptions, 'eosTokenIds' | 'format'>;

export const GENERATION_OPTION_SPECS: Record<GenerationOptionName, GenerationOptionSpec> = {
  maxNewTokens: { kind: 'integer', min: 1, flag: 'max-new-tokens', arg: 'N' },
  minNewTokens: { kind: 'integer', min: 0, flag: 'min-new-tokens', arg: 'N' },
  doSample: { kind: 'boolean' },
  temperature: { kind: 'number', min: 0, flag: 'temperature', arg: 'T', sampling: true },
  topK: { kind: 'integer', min: 0, flag: 'top-k', arg: 'K', sampling: true },
  topP: { kind: 'number', min: 0, above: true, max: 1, flag: 'top-p', arg: 'P', sampling: true },
  minP: { kind: 'number', min: 0, max: 1, flag: 'min-p', arg: 'P', sampling: true },
  seed: { kind: 'integer', flag: 'seed', arg: 'S', sampling: true },
  repetitionPenalty: { kind: 'number', min: 0, above: true, flag: 'repetition-penalty', arg: 'R' },
  numBeams: { kind: 'integer', min: 1, flag: 'num-beams', arg: 'B' },
  lengthPenalty: { kind: 'number', flag: 'length-penalty', arg: 'L' },
  stopStrings: { kind: 'strings', flag: 'stop', arg: 'TEXT' },
  ignoreEos: { kind: 'boolean', flag: 'ignore-eos' },
  maxTime: { kind: 'number', min: 0, above: true, flag: 'max-time', arg: 'SECONDS' },
};

/** The option names a message may set in msg.llava.options (and llm generate's editor shows). */
export const GENERATION_OPTION_NAMES = Object.keys(GENERATION_OPTION_SPECS) as GenerationOptionName[];

export function isGenerationOptionName(name: string): name is GenerationOptionName {
  return Object.prototype.hasOwnProperty.call(GENERATION_OPTION_SPECS, name);
}

/** What a number option must be: "an integer >= 1", "a number > 0", "in (0, 1]", "a finite number". */
export function requirement(spec: GenerationOptionSpec): string {
  if (spec.min !== undefined && spec.max !== undefined) return `in ${spec.above ? '(' : '['}${spec.min}, ${spec.max}]`;
  const what = spec.kind === 'integer' ? 'an integer' : 'a number';
  if (spec.min !== undefined) return `${what} ${spec.above ? '>' : '>='} ${spec.min}`;
  return spec.kind === 'integer' ? 'an integer' : 'a finite number';
}

/**
 * Checks a number against its option's kind and range; `where` names it in the error ("topP",
 * "msg.llava.options.topP", "editor field topP").
 */
export function checkNumberOption(spec: GenerationOptionSpec, value: number, where: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new Error(`${where} must be a finite number, got ${value}`);
  const ok =
    (spec.kind !== 'integer' || Number.isSafeInteger(value)) &&
    (spec.min === undefined || (spec.above ? value > spec.min : value >= spec.min)) &&
    (spec.max === undefined || value <= spec.max);
  if (!ok) throw new Error(`${where} must be ${requirement(spec)}, got ${value}`);
  return value;
}

/** `llava generate`'s usage for the options, from the specs: the sampling flags grouped against --greedy. */
export function generationFlagsUsage(): string {
  const flag = (spec: GenerationOptionSpec) => `--${spec.flag}${spec.arg ? ` ${spec.arg}` : ''}`;
  const specs = GENERATION_OPTION_NAMES.map((name) => GENERATION_OPTION_SPECS[name]).filter((spec) => spec.flag);
  const sampling = `[--greedy | ${specs
    .filter((s) => s.sampling)
    .map(flag)
    .join(' ')}]`;
  const parts = specs.filter((s) => !s.sampling).map((s) => `[${flag(s)}]${s.kind === 'strings' ? '…' : ''}`);
  parts.splice(
    specs.findIndex((s) => s.sampling),
    0,
    sampling,
  );
  return parts.join(' ');
}
