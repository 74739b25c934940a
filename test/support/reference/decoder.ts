// Float64 reference of the LLaMA / Mistral / Qwen2 decoder with a KV cache: RMSNorm, rotate-half RoPE (rope_theta),
// grouped-query attention with causal + padding mask (and Mistral's sliding window), SwiGLU, optional q/k/v biases,
// tied or separate lm_head.
import { headDim, LlavaConfig } from '../../../lib/model/config';
import type { WeightSource } from '../../../lib/onnx/weights';
import { linear, RefTensor, rmsNorm, silu, softmaxRow, weight } from './math';

const T = 'language_model.model';

/** Per-layer keys and values, each [batch, kv_heads, length, head_dim]. */
export interface RefKvCache {
  batch: number;
  length: number;
  keys: Float64Array[];
  values: Float64Array[];
}

export interface RefDecoderInput {
  /** [batch, seq, hidden]. */
  embeds: RefTensor;
  /** [batch, past + seq], 1 = attend. */
  attentionMask: number[];
  /** [batch, seq]. */
  positionIds: number[];
  past?: RefKvCache;
}

export interface RefDecoderOutput {
  logits: RefTensor;
  present: RefKvCache;
}

export function emptyRefCache(c: LlavaConfig, batch: number): RefKvCache {
  const layers = c.text_config.num_hidden_layers;
  return {
    batch,
    length: 0,
    keys: Array.from({ length: layers }, () => new Float64Array(0)),
    values: Array.from({ length: layers }, () => new Float64Array(0)),
  };
}

/** inputs_embeds rows for token ids [batch, seq]. */
export function referenceEmbed(src: WeightSource, c: LlavaConfig, ids: number[], batch = 1): RefTensor {
  const h = c.text_config.hidden_size;
  const table = weight(src, `${T}.embed_tokens.weight`);
  const data = new Float64Array(ids.length * h);
  ids.forEach((id, i) => data.set(table.subarray(id * h, (id + 1) * h), i * h));
  return { data, dims: [batch, ids.length / batch, h] };
}

function rope(x: Float64Array, at: number, hd: number, pos: number, theta: number): void {
  for (let i = 0; i < hd / 2; i++) {
    const angle = pos * theta ** (-(2 * i) / hd);
    const a = x[at + i];
    const b = x[at + i + hd / 2];
    x[at + i] = a * Math.cos(angle) - b * Math.sin(angle);
    x[at + i + hd / 2] = b * Math.cos(angle) + a * Math.sin(angle);
  }
}

/** Appends `fresh` [B, kvh, S, hd] to `past` [B, kvh, P, hd] along the sequence. */
function concatSeq(past: Float64Array, fresh: Float64Array, batchHeads: number, p: number, s: number, hd: number): Float64Array {
  const out = new Float64Array(batchHeads * (p + s) * hd);
  for (let bh = 0; bh < batchHeads; bh++) {
    out.set(past.subarray(bh * p * hd, (bh + 1) * p * hd), bh * (p + s) * hd);
    out.set(fresh.subarray(bh * s * hd, (bh + 1) * s * hd), (bh * (p + s) + p) * hd);
  }
  return out;
}

export function referenceDecoder(src: WeightSource, c: LlavaConfig, input: RefDecoderInput): RefDecoderOutput {
  const t = c.text_config;
  const [B, S, H] = input.embeds.dims;
  const hd = headDim(t);
  const nh = t.num_attention_heads;
  const kvh = t.num_key_value_heads;
  const groups = nh / kvh;
  const past = input.past ?? emptyRefCache(c, B);
  const P = past.length;
  const total = P + S;
  if (input.attentionMask.length !== B * total) throw new Error(`reference: attention mask has ${input.attentionMask.length} entries, expected ${B * total}`);
  const qkvBias = t.attention_bias ?? t.model_type === 'qwen2';
  // Mistral's sliding window: query i sees keys j with i − j < sliding_window (transformers' sliding mask).
  const window = t.model_type === 'mistral' && t.sliding_window ? t.sliding_window : Infinity;
  const rows = B * S;
  const w = (n: string) => weight(src, n);
  const present: RefKvCache = { batch: B, length: total, keys: [], values: [] };
  let x: Float64Array = Float64Array.from(input.embeds.data);
  for (let l = 0; l < t.num_hidden_layers; l++) {
    const p = `${T}.layers.${l}`;
    const h = rmsNorm(x, rows, H, w(`${p}.input_layernorm.weight`), t.rms_norm_eps);
    const proj = (n: string, out: number) => linear(h, rows, H, w(`${p}.self_attn.${n}.weight`), out, qkvBias ? w(`${p}.self_attn.${n}.bias`) : undefined);
    const q = proj('q_proj', nh * hd);
    const k = proj('k_proj', kvh * hd);
    const v = proj('v_proj', kvh * hd);
    // To [B, heads, S, hd] with RoPE on q and k.
    const kNew = new Float64Array(B * kvh * S * hd);
    const vNew = new Float64Array(B * kvh * S * hd);
    for (let b = 0; b < B; b++)
      for (let s = 0; s < S; s++) {
        const pos = input.positionIds[b * S + s];
        for (let n = 0; n < nh; n++) rope(q, ((b * S + s) * nh + n) * hd, hd, pos, t.rope_theta);
        for (let n = 0; n < kvh; n++) {
          const from = ((b * S + s) * kvh + n) * hd;
          const to = ((b * kvh + n) * S + s) * hd;
          kNew.set(k.subarray(from, from + hd), to);
          vNew.set(v.subarray(from, from + hd), to);
          rope(kNew, to, hd, pos, t.rope_theta);
        }
      }
    const keys = concatSeq(past.keys[l], kNew, B * kvh, P, S, hd);
    const values = concatSeq(past.values[l], vNew, B * kvh, P, S, hd);
    present.keys.push(keys);
    present.values.push(values);
    const attn = new Float64Array(rows * nh * hd);
    const scores = new Float64Array(total);
    for (let b = 0; b < B; b++)
      for (let s = 0; s < S; s++) {
        const allowed = Array.from({ length: total }, (_, j) => j <= P + s && j > P + s - window && input.attentionMask[b * total + j] === 1);
        for (let n = 0; n < nh; n++) {
          const kvBase = (b * kvh + Math.floor(n / groups)) * total * hd;
          const qAt = ((b * S + s) * nh + n) * hd;
          for (let j = 0; j < total; j++) {
            let dot = 0;
            for (let e = 0; e < hd; e++) dot += q[qAt + e] * keys[kvBase + j * hd + e];
            scores[j] = dot / Math.sqrt(hd);
          }
          softmaxRow(scores, allowed);
          for (let e = 0; e < hd; e++) {
            let acc = 0;
            for (let j = 0; j < total; j++) acc += scores[j] * values[kvBase + j * hd + e];
            attn[qAt + e] = acc;
          }
        }
      }
    const o = linear(attn, rows, nh * hd, w(`${p}.self_attn.o_proj.weight`), H);
    x = x.map((val, i) => val + o[i]);
    const h2 = rmsNorm(x, rows, H, w(`${p}.post_attention_layernorm.weight`), t.rms_norm_eps);
    const F = t.intermediate_size;
    const gate = linear(h2, rows, H, w(`${p}.mlp.gate_proj.weight`), F);
    const up = linear(h2, rows, H, w(`${p}.mlp.up_proj.weight`), F);
    const down = linear(
      gate.map((g, i) => silu(g) * up[i]),
      rows,
      F,
      w(`${p}.mlp.down_proj.weight`),
      H,
    );
    x = x.map((val, i) => val + down[i]);
  }
  const normed = rmsNorm(x, rows, H, w(`${T}.norm.weight`), t.rms_norm_eps);
  const head = w(t.tie_word_embeddings ? `${T}.embed_tokens.weight` : 'language_model.lm_head.weight');
  const logits = linear(normed, rows, H, head, t.vocab_size);
  return { logits: { data: logits, dims: [B, S, t.vocab_size] }, present };
}
