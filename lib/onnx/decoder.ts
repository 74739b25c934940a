// The LLaMA-family text decoder (llama, mistral, qwen2: lib/onnx/text/llama.ts) as transformers.js's
// decoder_model_merged, plus the embed_tokens graph. I/O names: lib/model/graph-io.ts.
// Decoder I/O: inputs_embeds [B,S,H] f32, attention_mask int64 [B,T], position_ids int64 [B,S],
// past_key_values.{i}.key/value [B,kvh,P,hd] → logits [B,S,V], present.{i}.key/value [B,kvh,T,hd] (T = P+S).
// Variants share that I/O: 'portable' (standard ops) and 'optimized' (com.microsoft GroupQueryAttention,
// SimplifiedLayerNormalization/SkipSimplifiedLayerNormalization, MatMulNBits when quantized).
import { headDim, LlavaConfig, TextConfig } from '../model/config';
import { DECODER_IO, EMBED_IO } from '../model/graph-io';
import { BuildContext, linear, QuantOptions, rmsNorm, splitLast, stackedLinear, weightInitializer } from './blocks';
import { LayerKv, optimizedAttention, optimizedShared, portableAttention, portableShared } from './decoder-attention';
import { floatAttr, Graph, MS_DOMAIN } from './graph';
import { checkTextConfig, hasQkvBias, lmHeadName } from './text/llama';
import { LM_HEAD, TEXT_PREFIX } from './weight-names';
import type { WeightSource } from './weights';

export type DecoderVariant = 'portable' | 'optimized';

export interface DecoderOptions {
  variant: DecoderVariant;
  /** MatMulNBits weights (optimized variant only). */
  quant?: QuantOptions;
  /** The lm_head's MatMulNBits weights when they differ from `quant` (null: float32). */
  lmHeadQuant?: QuantOptions | null;
  /**
   * 'last': logits for the last position only ([B, 1, V]); a prefill then skips the lm_head for the rest of the
   * prompt (about a quarter of a 0.5B prefill's work, and a [S, vocab] float buffer). Default 'all'.
   */
  logits?: 'all' | 'last';
}

/** SwiGLU MLP; the optimized variant runs gate and up as one MatMul over their stacked weights. */
function mlp(ctx: BuildContext, t: TextConfig, h: string, p: string, variant: DecoderVariant): string {
  const { g } = ctx;
  const lin = (x: string, name: string, inF: number, outF: number) => linear(ctx, x, `${p}.mlp.${name}`, inF, outF, { bias: false, quantizable: true });
  const width = t.intermediate_size;
  const [gate, up] =
    variant === 'optimized'
      ? splitLast(
          g,
          stackedLinear(
            ctx,
            h,
            `${p}.mlp.gate_up_proj`,
            t.hidden_size,
            ['gate_proj', 'up_proj'].map((n) => ({ prefix: `${p}.mlp.${n}`, outF: width })),
            { bias: false, quantizable: true },
          ),
          [width, width],
          `${p}/gate_up`,
        )
      : [lin(h, 'gate_proj', t.hidden_size, width), lin(h, 'up_proj', t.hidden_size, width)];
  const silu = g.op('Mul', [gate, g.op('Sigmoid', [gate])], {}, { name: `${p}/SiLU` });
  return lin(g.op('Mul', [silu, up], {}, { name: `${p}/GateUp` }), 'down_proj', width, t.hidden_size);
}

/** SkipSimplifiedLayerNormalization: returns [normalized(x + skip), x + skip]. */
function skipRmsNorm(ctx: BuildContext, x: string, skip: string, weight: string, dim: number, eps: number): [string, string] {
  const [normed, , , sum] = ctx.g.ops(
    'SkipSimplifiedLayerNormalization',
    [x, skip, weightInitializer(ctx, weight, [dim])],
    { epsilon: floatAttr(eps) },
    { domain: MS_DOMAIN, outputs: 4, name: `${weight}/SkipSimplifiedLayerNorm` },
  );
  return [normed, sum];
}

export function buildDecoderGraph(weights: WeightSource, c: LlavaConfig, opts: DecoderOptions): Graph {
  const t = c.text_config;
  checkTextConfig(t);
  if ((opts.quant || opts.lmHeadQuant) && opts.variant !== 'optimized') {
    throw new Error('quantized decoders use com.microsoft MatMulNBits: choose the optimized decoder variant');
  }
  const g = new Graph('decoder_model_merged');
  const ctx: BuildContext = { g, weights, quant: opts.quant };
  const hd = headDim(t);
  const h = t.hidden_size;
  const eps = t.rms_norm_eps;
  const qkvBias = hasQkvBias(c);
  const embeds = g.input(DECODER_IO.inputsEmbeds, 'float32', ['batch_size', 'sequence_length', h]);
  const mask = g.input(DECODER_IO.attentionMask, 'int64', ['batch_size', 'total_sequence_length']);
  const positions = g.input(DECODER_IO.positionIds, 'int64', ['batch_size', 'sequence_length']);
  const kvShape = (len: string) => ['batch_size', t.num_key_value_heads, len, hd];
  const kvs: LayerKv[] = [];
  for (let i = 0; i < t.num_hidden_layers; i++) {
    kvs.push({
      pastKey: g.input(DECODER_IO.pastKey(i), 'float32', kvShape('past_sequence_length')),
      pastValue: g.input(DECODER_IO.pastValue(i), 'float32', kvShape('past_sequence_length')),
      presentKey: DECODER_IO.presentKey(i),
      presentValue: DECODER_IO.presentValue(i),
    });
  }
  const layerPrefix = (i: number) => `${TEXT_PREFIX}.layers.${i}`;
  let normed: string;
  if (opts.variant === 'portable') {
    const shared = portableShared(g, t, embeds, mask, positions);
    let x = embeds;
    for (let i = 0; i < t.num_hidden_layers; i++) {
      const p = layerPrefix(i);
      const attn = portableAttention(ctx, t, rmsNorm(ctx, x, `${p}.input_layernorm`, h, eps), i, shared, kvs[i], qkvBias);
      x = g.op('Add', [x, linear(ctx, attn, `${p}.self_attn.o_proj`, hd * t.num_attention_heads, h, { bias: false })], {}, { name: `${p}/Residual1` });
      x = g.op('Add', [x, mlp(ctx, t, rmsNorm(ctx, x, `${p}.post_attention_layernorm`, h, eps), p, 'portable')], {}, { name: `${p}/Residual2` });
    }
    normed = rmsNorm(ctx, x, `${TEXT_PREFIX}.norm`, h, eps);
  } else {
    const shared = optimizedShared(g, t, embeds, mask, positions);
    // Residual stream: SkipSimplifiedLayerNormalization adds the block output to it and normalizes in one op.
    let residual = embeds;
    let h1 = g.op(
      'SimplifiedLayerNormalization',
      [embeds, weightInitializer(ctx, `${layerPrefix(0)}.input_layernorm.weight`, [h])],
      { axis: -1, epsilon: floatAttr(eps), stash_type: 1 },
      { name: `${layerPrefix(0)}.input_layernorm/SimplifiedLayerNorm` },
    );
    for (let i = 0; i < t.num_hidden_layers; i++) {
      const p = layerPrefix(i);
      const attn = optimizedAttention(ctx, t, h1, i, shared, kvs[i], qkvBias);
      const o = linear(ctx, attn, `${p}.self_attn.o_proj`, hd * t.num_attention_heads, h, { bias: false, quantizable: true });
      const [h2, afterAttn] = skipRmsNorm(ctx, o, residual, `${p}.post_attention_layernorm.weight`, h, eps);
      const next = i + 1 < t.num_hidden_layers ? `${layerPrefix(i + 1)}.input_layernorm.weight` : `${TEXT_PREFIX}.norm.weight`;
      [h1, residual] = skipRmsNorm(ctx, mlp(ctx, t, h2, p, 'optimized'), afterAttn, next, h, eps);
    }
    normed = h1;
  }
  const lastOnly = opts.logits === 'last';
  if (lastOnly) {
    normed = g.op('Slice', [normed, g.constInt64([-1]), g.constInt64([Number.MAX_SAFE_INTEGER]), g.constInt64([1])], {}, { name: 'logits/LastPosition' });
  }
  const lmHead = lmHeadName(c);
  const headCtx = opts.lmHeadQuant === undefined ? ctx : { ...ctx, quant: opts.lmHeadQuant ?? undefined };
  const logits = linear(headCtx, normed, LM_HEAD.replace(/\.weight$/, ''), h, t.vocab_size, {
    bias: false,
    quantizable: true,
    ...(lmHead !== LM_HEAD ? { weightName: lmHead } : {}),
  });
  g.output(logits, 'float32', ['batch_size', lastOnly ? 1 : 'sequence_length', t.vocab_size], DECODER_IO.logits);
  for (const kv of kvs) {
    g.output(kv.presentKey, 'float32', kvShape('total_sequence_length'));
    g.output(kv.presentValue, 'float32', kvShape('total_sequence_length'));
  }
  return g;
}

/** embed_tokens: input_ids int64 [B, S] → inputs_embeds [B, S, H]. */
export function buildEmbedGraph(weights: WeightSource, c: LlavaConfig): Graph {
  const t = c.text_config;
  const g = new Graph('embed_tokens');
  const ids = g.input(EMBED_IO.inputIds, 'int64', ['batch_size', 'sequence_length']);
  const table = weightInitializer({ g, weights }, `${TEXT_PREFIX}.embed_tokens.weight`, [t.vocab_size, t.hidden_size]);
  g.output(g.op('Gather', [table, ids], { axis: 0 }), 'float32', ['batch_size', 'sequence_length', t.hidden_size], EMBED_IO.inputsEmbeds);
  return g;
}
