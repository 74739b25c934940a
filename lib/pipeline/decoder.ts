// The LLaMA-family decoder with its KV cache, driven inside the inference worker. It speaks the
// transformers.js decoder_model_merged contract (inputs_embeds, attention_mask, position_ids,
// past_key_values.{i}.key/value → logits, present.{i}.key/value), taking names and dtypes from the session.
import { DECODER_IO } from '../model/graph-io';
import type { WorkerSession } from '../runtime/types';
import type { TensorValue } from '../runtime/tensor';
import { floatArrayToHalf, halfArrayToFloat } from '../util/float16';
import { checkKvInputs, KvShape } from './graph-check';

/** Past keys/values of every layer for `batch` sequences of `length` tokens, in the session's names and dtype. */
export interface KvCache {
  batch: number;
  length: number;
  tensors: Record<string, TensorValue>;
}

type FloatType = 'float32' | 'float16';

function floatType(session: WorkerSession, name: string): FloatType {
  const info = session.info.inputs.find((i) => i.name === name);
  if (!info) throw new Error(`decoder graph has no input "${name}"`);
  if (info.type !== 'float32' && info.type !== 'float16') {
    throw new Error(`decoder input "${name}" has type ${info.type}; expected float32 or float16`);
  }
  return info.type;
}

export function toFloat32(t: TensorValue): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float16') return halfArrayToFloat(t.data as Uint16Array);
  throw new Error(`expected a float tensor, got ${t.type}`);
}

function floatTensor(data: Float32Array, dims: number[], type: FloatType): TensorValue {
  return type === 'float32' ? { type, dims, data } : { type, dims, data: floatArrayToHalf(data) };
}

function int64(values: ArrayLike<number>, dims: number[]): TensorValue {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]);
  return { type: 'int64', dims, data };
}

/** An all-ones int64 attention mask; masks are views of one buffer that grows by doubling (ORT only reads it). */
class OnesMask {
  private ones = new BigInt64Array(0);

  tensor(batch: number, total: number): TensorValue {
    const n = batch * total;
    if (this.ones.length < n) this.ones = new BigInt64Array(Math.max(n, 2 * this.ones.length)).fill(1n);
    return { type: 'int64', dims: [batch, total], data: this.ones.subarray(0, n) };
  }
}

export class KvDecoder {
  readonly vocabSize: number;
  private readonly embedsType: FloatType;
  private readonly kvType: FloatType;
  private readonly inputNames: Set<string>;
  private readonly mask = new OnesMask();
  private cache: KvCache;

  constructor(
    private readonly embedSession: WorkerSession,
    private readonly decoderSession: WorkerSession,
    private readonly shape: KvShape,
  ) {
    checkKvInputs(decoderSession.info.inputs, shape);
    this.vocabSize = shape.vocabSize;
    this.inputNames = new Set(decoderSession.info.inputs.map((i) => i.name));
    this.embedsType = floatType(decoderSession, DECODER_IO.inputsEmbeds);
    this.kvType = floatType(decoderSession, DECODER_IO.pastKey(0));
    this.cache = this.emptyCache(1);
  }

  emptyCache(batch: number): KvCache {
    const tensors: Record<string, TensorValue> = {};
    const dims = [batch, this.shape.kvHeads, 0, this.shape.headDim];
    for (let l = 0; l < this.shape.layers; l++) {
      for (const name of [DECODER_IO.pastKey(l), DECODER_IO.pastValue(l)]) {
        tensors[name] =
          this.kvType === 'float32'
            ? { type: 'float32', dims, data: new Float32Array(0) }
            : { type: 'float16', dims, data: new Uint16Array(0) };
      }
    }
    return { batch, length: 0, tensors };
  }

  get cacheLength(): number {
    return this.cache.length;
  }

  /** The current cache; the portable decoder never writes into a past tensor, so a snapshot stays valid. */
  snapshot(): KvCache {
    return this.cache;
  }

  restore(cache: KvCache): void {
    this.cache = cache;
  }

  /** Token embeddings [ids.length × hidden] as float32. */
  async embed(ids: ArrayLike<number>): Promise<Float32Array> {
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] < 0 || ids[i] >= this.vocabSize) {
        throw new Error(`token id ${ids[i]} is outside the model's vocabulary (0..${this.vocabSize - 1})`);
      }
    }
    const out = await this.embedSession.run({ input_ids: int64(ids, [1, ids.length]) });
    const embeds = out.inputs_embeds ?? Object.values(out)[0];
    return toFloat32(embeds);
  }

  /**
   * Runs `count` new positions per sequence from `embeds` ([batch × count × hidden]) on top of the cache and
   * returns the last position's logits of each sequence.
   */
  async forward(embeds: Float32Array, count: number): Promise<Float32Array[]> {
    const { batch, length } = this.cache;
    const total = length + count;
    const feeds: Record<string, TensorValue> = {
      ...this.cache.tensors,
      [DECODER_IO.inputsEmbeds]: floatTensor(embeds, [batch, count, this.shape.hiddenSize], this.embedsType),
    };
    if (this.inputNames.has(DECODER_IO.attentionMask)) feeds[DECODER_IO.attentionMask] = this.mask.tensor(batch, total);
    if (this.inputNames.has(DECODER_IO.positionIds)) {
      const pos = new BigInt64Array(batch * count);
      for (let b = 0; b < batch; b++) for (let i = 0; i < count; i++) pos[b * count + i] = BigInt(length + i);
      feeds[DECODER_IO.positionIds] = { type: 'int64', dims: [batch, count], data: pos };
    }
    if (this.inputNames.has(DECODER_IO.useCacheBranch)) {
      feeds[DECODER_IO.useCacheBranch] = { type: 'bool', dims: [1], data: new Uint8Array([length > 0 ? 1 : 0]) };
    }
    if (this.inputNames.has(DECODER_IO.numLogitsToKeep)) feeds[DECODER_IO.numLogitsToKeep] = int64([1], []);

    const out = await this.decoderSession.run(feeds);
    const tensors: Record<string, TensorValue> = {};
    for (let l = 0; l < this.shape.layers; l++) {
      for (const [past, presentName] of [[DECODER_IO.pastKey(l), DECODER_IO.presentKey(l)], [DECODER_IO.pastValue(l), DECODER_IO.presentValue(l)]]) {
        const present = out[presentName];
        if (!present) throw new Error(`decoder graph has no output ${presentName}`);
        tensors[past] = present;
      }
    }
    this.cache = { batch, length: total, tensors };

    const logits = out[DECODER_IO.logits];
    if (!logits) throw new Error(`decoder graph has no output "${DECODER_IO.logits}"`);
    const positions = logits.dims[1];
    const vocab = logits.dims[2];
    const rows: Float32Array[] = [];
    for (let b = 0; b < batch; b++) {
      // Only each sequence's last position is read: view it, and convert just that row from fp16.
      const start = (b * positions + positions - 1) * vocab;
      const row = (logits.data as Float32Array | Uint16Array).subarray(start, start + vocab);
      rows.push(toFloat32({ ...logits, data: row }));
    }
    return rows;
  }

  /** Reorders (and grows or shrinks) the batch: sequence i continues sequence parents[i]. */
  private gather(parents: number[]): void {
    const { batch, length } = this.cache;
    const identity = parents.length === batch && parents.every((p, i) => p === i);
    if (identity) return;
    const rowSize = this.shape.kvHeads * length * this.shape.headDim;
    const tensors: Record<string, TensorValue> = {};
    for (const [name, t] of Object.entries(this.cache.tensors)) {
      const src = t.data as Float32Array | Uint16Array;
      const dst = t.type === 'float32' ? new Float32Array(parents.length * rowSize) : new Uint16Array(parents.length * rowSize);
      parents.forEach((p, i) => dst.set(src.subarray(p * rowSize, (p + 1) * rowSize), i * rowSize));
      tensors[name] = { type: t.type, dims: [parents.length, ...t.dims.slice(1)], data: dst };
    }
    this.cache = { batch: parents.length, length, tensors };
  }

  /** One new token per sequence after reordering the cache by `parents` (the generation loop's stepper). */
  async step(tokens: number[], parents: number[]): Promise<Float32Array[]> {
    this.gather(parents);
    const embeds = await this.embed(tokens);
    return this.forward(embeds, 1);
  }
}
