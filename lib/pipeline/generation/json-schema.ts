// JSON Schema → the grammar the constrained decoder follows (json-grammar.ts walks it byte by byte).
//
// The supported subset (anything else is an error that names the keyword and where it is):
//   type (one name or a list), enum, const, anyOf, $ref to "#/$defs/…" or "#/definitions/…" (recursion allowed);
//   object: properties, required, additionalProperties (false, true or a schema). Unlike JSON Schema's default,
//     an object with `properties` and no additionalProperties takes no other keys (as XGrammar's strict mode and
//     OpenAI's strict structured outputs do): the answer stays what the flow routes on;
//   array: items, minItems, maxItems;
//   string: minLength, maxLength (in code points), pattern (the subset in json-pattern.ts);
//   integer / number: minimum, maximum, exclusiveMinimum, exclusiveMaximum (numbers in range have at most 15
//     digits before and after the point; no exponent when a bound is set);
//   annotations are ignored: title, description, default, examples, $schema, $id, $comment, $defs, definitions.
// {} and true accept any JSON value; false accepts nothing (an invalid schema here).
// Output is compact: no whitespace between tokens, one optional space or newline before the document.
import type { FinishReason, JsonFormat } from '../types';
import { advanceBytes, GrammarNode, initialState, isComplete, NumberBounds } from './json-grammar';
import { compilePattern, PatternMachine } from './json-pattern';

export interface CompiledSchema {
  root: GrammarNode;
  /** The schema with keys sorted, as JSON: the cache key, and what a remote engine gets as its response format. */
  canonical: string;
}

export class SchemaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SchemaError';
  }
}

const ANNOTATIONS = new Set(['title', 'description', 'default', 'examples', '$schema', '$id', '$comment', '$defs', 'definitions']);
const KEYWORDS = new Set([
  'type',
  'enum',
  'const',
  'anyOf',
  '$ref',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'minItems',
  'maxItems',
  'minLength',
  'maxLength',
  'pattern',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
]);
const TYPES = ['object', 'array', 'string', 'integer', 'number', 'boolean', 'null'] as const;
type TypeName = (typeof TYPES)[number];
const KEYWORDS_OF: Record<TypeName, string[]> = {
  object: ['properties', 'required', 'additionalProperties'],
  array: ['items', 'minItems', 'maxItems'],
  string: ['minLength', 'maxLength', 'pattern'],
  integer: ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'],
  number: ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'],
  boolean: [],
  null: [],
};
/** Largest magnitude kept exact by a double with 15 significant digits. */
const MAX_BOUND = 1e15;

const encoder = new TextEncoder();
const ANY: GrammarNode = { kind: 'any' };

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** JSON with object keys sorted, so equal schemas give equal text. */
function canonicalJson(value: unknown, at: string): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new SchemaError(`${at}: ${value} is not a JSON number`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v, i) => canonicalJson(v, `${at}/${i}`)).join(',')}]`;
  if (isPlainObject(value)) {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k], `${at}/${k}`)}`).join(',')}}`;
  }
  throw new SchemaError(`${at}: ${typeof value} is not JSON`);
}

/** Does a JSON value have the given JSON Schema type? */
function hasType(value: Json, type: TypeName): boolean {
  switch (type) {
    case 'null':
      return value === null;
    case 'boolean':
      return typeof value === 'boolean';
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'number':
      return typeof value === 'number';
    case 'array':
      return Array.isArray(value);
    case 'object':
      return isPlainObject(value);
  }
}

function nonNegativeInteger(schema: Record<string, unknown>, key: string, at: string, fallback: number): number {
  const v = schema[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new SchemaError(`${at}/${key} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return v;
}

class Compiler {
  private readonly refs = new Map<string, GrammarNode>();

  constructor(private readonly document: unknown) {}

  compile(schema: unknown, at: string): GrammarNode {
    if (schema === true) return ANY;
    if (schema === false) throw new SchemaError(`${at}: the schema false accepts no value`);
    if (!isPlainObject(schema)) throw new SchemaError(`${at}: a schema must be an object or a boolean, got ${JSON.stringify(schema)}`);
    for (const key of Object.keys(schema)) {
      if (!KEYWORDS.has(key) && !ANNOTATIONS.has(key)) throw new SchemaError(`${at}: unsupported keyword "${key}"`);
    }
    if (schema.$ref !== undefined) {
      const others = Object.keys(schema).filter((k) => k !== '$ref' && KEYWORDS.has(k));
      if (others.length) throw new SchemaError(`${at}: "$ref" next to ${others.map((k) => `"${k}"`).join(', ')} is not supported`);
      return this.ref(schema.$ref, at);
    }
    if (schema.anyOf !== undefined) {
      const extra = Object.keys(schema).filter((k) => KEYWORDS.has(k) && k !== 'anyOf');
      if (extra.length) throw new SchemaError(`${at}: "anyOf" next to ${extra.map((k) => `"${k}"`).join(', ')} is not supported (put them inside each option)`);
      if (!Array.isArray(schema.anyOf) || schema.anyOf.length === 0) throw new SchemaError(`${at}/anyOf must be a non-empty array of schemas`);
      const options = schema.anyOf.map((s, i) => this.compile(s, `${at}/anyOf/${i}`));
      return options.length === 1 ? options[0] : { kind: 'anyOf', options };
    }
    const types = this.types(schema, at);
    if (schema.enum !== undefined || schema.const !== undefined) return this.literal(schema, types, at);
    // Without "type", the keywords present say which types are meant ({"properties": …} is an object); none → any value.
    const meant = types ?? TYPES.filter((t) => t !== 'integer' && KEYWORDS_OF[t].some((k) => k in schema));
    if (meant.length === 0) return ANY;
    const variants = meant.map((t) => this.typed(t, schema, at));
    return variants.length === 1 ? variants[0] : { kind: 'anyOf', options: variants };
  }

  private types(schema: Record<string, unknown>, at: string): TypeName[] | null {
    const t = schema.type;
    if (t === undefined) return null;
    const list = Array.isArray(t) ? t : [t];
    if (list.length === 0) throw new SchemaError(`${at}/type must not be an empty list`);
    for (const name of list) {
      if (typeof name !== 'string' || !(TYPES as readonly string[]).includes(name)) {
        throw new SchemaError(`${at}/type: ${JSON.stringify(name)} is not a JSON Schema type (${TYPES.join(', ')})`);
      }
    }
    // "number" already takes every integer.
    const names = [...new Set(list as TypeName[])];
    return names.includes('number') ? names.filter((n) => n !== 'integer') : names;
  }

  private ref(ref: unknown, at: string): GrammarNode {
    if (typeof ref !== 'string') throw new SchemaError(`${at}/$ref must be a string`);
    const cached = this.refs.get(ref);
    if (cached) return cached;
    const m = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(ref);
    if (!m) throw new SchemaError(`${at}/$ref "${ref}" is not supported (only "#/$defs/name" and "#/definitions/name")`);
    const defs = isPlainObject(this.document) ? this.document[m[1]] : undefined;
    const name = m[2].replace(/~1/g, '/').replace(/~0/g, '~');
    if (!isPlainObject(defs) || !(name in defs)) throw new SchemaError(`${at}/$ref "${ref}" points to nothing`);
    // A placeholder first, filled in place, so a recursive definition refers to itself.
    const node = { kind: 'anyOf', options: [] } as GrammarNode;
    this.refs.set(ref, node);
    const target = this.compile(defs[name], `#/${m[1]}/${name}`);
    Object.assign(node, target.kind === 'anyOf' ? target : { kind: 'anyOf', options: [target] });
    return node;
  }

  private literal(schema: Record<string, unknown>, types: TypeName[] | null, at: string): GrammarNode {
    let values: unknown[];
    if (schema.const !== undefined) {
      if (schema.enum !== undefined) throw new SchemaError(`${at}: "enum" and "const" together are not supported`);
      values = [schema.const];
    } else {
      if (!Array.isArray(schema.enum) || schema.enum.length === 0) throw new SchemaError(`${at}/enum must be a non-empty array`);
      values = schema.enum;
    }
    const texts = new Set<string>();
    for (const v of values) {
      const text = compactJson(v, `${at}/enum`);
      if (types === null || types.some((t) => hasType(v as Json, t))) texts.add(text);
    }
    if (texts.size === 0) throw new SchemaError(`${at}: no "enum"/"const" value has the type ${JSON.stringify(schema.type)}`);
    return { kind: 'literal', texts: [...texts].map((t) => encoder.encode(t)) };
  }

  private typed(type: TypeName, schema: Record<string, unknown>, at: string): GrammarNode {
    switch (type) {
      case 'null':
        return { kind: 'literal', texts: [encoder.encode('null')] };
      case 'boolean':
        return { kind: 'literal', texts: [encoder.encode('true'), encoder.encode('false')] };
      case 'string':
        return this.string(schema, at);
      case 'integer':
      case 'number':
        return { kind: 'number', integer: type === 'integer', bounds: this.bounds(schema, at, type === 'integer') };
      case 'array':
        return this.array(schema, at);
      case 'object':
        return this.object(schema, at);
    }
  }

  private string(schema: Record<string, unknown>, at: string): GrammarNode {
    const minLength = nonNegativeInteger(schema, 'minLength', at, 0);
    const maxLength = nonNegativeInteger(schema, 'maxLength', at, Infinity);
    if (minLength > maxLength) throw new SchemaError(`${at}: minLength ${minLength} is above maxLength ${maxLength}`);
    let pattern: PatternMachine | null = null;
    if (schema.pattern !== undefined) {
      if (typeof schema.pattern !== 'string') throw new SchemaError(`${at}/pattern must be a string`);
      try {
        pattern = compilePattern(schema.pattern);
      } catch (e) {
        throw new SchemaError(`${at}/pattern: ${(e as Error).message}`);
      }
    }
    return { kind: 'string', minLength, maxLength, pattern };
  }

  private bounds(schema: Record<string, unknown>, at: string, integer: boolean): NumberBounds | null {
    const read = (key: string): number | undefined => {
      const v = schema[key];
      if (v === undefined) return undefined;
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new SchemaError(`${at}/${key} must be a number, got ${JSON.stringify(v)}`);
      if (Math.abs(v) > MAX_BOUND) throw new SchemaError(`${at}/${key} ${v} is outside the supported range ±${MAX_BOUND}`);
      return v;
    };
    const minimum = read('minimum');
    const maximum = read('maximum');
    const exMin = read('exclusiveMinimum');
    const exMax = read('exclusiveMaximum');
    if ([minimum, maximum, exMin, exMax].every((v) => v === undefined)) return null;
    let min = -Infinity;
    let minExclusive = false;
    if (minimum !== undefined) min = minimum;
    if (exMin !== undefined && exMin >= min) [min, minExclusive] = [exMin, true];
    let max = Infinity;
    let maxExclusive = false;
    if (maximum !== undefined) max = maximum;
    if (exMax !== undefined && exMax <= max) [max, maxExclusive] = [exMax, true];
    if (integer) {
      // Integer bounds become inclusive integer bounds.
      if (min > -Infinity) [min, minExclusive] = [minExclusive ? Math.floor(min) + 1 : Math.ceil(min), false];
      if (max < Infinity) [max, maxExclusive] = [maxExclusive ? Math.ceil(max) - 1 : Math.floor(max), false];
    }
    if (min > max || (min === max && (minExclusive || maxExclusive)))
      throw new SchemaError(`${at}: no ${integer ? 'integer' : 'number'} lies between the bounds`);
    return { min, minExclusive, max, maxExclusive };
  }

  private array(schema: Record<string, unknown>, at: string): GrammarNode {
    const minItems = nonNegativeInteger(schema, 'minItems', at, 0);
    const maxItems = nonNegativeInteger(schema, 'maxItems', at, Infinity);
    if (minItems > maxItems) throw new SchemaError(`${at}: minItems ${minItems} is above maxItems ${maxItems}`);
    if (Array.isArray(schema.items)) throw new SchemaError(`${at}/items: a list of schemas (tuple form) is not supported`);
    const items = schema.items === undefined ? ANY : this.compile(schema.items, `${at}/items`);
    return { kind: 'array', items, minItems, maxItems };
  }

  private object(schema: Record<string, unknown>, at: string): GrammarNode {
    const props = schema.properties ?? {};
    if (!isPlainObject(props)) throw new SchemaError(`${at}/properties must be an object`);
    const required = schema.required ?? [];
    if (!Array.isArray(required) || required.some((r) => typeof r !== 'string')) throw new SchemaError(`${at}/required must be an array of strings`);
    const names = Object.keys(props);
    for (const r of required as string[]) {
      if (!names.includes(r)) throw new SchemaError(`${at}/required: "${r}" must be listed in properties`);
    }
    const properties = names.map((name) => ({
      name,
      key: encoder.encode(JSON.stringify(name).slice(1, -1)),
      node: this.compile(props[name], `${at}/properties/${name}`),
      required: (required as string[]).includes(name),
    }));
    const ap = schema.additionalProperties;
    const additional =
      ap === false || (ap === undefined && names.length > 0) ? null : ap === undefined || ap === true ? ANY : this.compile(ap, `${at}/additionalProperties`);
    return { kind: 'object', properties, additional };
  }
}

/** Compact JSON of a schema value (enum/const), with the check that it is JSON. */
function compactJson(value: unknown, at: string): string {
  canonicalJson(value, at); // throws on non-JSON
  return JSON.stringify(value);
}

const cache = new Map<string, CompiledSchema>();
const CACHE_LIMIT = 64;

/** The schema `format: json` stands for: any JSON object (as llama.cpp's json grammar and Ollama's format "json"). */
export const ANY_JSON_OBJECT_SCHEMA = Object.freeze({ type: 'object' });

/** Compiles (or takes from the cache) the grammar for a schema; throws SchemaError naming what is wrong. */
export function compileJsonSchema(schema: unknown): CompiledSchema {
  if (typeof schema === 'string') {
    try {
      schema = JSON.parse(schema);
    } catch (e) {
      throw new SchemaError(`the JSON schema is not valid JSON: ${(e as Error).message}`);
    }
  }
  const canonical = canonicalJson(schema, '#');
  const hit = cache.get(canonical);
  if (hit) return hit;
  const compiled: CompiledSchema = { root: new Compiler(schema).compile(schema, '#'), canonical };
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
  cache.set(canonical, compiled);
  return compiled;
}

/**
 * The schema a JSON format stands for, compiled (cached) and checked: throws SchemaError for an unsupported keyword or
 * an invalid schema. `schema` is its canonical form: what a remote engine sends on as its response format.
 */
export function compileJsonFormat(format: JsonFormat): { schema: object; compiled: CompiledSchema } {
  if (format === null || typeof format !== 'object' || (format.type !== 'json' && format.type !== 'json_schema')) {
    throw new SchemaError(`the output format must be {type: 'json'} or {type: 'json_schema', schema}, got ${JSON.stringify(format)}`);
  }
  if (format.type === 'json_schema' && (format.schema === undefined || format.schema === null || format.schema === '')) {
    throw new SchemaError('the output format json_schema needs a schema');
  }
  const compiled = compileJsonSchema(format.type === 'json' ? ANY_JSON_OBJECT_SCHEMA : format.schema);
  return { schema: JSON.parse(compiled.canonical) as object, compiled };
}

const CUT_OFF_BY: Partial<Record<FinishReason, string>> = { stop: 'a stop string', aborted: 'an abort', time: 'the time limit' };

/** The answer ended before its JSON document was complete (token limit, stop string, abort, time limit). */
export class AnswerCutOffError extends Error {
  constructor(
    readonly partialText: string,
    readonly finishReason: FinishReason,
    tokens: number,
  ) {
    const why = finishReason === 'length' ? `the token limit (${tokens} tokens)` : (CUT_OFF_BY[finishReason] ?? finishReason);
    super(`the answer was cut off by ${why} before its JSON was complete; partial text: ${partialText}`);
    this.name = 'AnswerCutOffError';
  }
}

/** The parsed value of a constrained answer, or AnswerCutOffError when the document did not close. */
export function parseJsonAnswer(text: string, complete: boolean, finishReason: FinishReason, tokens: number): unknown {
  if (!complete) throw new AnswerCutOffError(text, finishReason, tokens);
  return JSON.parse(text);
}

/**
 * The response_format an OpenAI-compatible server takes for a JSON format: json_object, or json_schema with the
 * canonical schema (strict, as the constrained decoder here is).
 */
export function openAiResponseFormat(format: JsonFormat): { type: string; [key: string]: unknown } {
  const { schema } = compileJsonFormat(format);
  if (format.type === 'json') return { type: 'json_object' };
  return { type: 'json_schema', json_schema: { name: 'answer', schema, strict: true } };
}

/** Whether a parsed value matches the compiled schema (its compact JSON is a complete document of the grammar). */
export function matchesSchema(value: unknown, compiled: CompiledSchema): boolean {
  const text = JSON.stringify(value);
  if (text === undefined) return false;
  return isComplete(advanceBytes(initialState(compiled.root), encoder.encode(text)));
}

/**
 * The parsed answer of an engine that constrains on its own side (a remote server given the response format): cut
 * off unless it ended with EOS, and checked against the schema here.
 */
export function parseCheckedJsonAnswer(text: string, finishReason: FinishReason, tokens: number, format: JsonFormat): unknown {
  if (finishReason !== 'eos') throw new AnswerCutOffError(text, finishReason, tokens);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Error(`the answer is not valid JSON (${(e as Error).message}): ${text}`);
  }
  if (!matchesSchema(value, compileJsonFormat(format).compiled)) throw new Error(`the answer does not match the JSON schema: ${text}`);
  return value;
}
