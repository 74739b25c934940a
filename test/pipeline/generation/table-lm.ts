// Test inputs for the generation algorithms: small language models defined as deterministic functions from the
// generated prefix to next-token logits, a decoder stepper over them that honours the parents contract, and a
// LLaMA-like byte-fallback vocabulary with its decode.
import { seededRandom } from '../../../lib/pipeline/generation/rng';
import type { DecoderStepper } from '../../../lib/pipeline/generation/types';

export type LanguageModel = (prefix: readonly number[]) => Float32Array;

/** Pseudo-random but fixed logits per prefix: a hash of (seed, prefix) seeds the values. */
export function hashedModel(vocabSize: number, seed: number, spread = 4): LanguageModel {
  return (prefix) => {
    let h = (0x811c9dc5 ^ seed) >>> 0;
    for (const t of prefix) h = Math.imul(h ^ (t + 1), 0x01000193) >>> 0;
    const random = seededRandom(h);
    const row = new Float32Array(vocabSize);
    for (let i = 0; i < vocabSize; i++) row[i] = (random() * 2 - 1) * spread;
    return row;
  };
}

/** Follows a script: the scripted token scores `margin` above every other token; past the script, `after`. */
export function scriptedModel(vocabSize: number, script: readonly number[], after: number, margin = 10): LanguageModel {
  return (prefix) => {
    const row = new Float32Array(vocabSize);
    row[prefix.length < script.length ? script[prefix.length] : after] = margin;
    return row;
  };
}

/** Logits from explicit probability tables: probabilities(prefix) lists [token, p] pairs; others get p = 1e-9. */
export function probabilityModel(vocabSize: number, probabilities: (prefix: readonly number[]) => [number, number][]): LanguageModel {
  return (prefix) => {
    const row = new Float32Array(vocabSize).fill(Math.log(1e-9));
    for (const [token, p] of probabilities(prefix)) row[token] = Math.log(p);
    return row;
  };
}

export function logSoftmax(row: Float32Array): number[] {
  const max = Math.max(...row);
  const logZ = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
  return Array.from(row, (v) => v - logZ);
}

/** A KV-cache decoder stand-in: keeps each live sequence's prefix and builds the next list through `parents`. */
export class TableStepper implements DecoderStepper {
  readonly calls: { tokens: number[]; parents: number[] }[] = [];
  private sequences: number[][] = [[]];

  constructor(
    readonly vocabSize: number,
    private readonly model: LanguageModel,
    private readonly onStep?: () => void,
  ) {}

  initialLogits(): Float32Array {
    this.sequences = [[]];
    return this.model([]);
  }

  async step(tokens: number[], parents: number[]): Promise<Float32Array[]> {
    if (tokens.length !== parents.length) throw new Error('tokens and parents differ in length');
    this.calls.push({ tokens: [...tokens], parents: [...parents] });
    this.sequences = tokens.map((token, i) => {
      const parent = this.sequences[parents[i]];
      if (parent === undefined) throw new Error(`parent ${parents[i]} does not exist`);
      return [...parent, token];
    });
    this.onStep?.();
    return this.sequences.map((s) => this.model(s));
  }
}

/**
 * A LLaMA-like vocabulary: id 0 = EOS (decodes to nothing), ids 1..256 = byte tokens <0x00>..<0xFF>, then
 * whole pieces where '▁' stands for a space. decode joins the bytes, decodes UTF-8 (invalid or unfinished
 * sequences become U+FFFD) and strips one leading space, like the LLaMA tokenizer.json decoder.
 */
export class ByteVocab {
  static readonly EOS = 0;
  private readonly pieces: string[];

  constructor(pieces: string[] = []) {
    this.pieces = pieces;
  }

  get size(): number {
    return 257 + this.pieces.length;
  }

  byte(value: number): number {
    return 1 + value;
  }

  piece(text: string): number {
    const at = this.pieces.indexOf(text);
    if (at < 0) throw new Error(`no piece ${text}`);
    return 257 + at;
  }

  /** Byte tokens spelling text in UTF-8. */
  bytesOf(text: string): number[] {
    return [...Buffer.from(text, 'utf8')].map((b) => this.byte(b));
  }

  readonly decode = (ids: number[]): string => {
    const bytes: number[] = [];
    for (const id of ids) {
      if (id === ByteVocab.EOS) continue;
      if (id <= 256) bytes.push(id - 1);
      else bytes.push(...Buffer.from(this.pieces[id - 257].replace(/▁/g, ' '), 'utf8'));
    }
    const text = new TextDecoder('utf-8').decode(Uint8Array.from(bytes));
    return text.startsWith(' ') ? text.slice(1) : text;
  };
}
