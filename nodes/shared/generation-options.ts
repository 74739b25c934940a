// llava-generate's generation options: from the editor fields (empty = the model preset's value) and from
// msg.llava.options (per message), checked by name, type and range against the one option spec, so a typo is an
// error, not a silently ignored option.
import { checkNumberOption, GENERATION_OPTION_NAMES, GENERATION_OPTION_SPECS, isGenerationOptionName } from '../../lib/pipeline/generation/option-spec';
import { compileJsonFormat } from '../../lib/pipeline/generation/json-schema';
import type { GenerationOptions, JsonFormat } from '../../lib/pipeline/types';

export type GenerationOverrides = Partial<GenerationOptions>;

/**
 * The options set in the editor. Number fields are text there: empty means "the preset's value" and is left out.
 * stopStrings is one per line.
 */
export function generationOptionsFromConfig(config: Record<string, unknown>): GenerationOverrides {
  const out: Record<string, unknown> = {};
  for (const name of GENERATION_OPTION_NAMES) {
    const spec = GENERATION_OPTION_SPECS[name];
    const raw = config[name];
    if (spec.kind === 'boolean') {
      // The editor's checkboxes always have a value; only "on" departs from the preset.
      if (raw === true) out[name] = true;
    } else if (spec.kind === 'strings') {
      if (typeof raw === 'string' && raw.trim() !== '') out[name] = raw.split(/\r?\n/).filter((s) => s.length > 0);
    } else if (raw !== undefined && raw !== null && String(raw as string | number).trim() !== '') {
      out[name] = checkNumberOption(spec, Number(raw), `editor field ${name}`);
    }
  }
  return out;
}

/** msg.llava.options, checked: unknown names and wrong types are errors naming them. Undefined → {}. */
export function generationOptionsFromMessage(value: unknown): GenerationOverrides {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`msg.llava.options must be an object, got ${Array.isArray(value) ? 'an array' : typeof value}`);
  }
  const out: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(value)) {
    const where = `msg.llava.options.${name}`;
    if (!isGenerationOptionName(name)) {
      throw new Error(`${where} is not a generation option (known: ${GENERATION_OPTION_NAMES.join(', ')})`);
    }
    const spec = GENERATION_OPTION_SPECS[name];
    if (spec.kind === 'boolean') {
      if (typeof v !== 'boolean') throw new Error(`${where} must be true or false, got ${typeof v}`);
      out[name] = v;
    } else if (spec.kind === 'strings') {
      if (!Array.isArray(v) || !v.every((s) => typeof s === 'string' && s.length > 0)) {
        throw new Error(`${where} must be an array of non-empty strings`);
      }
      out[name] = [...(v as string[])];
    } else {
      if (typeof v !== 'number') throw new Error(`${where} must be a number, got ${typeof v}`);
      out[name] = checkNumberOption(spec, v, where);
    }
  }
  return out;
}

/** Later layers win: preset defaults, then the editor, then the message. */
export function mergeGenerationOptions(...layers: GenerationOverrides[]): GenerationOverrides {
  return Object.assign({}, ...layers) as GenerationOverrides;
}

/** The editor's output formats: text, any JSON object, or JSON matching the schema field. */
export const OUTPUT_FORMATS = ['text', 'json', 'schema'] as const;

/**
 * The answer format set in the editor, compiled now so an unsupported keyword or an invalid schema fails the node
 * when it is deployed. Text (or no setting, a flow saved before the field) → {}.
 */
export function outputFormatFromConfig(config: Record<string, unknown>): { format?: JsonFormat } {
  const chosen = config.outputFormat ?? 'text';
  if (!(OUTPUT_FORMATS as readonly unknown[]).includes(chosen))
    throw new Error(`output format must be one of ${OUTPUT_FORMATS.join(', ')}, got ${JSON.stringify(chosen)}`);
  if (chosen === 'text') return {};
  const format: JsonFormat = chosen === 'json' ? { type: 'json' } : { type: 'json_schema', schema: config.schema };
  compileJsonFormat(format);
  return { format };
}

/** msg.llava.schema (an object or JSON text): the answer must match it, whatever the editor says. */
export function outputFormatFromMessage(schema: unknown): { format?: JsonFormat } {
  if (schema === undefined || schema === null) return {};
  const format: JsonFormat = { type: 'json_schema', schema };
  try {
    compileJsonFormat(format);
  } catch (e) {
    throw new Error(`msg.llava.schema: ${(e as Error).message}`);
  }
  return { format };
}
