import { strict as assert } from 'assert';
import { Architecture, architecture } from '../../lib/onnx/architectures';
import { buildDecoderGraph, buildEmbedGraph, DecoderVariant } from '../../lib/onnx/decoder';
import { randomWeights } from '../../lib/onnx/random-weights';
import { maxAbsDiff, referenceDecoder, referenceEmbed, RefTensor } from '../support/reference';
import { presentAsRef, runDecoder, seqSlice, sessionOf, wave } from './support';

const TOL = 1e-4;

/** tiny with head_dim 8: GroupQueryAttention's own rotary would refuse it (head_size % 16 != 0). */
function tinyHeadDim8(): Architecture {
  const a = architecture('tiny');
  Object.assign(a.config.text_config, { num_attention_heads: 8, num_key_value_heads: 4, head_dim: 8 });
  return a;
}

/** tiny as Mistral: 4 heads over 2 KV heads, and a 4-token sliding window, shorter than the 7-token prompts. */
function tinyMistral(window: number | null = 4): Architecture {
  const a = architecture('tiny');
  Object.assign(a.config.text_config, { model_type: 'mistral', sliding_window: window });
  return a;
}

const CASES: Array<[string, () => Architecture]> = [
  ['LLaMA (tiny)', () => architecture('tiny')],
  ['Qwen2 with q/k/v biases, tied lm_head (tiny-qwen2)', () => architecture('tiny-qwen2')],
  ['head_dim 8', tinyHeadDim8],
  ['Mistral with a 4-token sliding window', () => tinyMistral()],
];

function embedsFor(a: Architecture, batch: number, seq: number): RefTensor {
  const h = a.config.text_config.hidden_size;
  return { data: Float64Array.from(wave(batch * seq * h, 0.5)), dims: [batch, seq, h] };
}

describe('onnx/decoder against the float64 reference', () => {
  for (const [label, make] of CASES) {
    for (const variant of ['portable', 'optimized'] as DecoderVariant[]) {
      describe(`${label}, ${variant}`, () => {
        const a = make();
        const c = a.config;
        const w = randomWeights(c, 7);
        const S = 7;
        const embeds = embedsFor(a, 1, S);
        const positions = [...Array(S).keys()];
        const full = referenceDecoder(w, c, { embeds, attentionMask: Array(S).fill(1), positionIds: positions });

        it('prefill: logits and present KV within 1e-4', async () => {
          const s = await sessionOf(buildDecoderGraph(w, c, { variant }));
          const out = await runDecoder(s, c, embeds, Array(S).fill(1), positions);
          assert.deepEqual(out.dims, [1, S, c.text_config.vocab_size]);
          assert.ok(maxAbsDiff(out.logits, full.logits.data) < TOL, `logits diff ${maxAbsDiff(out.logits, full.logits.data)}`);
          const present = presentAsRef(out.present, c);
          assert.equal(present.length, S);
          for (let l = 0; l < c.text_config.num_hidden_layers; l++) {
            assert.ok(maxAbsDiff(present.keys[l], full.present.keys[l]) < TOL);
            assert.ok(maxAbsDiff(present.values[l], full.present.values[l]) < TOL);
          }
          await s.release();
        });

        it('cached steps (prefill 3, one token, a 2-token chunk, one token) match the full sequence', async () => {
          const s = await sessionOf(buildDecoderGraph(w, c, { variant }));
          const V = c.text_config.vocab_size;
          let step = await runDecoder(s, c, seqSlice(embeds, 0, 3), Array(3).fill(1), positions.slice(0, 3));
          assert.ok(maxAbsDiff(step.logits, full.logits.data.subarray(0, 3 * V)) < TOL);
          for (const [from, to] of [
            [3, 4],
            [4, 6],
            [6, 7],
          ]) {
            step = await runDecoder(s, c, seqSlice(embeds, from, to), Array(to).fill(1), positions.slice(from, to), step.present);
            assert.equal(step.present['present.0.key'].dims[2], to);
            const diff = maxAbsDiff(step.logits, full.logits.data.subarray(from * V, to * V));
            assert.ok(diff < TOL, `tokens ${from}..${to}: diff ${diff}`);
          }
          await s.release();
        });
      });
    }
  }

  for (const [label, make] of CASES) {
    for (const variant of ['portable', 'optimized'] as DecoderVariant[]) {
      it(`${label}, ${variant}: a left-padded batch of 2 matches the reference, then a cached step`, async () => {
        const a = make();
        const c = a.config;
        const w = randomWeights(c, 3);
        const S = 5;
        const V = c.text_config.vocab_size;
        const embeds = embedsFor(a, 2, S + 1);
        const mask = [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1];
        const positions = [1, 1, 0, 1, 2, 3, 0, 1, 2, 3, 4, 5]; // cumsum(mask) - 1, pads set to 1 (transformers.js)
        const ref = referenceDecoder(w, c, { embeds, attentionMask: mask, positionIds: positions });
        const s = await sessionOf(buildDecoderGraph(w, c, { variant }));
        const pick = (m: number[], len: number) => [...m.slice(0, len), ...m.slice(S + 1, S + 1 + len)];
        const prefill = await runDecoder(s, c, seqSlice(embeds, 0, S), pick(mask, S), pick(positions, S));
        const refRows = (from: number, to: number) =>
          Float64Array.from([...ref.logits.data.subarray(from * V, to * V), ...ref.logits.data.subarray((S + 1 + from) * V, (S + 1 + to) * V)]);
        // Real tokens only: padded query rows see no key at all and are never read.
        const real = (l: Float32Array | Float64Array) => Float64Array.from([...l.subarray(2 * V, S * V), ...l.subarray(S * V)]);
        assert.ok(maxAbsDiff(real(prefill.logits), real(refRows(0, S))) < TOL);
        const step = await runDecoder(s, c, seqSlice(embeds, S, S + 1), mask, [positions[S], positions[2 * S + 1]], prefill.present);
        assert.ok(maxAbsDiff(step.logits, refRows(S, S + 1)) < TOL);
        // Row 0's real tokens must not depend on what the pad embeddings are.
        const alt = { data: Float64Array.from(embeds.data), dims: embeds.dims };
        alt.data.fill(9, 0, 2 * c.text_config.hidden_size);
        const again = await runDecoder(s, c, seqSlice(alt, 0, S), pick(mask, S), pick(positions, S));
        assert.ok(maxAbsDiff(prefill.logits.subarray(2 * V, S * V), again.logits.subarray(2 * V, S * V)) < 1e-5);
        await s.release();
      });
    }
  }

  it('Mistral: the sliding window masks keys 4 or more positions back (it changes the logits), a window ≥ the context does not', () => {
    const windowed = tinyMistral(4);
    const open = tinyMistral(null);
    const w = randomWeights(windowed.config, 7);
    const S = 7;
    const input = { embeds: embedsFor(windowed, 1, S), attentionMask: Array(S).fill(1), positionIds: [...Array(S).keys()] };
    const a = referenceDecoder(w, windowed.config, input).logits.data;
    const b = referenceDecoder(w, open.config, input).logits.data;
    const vocab = windowed.config.text_config.vocab_size;
    // The first 4 positions see the same keys either way; later ones do not.
    assert.equal(maxAbsDiff(a.subarray(0, 4 * vocab), b.subarray(0, 4 * vocab)), 0);
    assert.ok(maxAbsDiff(a, b) > 1e-3);
    const wide = tinyMistral(windowed.config.text_config.max_position_embeddings);
    assert.equal(
      buildDecoderGraph(w, wide.config, { variant: 'portable' }).toBytes().length,
      buildDecoderGraph(w, open.config, { variant: 'portable' }).toBytes().length,
    );
  });

  it('optimized: q/k/v and gate/up each run as one MatMul per layer over their stacked weights (MatMulNBits when quantized)', () => {
    const c = architecture('tiny-qwen2').config;
    const w = randomWeights(c, 7);
    const layers = [...Array(c.text_config.num_hidden_layers).keys()].map(String);
    for (const [quant, op] of [
      [undefined, 'MatMul'],
      [{ bits: 4 as const }, 'MatMulNBits'],
    ] as const) {
      const text = Buffer.from(buildDecoderGraph(w, c, { variant: 'optimized', quant }).toBytes()).toString('latin1');
      const layersWith = (name: string) => [...new Set([...text.matchAll(new RegExp(`layers\\.(\\d+)\\.${name}/${op}\\b`, 'g'))].map((m) => m[1]))].sort();
      assert.deepEqual(layersWith('self_attn\\.qkv_proj'), layers);
      assert.deepEqual(layersWith('mlp\\.gate_up_proj'), layers);
      assert.deepEqual(layersWith('self_attn\\.o_proj'), layers);
      for (const part of ['q_proj', 'k_proj', 'v_proj', 'gate_proj', 'up_proj']) assert.ok(!text.includes(`.${part}/`), `${part} still has its own node`);
      assert.ok(text.includes('qkv_proj.bias'), 'the q/k/v biases are stacked too');
    }
  });

  it('embed_tokens gathers embedding rows for input_ids', async () => {
    const c = architecture('tiny').config;
    const w = randomWeights(c, 5);
    const ids = [1, 13, 604, 0];
    const s = await sessionOf(buildEmbedGraph(w, c));
    const ort = await import('onnxruntime-node');
    const out = await s.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, 4]) });
    assert.deepEqual(out.inputs_embeds.dims, [1, 4, 64]);
    assert.equal(maxAbsDiff(out.inputs_embeds.data as Float32Array, referenceEmbed(w, c, ids).data), 0);
  });

  it('rejects configs it cannot build with a clear error', () => {
    const c = architecture('tiny').config;
    c.text_config.num_key_value_heads = 3;
    assert.throws(() => buildDecoderGraph(randomWeights(c), c, { variant: 'portable' }), /not a multiple of num_key_value_heads 3/);
    const c2 = architecture('tiny').config;
    assert.throws(() => buildDecoderGraph(randomWeights(c2), c2, { variant: 'portable', quant: { bits: 4 } }), /choose the optimized/);
    const c3 = architecture('tiny').config;
    const w = randomWeights(c3);
    const missing = { names: () => w.names(), get: (n: string) => (n.endsWith('layers.1.mlp.up_proj.weight') ? undefined : w.get(n)) };
    assert.throws(
      () => buildDecoderGraph(missing, c3, { variant: 'optimized' }).toBytes(),
      /weights are missing language_model\.model\.layers\.1\.mlp\.up_proj\.weight/,
    );
    const c4 = architecture('tiny').config;
    c4.text_config.model_type = 'gemma';
    assert.throws(
      () => buildDecoderGraph(randomWeights(c2), c4, { variant: 'portable' }),
      /text model_type "gemma" is not supported \(supported: llama, mistral, qwen2\)/,
    );
    const c5 = architecture('tiny-qwen2').config;
    c5.text_config.use_sliding_window = true;
    assert.throws(() => buildDecoderGraph(randomWeights(c5), c5, { variant: 'portable' }), /qwen2 use_sliding_window is not supported/);
  });
});
