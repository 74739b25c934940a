// Independent helpers for the JSON-schema constraint tests: random documents that match a schema, every document
// of a finite schema, tokenizations of a text, and ajv as the validator. None of them use the grammar code.
import Ajv from 'ajv';
import type { RandomSource } from '../../../lib/pipeline/generation/rng';

type Schema = Record<string, unknown>;

const ajv = new Ajv({ strict: false, allErrors: true });

/** An ajv validator; throws with ajv's message when the value does not match. */
export function validator(schema: unknown): (value: unknown) => void {
  const validate = ajv.compile(schema as object);
  return (value) => {
    if (!validate(value)) throw new Error(`${JSON.stringify(value)} does not match: ${ajv.errorsText(validate.errors)}`);
  };
}

const CHARS = ['a', 'b', 'Z', ' ', '.', ',', ':', '{', '}', '[', ']', '"', '\\', '/', '\n', '\t', '\u0001', 'é', 'ß', '中', '文', '😀', '0', '7', '-'];

function pick<T>(random: RandomSource, list: readonly T[]): T {
  return list[Math.floor(random() * list.length)];
}

function integerIn(random: RandomSource, lo: number, hi: number): number {
  return lo + Math.floor(random() * (hi - lo + 1));
}

/** A random value matching a schema of the supported subset (the pattern keyword is not generated here). */
export function randomValue(schema: unknown, random: RandomSource, depth = 0, defs: Schema = schema as Schema): unknown {
  if (schema === true || (typeof schema === 'object' && schema !== null && Object.keys(schema).length === 0)) {
    return randomValue(
      pick(
        random,
        depth > 2
          ? [{ type: 'string' }, { type: 'number' }, { type: 'null' }]
          : [{ type: 'object' }, { type: 'array' }, { type: 'string' }, { type: 'integer' }, { type: 'boolean' }],
      ),
      random,
      depth + 1,
      defs,
    );
  }
  const s = schema as Schema;
  if (typeof s.$ref === 'string') {
    const [, where, name] = s.$ref.split('/');
    return randomValue((defs[where] as Schema)[name], random, depth + 1, defs);
  }
  if (s.const !== undefined) return s.const;
  if (Array.isArray(s.enum)) return pick(random, s.enum);
  if (Array.isArray(s.anyOf)) return randomValue(pick(random, s.anyOf), random, depth + 1, defs);
  const type = Array.isArray(s.type) ? pick(random, s.type as string[]) : ((s.type as string | undefined) ?? 'object');
  switch (type) {
    case 'null':
      return null;
    case 'boolean':
      return random() < 0.5;
    case 'integer': {
      const lo = typeof s.minimum === 'number' ? s.minimum : -1000;
      const hi = typeof s.maximum === 'number' ? s.maximum : 100000;
      return integerIn(random, lo, hi);
    }
    case 'number': {
      const lo = typeof s.minimum === 'number' ? s.minimum : typeof s.exclusiveMinimum === 'number' ? s.exclusiveMinimum + 0.01 : -1000;
      const hi = typeof s.maximum === 'number' ? s.maximum : typeof s.exclusiveMaximum === 'number' ? s.exclusiveMaximum - 0.01 : 1000;
      const v = lo + random() * (hi - lo);
      const rounded = Number(v.toFixed(integerIn(random, 0, 6)));
      return rounded < lo || rounded > hi ? lo : rounded;
    }
    case 'string': {
      const min = (s.minLength as number | undefined) ?? 0;
      const max = Math.min((s.maxLength as number | undefined) ?? 12, min + 12);
      const n = integerIn(random, min, max);
      let out = '';
      for (let i = 0; i < n; i++) out += pick(random, CHARS);
      return out;
    }
    case 'array': {
      const min = (s.minItems as number | undefined) ?? 0;
      const max = Math.min((s.maxItems as number | undefined) ?? 4, min + (depth > 2 ? 1 : 4));
      return Array.from({ length: integerIn(random, min, max) }, () => randomValue(s.items ?? {}, random, depth + 1, defs));
    }
    case 'object': {
      const props = (s.properties ?? {}) as Record<string, unknown>;
      const required = (s.required ?? []) as string[];
      const names = Object.keys(props).filter((n) => required.includes(n) || random() < 0.6);
      if (Object.keys(props).length === 0 && s.additionalProperties !== false && depth < 3) {
        for (let i = integerIn(random, 0, 3); i > 0; i--) names.push(`k${integerIn(random, 0, 99)}${pick(random, CHARS)}`);
      }
      // Random key order: the grammar takes keys in any order.
      for (let i = names.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [names[i], names[j]] = [names[j], names[i]];
      }
      const out: Record<string, unknown> = {};
      for (const n of names) out[n] = randomValue(props[n] ?? {}, random, depth + 1, defs);
      return out;
    }
  }
  throw new Error(`randomValue: unsupported type ${type}`);
}

function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((x, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [x, ...rest]));
}

function subsets<T>(items: T[]): T[][] {
  return items.reduce<T[][]>((acc, x) => [...acc, ...acc.map((s) => [...s, x])], [[]]);
}

/**
 * Every compact JSON text of a finite schema (booleans, null, enum, bounded integers, strings up to maxLength over
 * `alphabet`, arrays up to maxItems, objects without additional properties in every key order, anyOf).
 */
export function allDocuments(schema: Schema, alphabet: readonly string[]): string[] {
  if (Array.isArray(schema.anyOf)) return [...new Set((schema.anyOf as Schema[]).flatMap((s) => allDocuments(s, alphabet)))];
  if (Array.isArray(schema.enum)) return (schema.enum as unknown[]).map((v) => JSON.stringify(v));
  switch (schema.type) {
    case 'null':
      return ['null'];
    case 'boolean':
      return ['true', 'false'];
    case 'integer': {
      const out: string[] = [];
      for (let v = schema.minimum as number; v <= (schema.maximum as number); v++) out.push(String(v));
      return out;
    }
    case 'string': {
      let level = [''];
      const all = [''];
      for (let n = 1; n <= (schema.maxLength as number); n++) {
        level = level.flatMap((s) => alphabet.map((c) => s + c));
        all.push(...level);
      }
      return all.filter((s) => s.length >= ((schema.minLength as number | undefined) ?? 0)).map((s) => JSON.stringify(s));
    }
    case 'array': {
      const items = allDocuments(schema.items as Schema, alphabet);
      const out: string[] = [];
      let level: string[][] = [[]];
      for (let n = 0; n <= (schema.maxItems as number); n++) {
        if (n >= ((schema.minItems as number | undefined) ?? 0)) out.push(...level.map((l) => `[${l.join(',')}]`));
        level = level.flatMap((l) => items.map((i) => [...l, i]));
      }
      return out;
    }
    case 'object': {
      const props = schema.properties as Record<string, Schema>;
      const required = (schema.required ?? []) as string[];
      const optional = Object.keys(props).filter((n) => !required.includes(n));
      const values = new Map(Object.keys(props).map((n) => [n, allDocuments(props[n], alphabet)]));
      const out: string[] = [];
      for (const chosen of subsets(optional)) {
        for (const order of permutations([...required, ...chosen])) {
          let level = [''];
          order.forEach((name, i) => {
            level = level.flatMap((prefix) => values.get(name)!.map((v) => `${prefix}${i ? ',' : ''}${JSON.stringify(name)}:${v}`));
          });
          out.push(...level.map((body) => `{${body}}`));
        }
      }
      return out;
    }
  }
  throw new Error(`allDocuments: unsupported schema ${JSON.stringify(schema)}`);
}

/** A random split of bytes into tokens of the vocabulary (any split the model could produce, not only the encoder's). */
export function randomTokenization(bytes: Uint8Array, byBytes: Map<string, number[]>, maxTokenLength: number, random: RandomSource): number[] {
  const ids: number[] = [];
  for (let i = 0; i < bytes.length;) {
    const options: Array<[number, number]> = [];
    for (let n = 1; n <= maxTokenLength && i + n <= bytes.length; n++) {
      const found = byBytes.get(Buffer.from(bytes.subarray(i, i + n)).toString('latin1'));
      if (found) for (const id of found) options.push([id, n]);
    }
    if (options.length === 0) throw new Error(`no token spells byte ${bytes[i]} at ${i}`);
    // Prefer longer tokens (as BPE does) but take every length sometimes.
    const [id, n] = random() < 0.6 ? options[options.length - 1] : pick(random, options);
    ids.push(id);
    i += n;
  }
  return ids;
}

/** token bytes (latin1 string) → ids with those bytes. */
export function indexByBytes(tokens: ReadonlyArray<Uint8Array | null>): { byBytes: Map<string, number[]>; maxLength: number } {
  const byBytes = new Map<string, number[]>();
  let maxLength = 0;
  tokens.forEach((bytes, id) => {
    if (!bytes || bytes.length === 0) return;
    const key = Buffer.from(bytes).toString('latin1');
    byBytes.set(key, [...(byBytes.get(key) ?? []), id]);
    maxLength = Math.max(maxLength, bytes.length);
  });
  return { byBytes, maxLength };
}
