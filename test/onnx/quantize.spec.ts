import { strict as assert } from 'assert';
import * as ort from 'onnxruntime-node';
import { architecture } from '../../lib/onnx/architectures';
import { buildDecoderGraph } from '../../lib/onnx/decoder';
import { dequantizeBlockwise, QuantBits, quantizeBlockwise } from '../../lib/onnx/quantize';
import type { QuantOptions } from '../../lib/onnx/blocks';
import { randomWeights } from '../../lib/onnx/random-weights';
import { buildVisionEncoderGraph, visionWeightShapes } from '../../lib/onnx/vision';
import type { WeightSource } from '../../lib/onnx/weights';
import { maxAbsDiff, referenceDecoder } from '../support/reference';
import { dequantizedWeights, quantizedWeightNames, runDecoder, seqSlice, sessionOf, wave } from './support';

describe('onnx/quantize', () => {
  it('block quantization round trip: error per value ≤ half a step of its block, padding beyond K ignored', () => {
    const rows = 3;
    const cols = 40; // 2 blocks of 32, the second padded
    const w = wave(rows * cols, 0.2);
    for (const bits of [4, 8] as QuantBits[]) {
      const q = quantizeBlockwise(w, rows, cols, bits);
      assert.equal(q.packed.length, (rows * 2 * (32 * bits)) / 8);
      assert.equal(q.scales.length, rows * 2);
      const d = dequantizeBlockwise(q);
      for (let i = 0; i < w.length; i++) {
        const block = Math.floor(i / cols) * 2 + Math.floor((i % cols) / 32);
        assert.ok(Math.abs(d[i] - w[i]) <= q.scales[block] / 2 + 1e-7, `bits ${bits} value ${i}`);
      }
    }
  });

  // Two checks per width. accuracy_level 0 computes in fp32 on the dequantized weights, so it must match the
  // reference fed the same dequantized weights as tightly as fp32 does (1e-4). accuracy_level 4 (what
  // `llava build` writes, fastest on CPU) also quantizes the activations to int8 per block of 32: a relative
  // error of up to 1/254 of each block's max per input, accumulated over every MatMul of 2 layers and the lm_head.
  // Measured on this model: 1.5% of the largest |logit| (4.8e-2 of 3.3); the bound is 4%.
  for (const bits of [4, 8] as QuantBits[]) {
    for (const [arch, accuracyLevel, tolerance] of [
      ['tiny', 0, 1e-4],
      ['tiny-qwen2', 0, 1e-4],
      ['tiny', 4, 0.04],
    ] as const) {
      it(`int${bits} MatMulNBits decoder (${arch}, accuracy_level ${accuracyLevel}) matches the reference on dequantized weights`, async () => {
        const c = architecture(arch).config;
        const w = randomWeights(c, 21);
        const deq = dequantizedWeights(w, quantizedWeightNames(c), bits);
        const S = 6;
        const H = c.text_config.hidden_size;
        const V = c.text_config.vocab_size;
        const embeds = { data: Float64Array.from(wave(S * H, 0.9)), dims: [1, S, H] };
        const positions = [...Array(S).keys()];
        const ref = referenceDecoder(deq, c, { embeds, attentionMask: Array(S).fill(1), positionIds: positions });
        const fp = referenceDecoder(w, c, { embeds, attentionMask: Array(S).fill(1), positionIds: positions });
        const s = await sessionOf(buildDecoderGraph(w, c, { variant: 'optimized', quant: { bits, accuracyLevel } }));
        const prefill = await runDecoder(s, c, seqSlice(embeds, 0, 5), Array(5).fill(1), positions.slice(0, 5));
        const step = await runDecoder(s, c, seqSlice(embeds, 5, 6), Array(6).fill(1), [5], prefill.present);
        const range = ref.logits.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        const bound = accuracyLevel === 0 ? tolerance : tolerance * range;
        const dPrefill = maxAbsDiff(prefill.logits, ref.logits.data.subarray(0, 5 * V));
        const dStep = maxAbsDiff(step.logits, ref.logits.data.subarray(5 * V));
        assert.ok(dPrefill < bound && dStep < bound, `diff ${dPrefill} / ${dStep}, bound ${bound}`);
        // The quantization is real: fp32 weights would give logits further than 1e-4 from the dequantized ones.
        assert.ok(maxAbsDiff(ref.logits.data, fp.logits.data) > 1e-4, 'dequantized weights differ from fp32');
        await s.release();
      });
    }
  }
  it('block size and the lm_head precision reach the graph (int4 blocks of 64, an int8 or fp32 lm_head)', async () => {
    const c = architecture('tiny').config;
    Object.assign(c.text_config, { hidden_size: 128, intermediate_size: 256 }); // K ≥ 64: blocks of 32 and 64 differ
    const w = randomWeights(c, 5);
    const names = quantizedWeightNames(c);
    const body = names.slice(0, -1);
    const head = names.slice(-1);
    const S = 4;
    const embeds = { data: Float64Array.from(wave(S * c.text_config.hidden_size, 0.4)), dims: [1, S, c.text_config.hidden_size] };
    const positions = [...Array(S).keys()];
    const reference = (weights: typeof w) => referenceDecoder(weights, c, { embeds, attentionMask: Array(S).fill(1), positionIds: positions }).logits.data;
    const b64 = dequantizedWeights(w, body, 4, 64);
    const quant = { bits: 4 as const, blockSize: 64, accuracyLevel: 0 };
    for (const [lmHeadQuant, weights] of [
      [{ ...quant, bits: 8 as const }, dequantizedWeights(b64, head, 8, 64)],
      [null, b64],
    ] as const) {
      const s = await sessionOf(buildDecoderGraph(w, c, { variant: 'optimized', quant, lmHeadQuant }));
      const { logits } = await runDecoder(s, c, embeds, Array(S).fill(1), positions);
      const expected = reference(weights);
      assert.ok(maxAbsDiff(logits, expected) < 1e-4, `lm_head ${lmHeadQuant ? 'int8' : 'fp32'}`);
      // Not what blocks of 32 or an int4 lm_head would give.
      assert.ok(maxAbsDiff(expected, reference(dequantizedWeights(w, names, 4, 32))) > 1e-3);
      assert.ok(maxAbsDiff(expected, reference(dequantizedWeights(w, names, 4, 64))) > 1e-3);
      await s.release();
    }
  });
});

describe('onnx/quantize: vision tower', () => {
  const c = architecture('tiny').config;
  const w = randomWeights(c, 23);
  const S = c.vision_config.image_size;
  const pixels = wave(3 * S * S, 1.3).map((v) => v * 2);
  const features = async (weights: WeightSource, quant?: QuantOptions): Promise<Float32Array> => {
    const s = await sessionOf(buildVisionEncoderGraph(weights, c, { withProjector: true, quant }));
    const out = await s.run({ pixel_values: new ort.Tensor('float32', pixels, [1, 3, S, S]) });
    await s.release();
    return out.image_features.data as Float32Array;
  };
  const layerWeights = visionWeightShapes(c)
    .map(([name]) => name)
    .filter((n) => /encoder\.layers\.\d+\..*(proj|fc\d)\.weight$/.test(n));

  it("the encoder layers' six Linear weights become MatMulNBits; accuracy_level 0 computes exactly on the dequantized weights", async () => {
    assert.equal(layerWeights.length, 6 * c.vision_config.num_hidden_layers);
    const graph = buildVisionEncoderGraph(w, c, { withProjector: true, quant: { bits: 8, accuracyLevel: 0 } }).toBytes();
    assert.ok(Buffer.from(graph).includes('MatMulNBits'));
    const quantized = await features(w, { bits: 8, accuracyLevel: 0 });
    const reference = await features(dequantizedWeights(w, layerWeights, 8));
    assert.ok(maxAbsDiff(quantized, reference) < 1e-4, `diff ${maxAbsDiff(quantized, reference)}`);
    assert.ok(maxAbsDiff(quantized, await features(w)) > 1e-5, 'the weights really are quantized');
  });

  // What `llava build --quantize-vision` writes (accuracy_level 4: int8 activations too), against fp32: every image
  // token's projected feature keeps its direction. Measured on this model: worst token 0.99991 (int8), 0.9951 (int4).
  for (const [bits, minCosine] of [
    [8, 0.9995],
    [4, 0.99],
  ] as const) {
    it(`int${bits} vision tower (accuracy_level 4): every token's projected feature has cosine ≥ ${minCosine} to fp32`, async () => {
      const fp32 = await features(w);
      const quantized = await features(w, { bits, accuracyLevel: 4 });
      const width = c.text_config.hidden_size;
      let worst = 1;
      for (let t = 0; t < fp32.length / width; t++) {
        worst = Math.min(worst, cosine(fp32.subarray(t * width, (t + 1) * width), quantized.subarray(t * width, (t + 1) * width)));
      }
      assert.ok(worst >= minCosine && worst < 1 - 1e-7, `worst token cosine ${worst}`);
    });
  }
});

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.sqrt(na * nb);
}
