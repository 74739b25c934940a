// Helpers for the ONNX builder specs: run built graphs in onnxruntime-node and compare with the float64 reference.
import * as ort from 'onnxruntime-node';
import { headDim, LlavaConfig } from '../../lib/model/config';
import type { Graph } from '../../lib/onnx/graph';
import { DEFAULT_BLOCK_SIZE, dequantizeBlockwise, QuantBits, quantizeBlockwise } from '../../lib/onnx/quantize';
import { lmHeadName } from '../../lib/onnx/text/llama';
import { TEXT_PREFIX } from '../../lib/onnx/weight-names';
import type { WeightSource, WeightTensor } from '../../lib/onnx/weights';
import { RefKvCache, RefTensor } from '../support/reference';

export async function sessionOf(graph: Graph): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(graph.toBytes());
}

/** Deterministic smooth values in about [-1, 1]. */
export function wave(n: number, phase = 0): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(0.37 * i + phase) * Math.cos(0.11 * i));
}

export interface OrtDecoderStep {
  logits: Float32Array;
  dims: readonly number[];
  present: Record<string, ort.Tensor>;
}

/** One decoder call; `past` is the previous step's present (renamed), empty when omitted. */
export async function runDecoder(
  s: ort.InferenceSession,
  c: LlavaConfig,
  embeds: RefTensor,
  mask: number[],
  positions: number[],
  past?: Record<string, ort.Tensor>,
): Promise<OrtDecoderStep> {
  const t = c.text_config;
  const [B, S, H] = embeds.dims;
  const feeds: Record<string, ort.Tensor> = {
    inputs_embeds: new ort.Tensor('float32', Float32Array.from(embeds.data), [B, S, H]),
    attention_mask: new ort.Tensor('int64', BigInt64Array.from(mask.map(BigInt)), [B, mask.length / B]),
    position_ids: new ort.Tensor('int64', BigInt64Array.from(positions.map(BigInt)), [B, S]),
  };
  for (let i = 0; i < t.num_hidden_layers; i++) {
    for (const kind of ['key', 'value']) {
      feeds[`past_key_values.${i}.${kind}`] =
        past?.[`present.${i}.${kind}`] ?? new ort.Tensor('float32', new Float32Array(0), [B, t.num_key_value_heads, 0, headDim(t)]);
    }
  }
  const out = await s.run(feeds);
  const present: Record<string, ort.Tensor> = {};
  for (const [k, v] of Object.entries(out)) if (k.startsWith('present.')) present[k] = v;
  return { logits: out.logits.data as Float32Array, dims: out.logits.dims, present };
}

/** Rows [from, to) of the sequence axis of a [B, S, H] tensor. */
export function seqSlice(x: RefTensor, from: number, to: number): RefTensor {
  const [B, S, H] = x.dims;
  const data = new Float64Array(B * (to - from) * H);
  for (let b = 0; b < B; b++) data.set(x.data.subarray((b * S + from) * H, (b * S + to) * H), b * (to - from) * H);
  return { data, dims: [B, to - from, H] };
}

export function presentAsRef(present: Record<string, ort.Tensor>, c: LlavaConfig): RefKvCache {
  const layers = c.text_config.num_hidden_layers;
  const first = present['present.0.key'];
  return {
    batch: first.dims[0],
    length: first.dims[2],
    keys: Array.from({ length: layers }, (_, i) => Float64Array.from(present[`present.${i}.key`].data as Float32Array)),
    values: Array.from({ length: layers }, (_, i) => Float64Array.from(present[`present.${i}.value`].data as Float32Array)),
  };
}

/** The weights a quantized decoder stores as MatMulNBits (the lm_head reads the embeddings when tied). */
export function quantizedWeightNames(c: LlavaConfig): string[] {
  const names: string[] = [];
  for (let i = 0; i < c.text_config.num_hidden_layers; i++) {
    const p = `${TEXT_PREFIX}.layers.${i}`;
    for (const n of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) names.push(`${p}.self_attn.${n}.weight`);
    for (const n of ['gate_proj', 'up_proj', 'down_proj']) names.push(`${p}.mlp.${n}.weight`);
  }
  names.push(lmHeadName(c));
  return names;
}

/** `src` with the named 2-D weights replaced by their quantize→dequantize round trip (for reference checks). */
export function dequantizedWeights(src: WeightSource, names: Iterable<string>, bits: QuantBits, blockSize = DEFAULT_BLOCK_SIZE): WeightSource {
  const quantized = new Set(names);
  return {
    names: () => src.names(),
    get(name: string): WeightTensor | undefined {
      const w = src.get(name);
      if (!w || !quantized.has(name)) return w;
      const [rows, cols] = w.shape;
      return { ...w, dtype: 'float32', read: () => dequantizeBlockwise(quantizeBlockwise(w.read(), rows, cols, bits, blockSize)) };
    },
  };
}
