// Option parsing the CLI commands share: node's parseArgs with usage errors, numbers checked by flag name.
import { parseArgs, ParseArgsConfig } from 'util';
import { UsageError } from './usage-error';

export function number(value: string | undefined, flag: string, integer = false): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${flag} must be ${integer ? 'an integer' : 'a number'}, got "${value}"`);
  }
  return n;
}

type OptionSpecs = NonNullable<ParseArgsConfig['options']>;

export function parseOptions<T extends OptionSpecs>(argv: string[], options: T): ReturnType<typeof parseArgs<{ options: T; strict: true }>>['values'] {
  try {
    return parseArgs({ args: argv, options, allowPositionals: false, strict: true }).values;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** An API key from the flag or, better (it stays out of the process list), the environment. */
export function apiKey(flag: string | undefined): string | undefined {
  return flag ?? (process.env.LLAVA_API_KEY || undefined);
}
