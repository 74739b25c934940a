import { strict as assert } from 'assert';
import * as ort from 'onnxruntime-node';
import { architecture, ArchitectureOverrides } from '../../lib/onnx/architectures';
import type { LlavaConfig } from '../../lib/model/config';
import { buildVisionEncoderGraph, visionLayersUsed, visionTokenCount, visionWeightShapes } from '../../lib/onnx/vision';
import { buildProjectorGraph } from '../../lib/onnx/projector';
import { randomWeights } from '../../lib/onnx/random-weights';
import type { WeightSource } from '../../lib/onnx/weights';
import { maxAbsDiff, referenceProjector, referenceVision } from '../support/reference';
import { sessionOf, wave } from './support';

const TOL = 1e-4;
const BATCH = 2;

function pixelsFor(c: LlavaConfig): Float32Array {
  return wave(BATCH * 3 * c.vision_config.image_size ** 2, 1.3).map((v) => v * 2);
}

async function runVision(w: WeightSource, c: LlavaConfig, withProjector: boolean): Promise<ort.Tensor> {
  const s = await sessionOf(buildVisionEncoderGraph(w, c, { withProjector }));
  const S = c.vision_config.image_size;
  const out = await s.run({ pixel_values: new ort.Tensor('float32', pixelsFor(c), [BATCH, 3, S, S]) });
  await s.release();
  return out.image_features;
}

describe('onnx/vision (CLIP) and projector against the float64 reference', () => {
  const cases: Array<[string, ArchitectureOverrides, number]> = [
    ['layer −2, default (CLS dropped), mlp2x_gelu', {}, 16],
    ['layer −1 (mmpretrain), default', { visionFeatureLayer: -1 }, 16],
    ['layer −2, full (CLS kept), linear projector (v1)', { visionFeatureSelectStrategy: 'full', projectorType: 'linear' }, 17],
  ];
  for (const [label, overrides, tokens] of cases) {
    it(`vision_encoder with the projector inside: ${label}`, async () => {
      const c = architecture('tiny', overrides).config;
      const w = randomWeights(c, 11);
      const features = await runVision(w, c, true);
      assert.deepEqual(features.dims, [BATCH, tokens, c.text_config.hidden_size]);
      const ref = referenceProjector(w, c, referenceVision(w, c, pixelsFor(c), BATCH));
      const diff = maxAbsDiff(features.data as Float32Array, ref.data);
      assert.ok(diff < TOL, `diff ${diff}`);
    });
  }

  it('split: vision features before projection, then multi_modal_projector (image_features → image_embeds)', async () => {
    const c = architecture('tiny').config;
    const w = randomWeights(c, 12);
    const features = await runVision(w, c, false);
    const refFeatures = referenceVision(w, c, pixelsFor(c), BATCH);
    assert.deepEqual(features.dims, [BATCH, 16, c.vision_config.hidden_size]);
    assert.ok(maxAbsDiff(features.data as Float32Array, refFeatures.data) < TOL);
    const p = await sessionOf(buildProjectorGraph(w, c));
    const { image_embeds } = await p.run({ image_features: features });
    assert.deepEqual(image_embeds.dims, [BATCH, 16, c.text_config.hidden_size]);
    assert.ok(maxAbsDiff(image_embeds.data as Float32Array, referenceProjector(w, c, refFeatures).data) < TOL);
  });

  it('feature layers −1 and −2 give different features (the selection is real)', async () => {
    const a = architecture('tiny').config;
    const b = architecture('tiny', { visionFeatureLayer: -1 }).config;
    const fa = await runVision(randomWeights(a, 1), a, false);
    const fb = await runVision(randomWeights(b, 1), b, false);
    assert.ok(maxAbsDiff(fa.data as Float32Array, fb.data as Float32Array) > 0.05);
  });

  it('omits the layers after the selected one (their weights are never read)', async () => {
    const c = architecture('tiny', { visionLayers: 3 }).config;
    assert.equal(visionLayersUsed(c), 2);
    const w = randomWeights(c, 2);
    const guarded: WeightSource = {
      names: () => w.names(),
      get: (n) => {
        if (n.includes('encoder.layers.2.') || n.includes('post_layernorm')) throw new Error(`read unused weight ${n}`);
        return w.get(n);
      },
    };
    const features = await runVision(guarded, c, false);
    assert.ok(maxAbsDiff(features.data as Float32Array, referenceVision(w, c, pixelsFor(c), BATCH).data) < TOL);
  });

  it('rejects an out-of-range vision_feature_layer and towers it does not implement', () => {
    const c = architecture('tiny', { visionFeatureLayer: -4 }).config;
    assert.throws(
      () => buildVisionEncoderGraph(randomWeights(c), c, { withProjector: true }),
      /vision_feature_layer -4 is out of range for a 2-layer vision tower/,
    );
    const dino = architecture('tiny').config;
    const w = randomWeights(dino);
    dino.vision_config.model_type = 'dinov2';
    assert.throws(
      () => buildVisionEncoderGraph(w, dino, { withProjector: true }),
      /vision tower "dinov2" is not supported \(supported: clip_vision_model, siglip_vision_model\)/,
    );
    const gelu = architecture('tiny-siglip').config;
    gelu.vision_config.hidden_act = 'relu';
    assert.throws(() => buildVisionEncoderGraph(randomWeights(gelu), gelu, { withProjector: true }), /vision hidden_act "relu" is not supported/);
  });
});

describe('onnx/vision (SigLIP) against the float64 reference', () => {
  const cases: Array<[string, ArchitectureOverrides, number]> = [
    ['layer −1 (interleave/onevision), full: all 16 patches, no CLS', {}, 16],
    ['layer −2 (nanoLLaVA), default: first patch dropped as transformers does', { visionFeatureLayer: -2, visionFeatureSelectStrategy: 'default' }, 15],
  ];
  for (const [label, overrides, tokens] of cases) {
    it(`vision_encoder with the projector inside: ${label}`, async () => {
      const c = architecture('tiny-siglip', overrides).config;
      const w = randomWeights(c, 21);
      const features = await runVision(w, c, true);
      assert.deepEqual(features.dims, [BATCH, tokens, c.text_config.hidden_size]);
      const ref = referenceProjector(w, c, referenceVision(w, c, pixelsFor(c), BATCH));
      const diff = maxAbsDiff(features.data as Float32Array, ref.data);
      assert.ok(diff < TOL, `diff ${diff}`);
    });
  }

  it('floors the image to whole patches (30 px, patch 7: 4×4; the last 2 pixel rows and columns are never read)', async () => {
    const c = architecture('tiny-siglip').config;
    const S = c.vision_config.image_size;
    const w = randomWeights(c, 3);
    const s = await sessionOf(buildVisionEncoderGraph(w, c, { withProjector: false }));
    const pixels = pixelsFor(c);
    const edited = pixels.slice();
    for (let i = 0; i < edited.length; i++) {
      const x = i % S;
      const y = Math.floor(i / S) % S;
      if (x >= 28 || y >= 28) edited[i] = 5;
    }
    const run = async (p: Float32Array) => (await s.run({ pixel_values: new ort.Tensor('float32', p, [BATCH, 3, S, S]) })).image_features;
    const a = await run(pixels);
    assert.deepEqual(a.dims, [BATCH, 16, c.vision_config.hidden_size]);
    assert.equal(maxAbsDiff(a.data as Float32Array, (await run(edited)).data as Float32Array), 0);
    assert.ok(maxAbsDiff(a.data as Float32Array, referenceVision(w, c, pixels, BATCH).data) < TOL);
  });

  it('reads neither the layers after the selected one nor post_layernorm (hidden_states come before it)', async () => {
    const c = architecture('tiny-siglip').config;
    const w = randomWeights(c, 4);
    const guarded: WeightSource = {
      names: () => w.names(),
      get: (n) => {
        if (n.includes('encoder.layers.3.') || n.includes('post_layernorm') || n.includes('.head.')) throw new Error(`read unused weight ${n}`);
        return w.get(n);
      },
    };
    const features = await runVision(guarded, c, false);
    assert.ok(maxAbsDiff(features.data as Float32Array, referenceVision(w, c, pixelsFor(c), BATCH).data) < TOL);
  });

  it('at the real widths, 384 px with patch 14 gives 27 × 27 = 729 image tokens', () => {
    const c = architecture('llava-interleave-0.5b', { visionLayers: 1, textLayers: 1, visionFeatureLayer: -1 }).config;
    assert.equal(visionTokenCount(c), 729);
    const shapes = new Map(visionWeightShapes(c));
    assert.deepEqual(shapes.get('vision_tower.vision_model.embeddings.position_embedding.weight'), [729, 1152]);
    assert.deepEqual(shapes.get('vision_tower.vision_model.embeddings.patch_embedding.bias'), [1152]);
    assert.equal(shapes.has('vision_tower.vision_model.embeddings.class_embedding'), false);
    buildVisionEncoderGraph(randomWeights(c), c, { withProjector: true }); // every weight found at its shape
  });
});
