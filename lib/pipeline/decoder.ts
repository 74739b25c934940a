// The LLaMA-family decoder with its KV cache, driven inside the inference worker. It speaks the
// transformers.js decoder_model_merged contract (inputs_embeds, attention_mask, position_ids,
// past_key_values.{i}.key/value → logits, present.{i}.key/value), taking names and dtypes from the session.
import type { EmbedTable } from '../model/embed-table';
import { DECODER_IO, EMBED_IO } from '../model/graph-io';
import type { WorkerSession } from '../runtime/types';
import type { TensorValue } from '../runtime/tensor';
import { floatArrayToHalf, halfArrayToFloat } from '../util/float16';
import { checkKvInputs, KvShape } from './graph-check';

type KvArray = Float32Array | Uint16Array;

/**
 * Past keys/values of every layer for `batch` sequences: each buffer is [batch, kvHeads, capacity, headDim] in the
 * session's dtype, keyed by its past input name, with the first `length` positions filled.
 */
export interface KvCache {
  batch: number;
  length: number;
  capacity: number;
  /**
   * Leading positions of each sequence that are padding (masked out): sequences of different lengths share one
   * batch left-padded, so every row writes its next position at the same index.
   */
  pads: number[];
  data: Record<string, KvArray>;
}

/**
 * How the cache reaches the graph:
 *  - 'copy': past in, a new present out each step (present = past + new; every graph's contract);
 *  - 'shared': one preallocated buffer per layer is both the past input and the present output, and the graph
 *    writes the new positions in place (com.microsoft GroupQueryAttention shares the buffer when the two are the
 *    same memory). No per-step copy or allocation of the cache.
 */
export type KvMode = 'copy' | 'shared';

/** Where a row of a new cache comes from: sequence `row` of `cache`, its positions moved `shift` places right (left when negative). */
interface RowSource {
  cache: KvCache;
  row: number;
  shift: number;
}

/** A new cache of `rows.length` sequences of `length` positions in buffers of capacity `to`; heads × hd per position. */
function relayoutRows(rows: readonly RowSource[], length: number, to: number, heads: number, hd: number): KvCache {
  const data: Record<string, KvArray> = {};
  for (const name of Object.keys(rows[0]?.cache.data ?? {})) {
    const sample = rows[0].cache.data[name];
    const dst = sample instanceof Float32Array ? new Float32Array(rows.length * heads * to * hd) : new Uint16Array(rows.length * heads * to * hd);
    rows.forEach(({ cache, row, shift }, i) => {
      const src = cache.data[name];
      const skip = Math.max(0, -shift); // a negative shift drops that many leading (pad) positions
      for (let h = 0; h < heads; h++) {
        const s = (row * heads + h) * cache.capacity * hd;
        dst.set(src.subarray(s + skip * hd, s + cache.length * hd), ((i * heads + h) * to + shift + skip) * hd);
      }
    });
    data[name] = dst;
  }
  return { batch: rows.length, length, capacity: to, pads: rows.map(({ cache, row, shift }) => cache.pads[row] + shift), data };
}

/** Copies the first `length` positions of sequences `rows` of [B, heads, from, hd] buffers into new [rows.length, heads, to, hd] ones. */
function relayout(cache: KvCache, rows: readonly number[], to: number, heads: number, hd: number): KvCache {
  return relayoutRows(
    rows.map((row) => ({ cache, row, shift: 0 })),
    cache.length,
    to,
    heads,
    hd,
  );
}

const identityRows = (n: number) => Array.from({ length: n }, (_, i) => i);

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

/**
 * The int64 attention mask: 0 over each row's leading pads, 1 after. Without pads, masks are views of one all-ones
 * buffer that grows by doubling (ORT only reads it).
 */
class PaddedMask {
  private ones = new BigInt64Array(0);

  tensor(pads: readonly number[], total: number): TensorValue {
    const batch = pads.length;
    const n = batch * total;
    if (pads.some((p) => p > 0)) {
      const data = new BigInt64Array(n).fill(1n);
      pads.forEach((p, b) => data.fill(0n, b * total, b * total + p));
      return { type: 'int64', dims: [batch, total], data };
    }
    if (this.ones.length < n) this.ones = new BigInt64Array(Math.max(n, 2 * this.ones.length)).fill(1n);
    return { type: 'int64', dims: [batch, total], data: this.ones.subarray(0, n) };
  }
}

/** Whether a decoder session writes its KV cache in place (probed once per session, see KvDecoder.probe). */
const sharedVerdicts = new WeakMap<WorkerSession, Promise<boolean>>();

/** Lookups of at most this many ids (decode steps, batched or beams) read the table; a prompt runs the session. */
const TABLE_MAX_IDS = 16;

export class KvDecoder {
  readonly vocabSize: number;
  private readonly embedsType: FloatType;
  private readonly kvType: FloatType;
  private readonly inputNames: Set<string>;
  /** Each layer's [past input, present output] names, keys then values (made once, not per step). */
  private readonly kvNames: Array<[past: string, present: string]> = [];
  private readonly mask = new PaddedMask();
  /** Position ids, in a buffer kept between steps (ORT only reads feeds). */
  private positions = new BigInt64Array(0);
  /** The logits type when one-token steps write into a bound buffer; null: ORT allocates each step's logits. */
  private readonly logitsType: FloatType | null;
  /** One-token steps' logits [batch, 1, vocab], rewritten by every step. */
  private stepLogits: TensorValue | null = null;
  private cache: KvCache;
  private mode: KvMode = 'copy';
  /** Positions the shared buffers are allocated for on the next growth (prompt + new tokens). */
  private reserved = 0;

  /**
   * `embedTable`: the embed graph's table when it is a plain Gather (see openEmbedTable): lookups read its rows
   * instead of running the embed session, whose run costs a sizeable share of a decode step on a small model.
   */
  constructor(
    private readonly embedSession: WorkerSession,
    private readonly decoderSession: WorkerSession,
    private readonly shape: KvShape,
    private readonly embedTable: EmbedTable | null = null,
  ) {
    checkKvInputs(decoderSession.info.inputs, shape);
    if (embedTable && (embedTable.vocabSize < shape.vocabSize || embedTable.hiddenSize !== shape.hiddenSize)) {
      throw new Error(
        `the embedding table is [${embedTable.vocabSize}, ${embedTable.hiddenSize}] but the decoder takes ${shape.vocabSize} tokens of width ${shape.hiddenSize}`,
      );
    }
    this.vocabSize = shape.vocabSize;
    this.inputNames = new Set(decoderSession.info.inputs.map((i) => i.name));
    this.embedsType = floatType(decoderSession, DECODER_IO.inputsEmbeds);
    this.kvType = floatType(decoderSession, DECODER_IO.pastKey(0));
    const logits = decoderSession.info.outputs.find((o) => o.name === DECODER_IO.logits);
    this.logitsType = logits?.type === 'float32' || logits?.type === 'float16' ? logits.type : null;
    for (let l = 0; l < shape.layers; l++) {
      this.kvNames.push([DECODER_IO.pastKey(l), DECODER_IO.presentKey(l)], [DECODER_IO.pastValue(l), DECODER_IO.presentValue(l)]);
    }
    this.cache = this.emptyCache(1, 0);
  }

  /**
   * Picks the KV mode: 'shared' when asked for and the graph does write the cache in place (a one-token run on a
   * two-position buffer: a graph that concatenates refuses the bound output, whose shape differs from its present).
   */
  async useMode(wanted: KvMode): Promise<KvMode> {
    if (wanted === 'shared') {
      let verdict = sharedVerdicts.get(this.decoderSession);
      if (!verdict) {
        verdict = this.probe();
        sharedVerdicts.set(this.decoderSession, verdict);
      }
      this.mode = (await verdict) ? 'shared' : 'copy';
    } else {
      this.mode = 'copy';
    }
    this.cache = this.emptyCache(1, 0);
    return this.mode;
  }

  private async probe(): Promise<boolean> {
    this.mode = 'shared';
    this.cache = this.emptyCache(1, 2);
    try {
      await this.forward(new Float32Array(this.shape.hiddenSize).fill(0.5), 1);
    } catch {
      return false;
    } finally {
      this.mode = 'copy';
    }
    // The new position must be in the bound buffer: position 0 of the first head of layer 0's keys.
    const keys = this.cache.data[DECODER_IO.pastKey(0)];
    return keys.subarray(0, this.shape.headDim).some((v) => v !== 0);
  }

  /** Sizes the shared buffers for `positions` in all (prompt and new tokens), so they need not grow. */
  reserve(positions: number): void {
    this.reserved = positions;
  }

  private emptyCache(batch: number, capacity: number): KvCache {
    const n = batch * this.shape.kvHeads * capacity * this.shape.headDim;
    const data: Record<string, KvArray> = {};
    for (const [name] of this.kvNames) data[name] = this.kvType === 'float32' ? new Float32Array(n) : new Uint16Array(n);
    return { batch, length: 0, capacity, pads: new Array<number>(batch).fill(0), data };
  }

  get cacheLength(): number {
    return this.cache.length;
  }

  get kvMode(): KvMode {
    return this.mode;
  }

  /** The current cache, as a copy that later steps do not change (the copy mode never writes into a past buffer). */
  snapshot(): KvCache {
    const c = this.cache;
    return this.mode === 'copy' ? c : relayout(c, identityRows(c.batch), c.length, this.shape.kvHeads, this.shape.headDim);
  }

  restore(cache: KvCache): void {
    this.cache =
      this.mode === 'copy' ? cache : relayout(cache, identityRows(cache.batch), Math.max(cache.length, this.reserved), this.shape.kvHeads, this.shape.headDim);
  }

  /** Token embeddings [ids.length × hidden] as float32. */
  async embed(ids: ArrayLike<number>): Promise<Float32Array> {
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] < 0 || ids[i] >= this.vocabSize) {
        throw new Error(`token id ${ids[i]} is outside the model's vocabulary (0..${this.vocabSize - 1})`);
      }
    }
    if (this.embedTable && ids.length <= TABLE_MAX_IDS) return this.embedTable.rows(ids);
    const out = await this.embedSession.run({ [EMBED_IO.inputIds]: int64(ids, [1, ids.length]) });
    const embeds = out[EMBED_IO.inputsEmbeds] ?? Object.values(out)[0];
    return toFloat32(embeds);
  }

  /** The bound logits buffer of a one-token step of `batch` sequences. */
  private stepLogitsFor(batch: number): TensorValue | null {
    const type = this.logitsType;
    if (!type) return null;
    if (this.stepLogits?.dims[0] !== batch) {
      const n = batch * this.vocabSize;
      this.stepLogits = { type, dims: [batch, 1, this.vocabSize], data: type === 'float32' ? new Float32Array(n) : new Uint16Array(n) };
    }
    return this.stepLogits;
  }

  /**
   * Runs `count` new positions per sequence from `embeds` ([batch × count × hidden]) on top of the cache and
   * returns the last position's logits of each sequence. The rows of a one-token step are views of a buffer the
   * next forward rewrites: read them before stepping again.
   */
  async forward(embeds: Float32Array, count: number): Promise<Float32Array[]> {
    const { batch, length } = this.cache;
    const total = length + count;
    const shared = this.mode === 'shared';
    if (shared && total > this.cache.capacity) {
      const capacity = Math.max(total, this.reserved, 2 * this.cache.capacity);
      this.cache = relayout(this.cache, identityRows(batch), capacity, this.shape.kvHeads, this.shape.headDim);
    }
    const pastDims = [batch, this.shape.kvHeads, shared ? this.cache.capacity : length, this.shape.headDim];
    const feeds: Record<string, TensorValue> = {
      [DECODER_IO.inputsEmbeds]: floatTensor(embeds, [batch, count, this.shape.hiddenSize], this.embedsType),
    };
    // Shared: each present output is bound to its past buffer (the same tensor object), so the graph writes in place.
    const bound: Record<string, TensorValue> = {};
    for (const [past, present] of this.kvNames) {
      const t = { type: this.kvType, dims: pastDims, data: this.cache.data[past] } as TensorValue;
      feeds[past] = t;
      if (shared) bound[present] = t;
    }
    const { pads } = this.cache;
    if (this.inputNames.has(DECODER_IO.attentionMask)) feeds[DECODER_IO.attentionMask] = this.mask.tensor(pads, total);
    if (this.inputNames.has(DECODER_IO.positionIds)) {
      if (this.positions.length < batch * count) this.positions = new BigInt64Array(batch * count);
      const pos = this.positions.subarray(0, batch * count);
      for (let b = 0; b < batch; b++) for (let i = 0; i < count; i++) pos[b * count + i] = BigInt(length - pads[b] + i);
      feeds[DECODER_IO.positionIds] = { type: 'int64', dims: [batch, count], data: pos };
    }
    if (this.inputNames.has(DECODER_IO.useCacheBranch)) {
      feeds[DECODER_IO.useCacheBranch] = { type: 'bool', dims: [1], data: new Uint8Array([length > 0 ? 1 : 0]) };
    }
    if (this.inputNames.has(DECODER_IO.numLogitsToKeep)) feeds[DECODER_IO.numLogitsToKeep] = int64([1], []);

    const logitsOut = count === 1 ? this.stepLogitsFor(batch) : null;
    if (logitsOut) bound[DECODER_IO.logits] = logitsOut;
    const out = await this.decoderSession.run(feeds, shared ? [DECODER_IO.logits] : undefined, bound);
    if (shared) {
      this.cache = { ...this.cache, length: total };
    } else {
      const data: Record<string, KvArray> = {};
      for (const [past, presentName] of this.kvNames) {
        const present = out[presentName];
        if (!present) throw new Error(`decoder graph has no output ${presentName}`);
        data[past] = present.data as KvArray;
      }
      this.cache = { batch, length: total, capacity: total, pads, data };
    }

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
    const { batch, capacity } = this.cache;
    const identity = parents.length === batch && parents.every((p, i) => p === i);
    if (!identity) this.cache = relayout(this.cache, parents, capacity, this.shape.kvHeads, this.shape.headDim);
  }

  /**
   * Adds the sequences of `other` (a cache of this decoder's session, e.g. one prompt's prefill) as the last rows,
   * left-padded to a common length; room is kept for `ahead` more positions in the shared mode. `other` may be taken
   * over as it is: its decoder must not step again.
   */
  admit(other: KvCache, ahead: number): void {
    const { kvHeads, headDim } = this.shape;
    const empty = this.cache.batch === 0 || this.cache.length === 0;
    if (empty && (this.mode === 'shared' || other.capacity === other.length)) {
      // Alone in the batch (a camera's usual case): its buffers are taken, not copied into new ones, which on a 7B
      // is a ~300 MB allocation and copy per frame (forward() grows the buffers when they are too small).
      this.cache = other;
      return;
    }
    const mine = empty ? [] : identityRows(this.cache.batch);
    const length = Math.max(other.length, empty ? 0 : this.cache.length);
    const rows: RowSource[] = [
      ...mine.map((row) => ({ cache: this.cache, row, shift: length - this.cache.length })),
      ...identityRows(other.batch).map((row) => ({ cache: other, row, shift: length - other.length })),
    ];
    const capacity = this.mode === 'shared' ? Math.max(length + ahead, this.cache.capacity + length - this.cache.length) : length;
    this.cache = relayoutRows(rows, length, capacity, kvHeads, headDim);
  }

  /** Removes sequence `row`; padding that every remaining sequence has is trimmed. */
  dismiss(row: number): void {
    const keep = identityRows(this.cache.batch).filter((r) => r !== row);
    if (keep.length === 0) {
      this.cache = this.emptyCache(0, 0);
      return;
    }
    const trim = Math.min(...keep.map((r) => this.cache.pads[r]));
    const rows = keep.map((r) => ({ cache: this.cache, row: r, shift: -trim }));
    const { kvHeads, headDim } = this.shape;
    this.cache = relayoutRows(rows, this.cache.length - trim, this.mode === 'shared' ? this.cache.capacity : this.cache.length - trim, kvHeads, headDim);
  }

  /** The cache as it stands (not a copy): for admit() into another decoder of the same session. */
  get state(): KvCache {
    return this.cache;
  }

  /** One new token per sequence after reordering the cache by `parents` (the generation loop's stepper). */
  async step(tokens: number[], parents: number[]): Promise<Float32Array[]> {
    this.gather(parents);
    const embeds = await this.embed(tokens);
    return this.forward(embeds, 1);
  }
}
